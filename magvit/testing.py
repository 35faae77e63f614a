"""Conformance checks for plugins: run them on your own schedules, paddings, tasks, inflations.

    from magvit.testing import check_task
    def test_my_task():
        check_task(MyTask())

`check_registered(kind, name)` builds a registered plugin with its default config and runs the
check for its kind; magvit's own tests run it over every registered name. Each check raises
`AssertionError` naming the plugin and the broken rule.
"""

from __future__ import annotations

import torch
from torch import nn

CLIP = (8, 32, 32)
FACTORS = (2, 4, 4)
MIN_RATIO = 1e-6


def _require(ok, who: str, rule: str) -> None:
    if not bool(ok):
        raise AssertionError(f"{who}: {rule}")


def check_schedule(gamma, *, start_tolerance: float = 1e-3, who: str = "schedule") -> None:
    """gamma(0) is 1 (within `start_tolerance`: exp starts at 1 - 1/N), gamma(1) is 1e-6 (read
    as zero), values lie in [1e-6, 1], monotone non-increasing, float32, float in -> float out."""
    start, end = gamma(0.0), gamma(1.0)
    _require(isinstance(start, float) and isinstance(end, float), who, "a float in must give a float out")
    _require(1.0 - start_tolerance <= start <= 1.0, who, f"gamma(0) must be 1, got {start}")
    _require(end <= MIN_RATIO * (1 + 1e-3), who, f"gamma(1) must be 1e-6 (zero), got {end}")
    r = torch.linspace(0, 1, 1001)
    values = gamma(r)
    _require(isinstance(values, torch.Tensor) and values.shape == r.shape, who,
             "a tensor in must give a tensor of the same shape out")
    _require(values.dtype == torch.float32, who, f"must compute in float32, gave {values.dtype}")
    _require(torch.isfinite(values).all(), who, "gave a non-finite ratio")
    _require(((values >= MIN_RATIO) & (values <= 1)).all(), who, "ratios must lie in [1e-6, 1]")
    rising = (values[1:] > values[:-1]).nonzero()
    _require(not len(rising), who, f"must not increase; it does after r={r[rising[:1].flatten()].tolist()}")


def _test_masks(shape: tuple[int, int, int], gen: torch.Generator) -> dict[str, torch.Tensor]:
    T, H, W = shape
    box = torch.zeros(shape, dtype=torch.bool)
    box[:, H // 4: 3 * H // 4, W // 4: 3 * W // 4] = True
    first = torch.zeros(shape, dtype=torch.bool)
    first[0] = True
    return {"random": torch.rand(shape, generator=gen) < 0.3, "box": box, "hole": ~box,
            "first frame": first, "all given": torch.ones(shape, dtype=torch.bool)}


def check_padding(padding, *, who: str = "padding") -> None:
    """`padding(video, mask)` keeps every condition pixel bit for bit, keeps shape and dtype,
    stays finite, and leaves a fully given video unchanged."""
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, *CLIP, generator=gen)
    for label, mask in _test_masks(CLIP, gen).items():
        padded = padding(video, mask)
        _require(padded.shape == video.shape and padded.dtype == video.dtype, who,
                 f"{label} mask: must return the video's shape and dtype, got {tuple(padded.shape)} {padded.dtype}")
        keep = mask.expand_as(video)
        _require(torch.equal(padded[keep], video[keep]), who, f"{label} mask: changed a condition pixel")
        _require(torch.isfinite(padded).all(), who, f"{label} mask: gave non-finite values")


def check_task(task, *, clip: tuple[int, int, int] = CLIP, factors: tuple[int, int, int] = FACTORS,
               who: str | None = None) -> None:
    """A task's masks have the clip's (and latent grid's) shape, its condition keeps the given
    pixels exactly, and its flags are consistent with its masks."""
    who = who or f"task {getattr(task, 'name', type(task).__name__)}"
    _require(isinstance(getattr(task, "name", None), str) and task.name, who, "needs a `name` string")
    for flag in ("needs_class", "has_condition"):
        _require(isinstance(getattr(task, flag, None), bool), who, f"`{flag}` must be a bool")
    video = torch.rand(2, 3, *clip, generator=torch.Generator().manual_seed(0))
    padded, mask = task.condition(video)
    _require(padded.shape == video.shape and padded.dtype == video.dtype, who,
             f"condition() must return a video of shape {tuple(video.shape)}, got {tuple(padded.shape)}")
    _require(mask.shape == clip and mask.dtype == torch.bool, who,
             f"the pixel mask must be {clip} bool, got {tuple(mask.shape)} {mask.dtype}")
    keep = mask.expand_as(video)
    _require(torch.equal(padded[keep], video[keep]), who, "condition() changed a condition pixel")
    latent_shape = tuple(c // f for c, f in zip(clip, factors))
    latent = task.latent_mask(latent_shape, factors)
    _require(latent.shape == latent_shape and latent.dtype == torch.bool, who,
             f"latent_mask must be {latent_shape} bool, got {tuple(latent.shape)} {latent.dtype}")
    _require(not latent.all() and not mask.all(), who, "leaves nothing to generate")
    if task.has_condition:
        _require(mask.any() and latent.any(), who, "has_condition is True but nothing is given")
    else:
        _require(not mask.any() and not latent.any(), who, "has_condition is False but a region is given")


def check_inflation(inflate, *, preserves_static: bool = True, who: str = "inflation") -> None:
    """`inflate(weight (O, I, kH, kW), kT)` gives (O, I, kT, kH, kW) in the same dtype; with
    `preserves_static`, a video that does not move gives the 2D layer's output."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 4, 3, 3, generator=gen)
    frame = torch.randn(1, 4, 7, 7, generator=gen)
    for kt in (1, 2, 3):
        out = inflate(weight, kt)
        _require(out.shape == (5, 4, kt, 3, 3) and out.dtype == weight.dtype, who,
                 f"kT={kt}: expected (5, 4, {kt}, 3, 3) float32, got {tuple(out.shape)} {out.dtype}")
        if preserves_static:
            video = frame.unsqueeze(2).expand(-1, -1, kt, -1, -1)
            got = nn.functional.conv3d(video, out)[:, :, 0]
            _require(torch.allclose(got, nn.functional.conv2d(frame, weight), atol=1e-4), who,
                     f"kT={kt}: a static video does not give the 2D output")


CHECKS = {
    "schedules": check_schedule,
    "paddings": check_padding,
    "tasks": check_task,
    "inflations": check_inflation,
}


def check_registered(kind: str, name: str, **config) -> None:
    """Build `name` from registry `kind` (default config unless given) and run its check."""
    from magvit.registry import registries

    component = registries()[kind].create(name, **config)
    CHECKS[kind](component, who=f"{kind}.{name}")
