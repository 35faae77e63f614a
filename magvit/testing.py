"""Conformance checks for plugins, one per registry kind: run them on your own components.

    from magvit.testing import check_task
    def test_my_task():
        check_task(MyTask())

`check_registered(kind, name, **config)` builds a registered plugin (default config unless
given), checks its declared config's numbers (`check_config`) and runs the check for its kind;
magvit's own suite runs it over every registered name.
Each check raises `AssertionError` naming the plugin and the broken rule. The checks use tiny
inputs: a tokenizer or transformer is best checked at a small preset (`preset="tiny"`).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import attrs
import torch
from torch import nn

from magvit.errors import MagvitError

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


def check_tokenizer(tokenizer, *, clip: tuple[int, int, int] | None = None, who: str = "tokenizer") -> None:
    """An `nn.Module` with `factors`, `codebook_size` and `latent_shape`; `encode` gives int64
    ids in range of the latent grid's shape, `decode` a finite video in [0, 1] of the clip's
    shape; ids outside the codebook are refused; `forward` gives a reconstruction and an `aux`
    dict whose scalar losses stay float32 under bf16 autocast. A `causal` tokenizer's first
    latent frame sees the first frame alone; one with an `encoder_halo` (pixels a token sees
    beyond its patch) keeps its first column's tokens when pixels farther right change; one with
    a `decoder_halo` (pixels beyond a token's patch that it reaches when decoded) keeps the first
    patch's pixels farther left when the tokens of every other column change."""
    _require(isinstance(tokenizer, nn.Module), who, "must be a torch.nn.Module")
    factors, codes = tuple(tokenizer.factors), tokenizer.codebook_size
    _require(len(factors) == 3 and all(isinstance(f, int) and f >= 1 for f in factors), who,
             f"factors must be three positive ints, got {factors}")
    _require(isinstance(codes, int) and codes >= 2, who, f"codebook_size must be an int >= 2, got {codes!r}")
    causal = bool(getattr(tokenizer, "causal", False))
    clip = clip or (causal + 2 * factors[0], 2 * factors[1], 2 * factors[2])
    latent = (causal + (clip[0] - causal) // factors[0], clip[1] // factors[1], clip[2] // factors[2])
    _require(tuple(tokenizer.latent_shape(*clip)) == latent, who,
             f"latent_shape{clip} must be {latent}, got {tokenizer.latent_shape(*clip)}")
    if max(factors) > 1:
        odd = tuple(c + (1 if f > 1 else 0) for c, f in zip(clip, factors))
        _raises(MagvitError, lambda: tokenizer.latent_shape(*odd), who,
                f"latent_shape{odd} is not divisible by {factors} and must raise MagvitError")
    tokenizer.eval()
    video = torch.rand(2, 3, *clip, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids = tokenizer.encode(video)
        _require(ids.shape == (2, *latent) and ids.dtype == torch.int64, who,
                 f"encode must give (2, {', '.join(map(str, latent))}) int64, got {tuple(ids.shape)} {ids.dtype}")
        _require(ids.min() >= 0 and ids.max() < codes, who, f"ids must lie in [0, {codes})")
        _require(torch.equal(tokenizer.encode(video), ids), who, "encode is not deterministic in eval mode")
        out = tokenizer.decode(ids)
        _require(out.shape == video.shape and out.dtype == torch.float32, who,
                 f"decode must give {tuple(video.shape)} float32, got {tuple(out.shape)} {out.dtype}")
        _require(torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, who,
                 "decode must give finite values in [0, 1]")
        _raises(MagvitError, lambda: tokenizer.decode(torch.full_like(ids, codes)), who,
                "decoding an id >= codebook_size must raise MagvitError")
        if causal:  # the first latent frame sees the first frame only
            later = video.clone()
            later[:, :, 1:] = torch.rand(later[:, :, 1:].shape, generator=torch.Generator().manual_seed(1))
            _require(torch.equal(tokenizer.encode(later)[:, 0], ids[:, 0]), who,
                     "causal: changing frames after the first changed the first latent frame's tokens")
        halo = getattr(tokenizer, "encoder_halo", None)
        if halo is not None and clip[2] > factors[2] + halo:  # a local encoder's first column
            far = video.clone()
            far[..., factors[2] + halo:] = torch.rand(far[..., factors[2] + halo:].shape,
                                                     generator=torch.Generator().manual_seed(2))
            _require(torch.equal(tokenizer.encode(far)[..., 0], ids[..., 0]), who,
                     f"encoder_halo = {halo}: changing pixels more than {halo} columns right of the "
                     "first patch changed its tokens")
        reach = getattr(tokenizer, "decoder_halo", None)
        if reach is not None and latent[2] > 1 and factors[2] > reach:  # a local decoder's first column
            moved = ids.clone()
            moved[..., 1:] = (moved[..., 1:] + 1) % codes
            inside = factors[2] - reach
            _require(torch.allclose(tokenizer.decode(moved)[..., :inside], out[..., :inside], atol=1e-5), who,
                     f"decoder_halo = {reach}: changing the tokens right of the first column changed "
                     f"its pixels more than {reach} columns left of the second patch")
    tokenizer.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        recon, aux = tokenizer(video)
    tokenizer.eval()
    _require(recon.shape == video.shape, who, f"forward must reconstruct {tuple(video.shape)}, got {tuple(recon.shape)}")
    _require(isinstance(aux, dict), who, "forward must return (reconstruction, aux dict)")
    for key, value in aux.items():
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point():
            _require(value.dtype == torch.float32 and torch.isfinite(value), who,
                     f"aux[{key!r}] must be a finite float32 under bf16 autocast, got {value.dtype} {value.item()}")


def check_quantizer(quantizer, *, who: str = "quantizer") -> None:
    """An `nn.Module` with int `codebook_size` and `dim`; on a `(B, dim, t, h, w)` latent,
    `codes` gives int64 ids in range, `lookup(codes)` the `(B, dim, t, h, w)` vectors that
    `forward` outputs (straight-through, with gradients to the latent), `forward`'s `aux["codes"]`
    equals `codes`, and its scalar losses stay finite float32 under bf16 autocast. Where it has
    them (every `Quantizer` subclass does): `nearest_codes(lookup(ids))` gives the ids back and
    `code_bounds()` holds every looked-up vector."""
    _require(isinstance(quantizer, nn.Module), who, "must be a torch.nn.Module")
    size, dim = quantizer.codebook_size, quantizer.dim
    _require(isinstance(size, int) and size >= 2, who, f"codebook_size must be an int >= 2, got {size!r}")
    _require(isinstance(dim, int) and dim >= 1, who, f"dim must be an int >= 1, got {dim!r}")
    z = torch.randn(2, dim, 2, 3, 3, generator=torch.Generator().manual_seed(0)) * 2
    ids = quantizer.codes(z)
    _require(ids.shape == (2, 2, 3, 3) and ids.dtype == torch.int64, who,
             f"codes must give (2, 2, 3, 3) int64, got {tuple(ids.shape)} {ids.dtype}")
    _require(ids.min() >= 0 and ids.max() < size, who, f"ids must lie in [0, {size})")
    vectors = quantizer.lookup(ids)
    _require(vectors.shape == z.shape and torch.isfinite(vectors).all(), who,
             f"lookup must give finite {tuple(z.shape)}, got {tuple(vectors.shape)}")
    z.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, aux = quantizer(z)
    _require(torch.equal(aux["codes"], ids), who, "forward's aux['codes'] must equal codes(z)")
    _require(torch.allclose(quantized.float(), vectors.float(), atol=1e-6), who,
             "forward must output the looked-up code vectors")
    quantized.float().sum().backward()
    _require(z.grad is not None and bool(z.grad.abs().sum() > 0), who,
             "forward must pass gradients to the latent (straight-through)")
    for key, value in aux.items():
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point():
            _require(value.dtype == torch.float32 and torch.isfinite(value), who,
                     f"aux[{key!r}] must be a finite float32 under bf16 autocast, got {value.dtype}")
    _require("quantizer_loss" in aux, who, "aux must hold 'quantizer_loss' (a zero tensor when there is none)")
    if callable(getattr(quantizer, "nearest_codes", None)):  # the condition fit's snap (optional)
        _require(torch.equal(quantizer.nearest_codes(vectors), ids), who,
                 "nearest_codes(lookup(ids)) must give the ids back")
    if callable(getattr(quantizer, "code_bounds", None)):
        low, high = quantizer.code_bounds()
        rows = vectors.float().movedim(1, -1).reshape(-1, dim)
        _require(tuple(low.shape) == tuple(high.shape) == (dim,), who,
                 f"code_bounds must give two ({dim},) tensors, got {tuple(low.shape)} and {tuple(high.shape)}")
        _require(bool((rows >= low - 1e-6).all() and (rows <= high + 1e-6).all()), who,
                 "code_bounds must hold every code vector that lookup gives")


def check_transformer(model, *, vocab_size: int, num_positions: int, codebook_size: int,
                      who: str = "transformer") -> None:
    """`forward(ids (B, L))` gives finite `(B, L, codebook_size)` logits for any L up to
    `num_positions`; every position sees the whole sequence, unless `causal=True`, where no
    position sees a later one."""
    _require(isinstance(model, nn.Module), who, "must be a torch.nn.Module")
    model.eval()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (2, num_positions), generator=gen)
    with torch.no_grad():
        logits = model(ids)
        _require(logits.shape == (2, num_positions, codebook_size) and logits.is_floating_point(), who,
                 f"logits must be (2, {num_positions}, {codebook_size}), got {tuple(logits.shape)}")
        _require(torch.isfinite(logits).all(), who, "gave non-finite logits")
        short = model(ids[:, : num_positions - 1])
        _require(short.shape == (2, num_positions - 1, codebook_size), who, "must take shorter sequences")
        changed = ids.clone()
        changed[:, -1] = (changed[:, -1] + 1) % vocab_size
        _require(not torch.allclose(model(changed)[:, 0], logits[:, 0]), who,
                 "bidirectional: the first position must see the last token")
        try:
            causal = model(ids, causal=True), model(changed, causal=True)
        except TypeError:
            return  # no causal mode: decoders that need one cannot use this model
        _require(torch.allclose(causal[0][:, :-1], causal[1][:, :-1], atol=1e-5), who,
                 "causal=True: a position saw a later token")


def check_decoder(decoder, *, tokens: int = 24, who: str = "decoder") -> None:
    """`decode(logits_fn, cond_tokens, cond_mask, generator=...)` gives `(B, N)` int64 ids in
    the codebook; a model certain of every token gets exactly those tokens back; one seed
    gives one result."""
    codes = int(getattr(decoder, "codebook_size", 1024))
    mask_id = getattr(decoder, "mask_id", None)
    mask_id = codes if mask_id is None else mask_id
    wanted = (torch.arange(tokens) * 7 + 3) % codes
    calls = []

    def certain(input_tokens):
        calls.append(tuple(input_tokens.shape))
        logits = torch.zeros(*input_tokens.shape, codes)
        logits[..., :] = -50.0
        logits[:, torch.arange(input_tokens.shape[1]), wanted[: input_tokens.shape[1]]] = 50.0
        return logits

    cond_tokens = torch.zeros(2, tokens, dtype=torch.int64)
    cond_mask = torch.zeros(2, tokens, dtype=torch.bool)
    out = decoder.decode(certain, cond_tokens, cond_mask, generator=torch.Generator().manual_seed(0))
    _require(isinstance(out, torch.Tensor) and out.shape == (2, tokens) and out.dtype == torch.int64, who,
             f"decode must give (2, {tokens}) int64, got {getattr(out, 'shape', out)}")
    _require(calls and all(c[0] == 2 for c in calls), who, "logits_fn must be called on the batch")
    _require(((out >= 0) & (out < codes)).all() and not (out == mask_id).any(), who,
             f"ids must lie in the codebook [0, {codes}) (no [MASK] left)")
    _require(torch.equal(out, wanted.expand(2, -1)), who, "a model certain of every token must get those tokens")

    noisy_gen = torch.Generator().manual_seed(1)
    noise = torch.randn(tokens, codes, generator=noisy_gen)

    def noisy(input_tokens):
        return noise[: input_tokens.shape[1]].expand(input_tokens.shape[0], -1, -1).clone()

    first = decoder.decode(noisy, cond_tokens, cond_mask, generator=torch.Generator().manual_seed(5))
    again = decoder.decode(noisy, cond_tokens, cond_mask, generator=torch.Generator().manual_seed(5))
    _require(torch.equal(first, again), who, "the same generator seed must give the same tokens")


def _reference_attention(q, k, v, causal):
    scores = (q.double() @ k.double().transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(k.shape[-2] - q.shape[-2])
        scores = scores.masked_fill(~allowed, -math.inf)
    return (scores.softmax(-1) @ v.double()).float()


def check_attention(attend, *, device: str = "cpu", who: str = "attention") -> None:
    """`attend(q, k, v, causal=..., dropout=0.0)` on `(B, heads, L, head_dim)` equals softmax
    attention, with the causal mask aligned to the bottom right when queries are fewer than keys."""
    gen = torch.Generator().manual_seed(0)
    for q_len, k_len, causal in ((6, 6, False), (6, 6, True), (2, 6, True), (1, 6, True)):
        q = torch.randn(2, 3, q_len, 8, generator=gen)
        k, v = torch.randn(2, 2, 3, k_len, 8, generator=gen)
        out = attend(q.to(device), k.to(device), v.to(device), causal=causal, dropout=0.0).cpu()
        _require(out.shape == q.shape, who, f"must return the queries' shape {tuple(q.shape)}, got {tuple(out.shape)}")
        _require(torch.allclose(out.float(), _reference_attention(q, k, v, causal), atol=1e-4), who,
                 f"differs from softmax attention (q_len={q_len}, k_len={k_len}, causal={causal})")


def check_dataset(dataset, *, who: str = "dataset") -> None:
    """The config says `num_classes`, `frames`, `resolution`; `make(split, seed)` gives a
    non-empty torch Dataset of `{"video": (3, frames, res, res) float32 in [0, 1], "label": int}`
    with labels in [-1, num_classes), the same items for the same seed."""
    for field in ("num_classes", "frames", "resolution"):
        _require(isinstance(getattr(dataset, field, None), int), who, f"`{field}` must be an int")
    shape = (3, dataset.frames, dataset.resolution, dataset.resolution)
    for split in ("train", "eval"):
        data = dataset.make(split, seed=0)
        _require(len(data) > 0, who, f"make({split!r}) gave an empty dataset")
        item = data[0]
        _require(isinstance(item, dict) and {"video", "label"} <= set(item), who,
                 "items must be dicts with 'video' and 'label'")
        video, label = item["video"], item["label"]
        _require(tuple(video.shape) == shape and video.dtype == torch.float32, who,
                 f"{split} video must be {shape} float32, got {tuple(video.shape)} {video.dtype}")
        _require(torch.isfinite(video).all() and video.min() >= 0 and video.max() <= 1, who,
                 f"{split} video values must lie in [0, 1]")
        _require(isinstance(label, int) and -1 <= label < dataset.num_classes, who,
                 f"{split} label must be an int in [-1, {dataset.num_classes}), got {label!r}")
        _require(torch.equal(dataset.make(split, seed=0)[0]["video"], video), who,
                 f"make({split!r}, seed=0) twice must give the same items")


def check_perceptual_loss(loss, *, who: str = "perceptual loss") -> None:
    """`loss(video, target)` on `(B, 3, T, H, W)` videos in [0, 1] is a finite float32 scalar,
    about 0 for identical videos and larger for different ones, with gradients to `video`
    even under bf16 autocast."""
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 2, 32, 32, generator=gen)
    video = torch.rand(1, 3, 2, 32, 32, generator=gen).requires_grad_(True)
    same = loss(target, target)
    _require(isinstance(same, torch.Tensor) and same.dim() == 0, who, "must return a scalar tensor")
    _require(abs(float(same)) < 1e-5, who, f"identical videos must score 0, got {float(same)}")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(video, target)
    _require(value.dtype == torch.float32 and torch.isfinite(value), who,
             f"must be a finite float32 under bf16 autocast, got {value.dtype}")
    _require(float(value.detach()) > float(same), who, "different videos must score above identical ones")
    _require(value.requires_grad, who, "must pass finite, non-zero gradients to the video (the loss has no graph)")
    value.backward()
    _require(video.grad is not None and torch.isfinite(video.grad).all() and video.grad.abs().sum() > 0, who,
             "must pass finite, non-zero gradients to the video")


def check_logger(logger, *, who: str = "logger") -> None:
    """`start(run_dir, start_step, config)`, `log(step, split, metrics)`, `log_images(step,
    {name: (3, H, W)})` and `close()` run without error, write only inside the run folder, and
    leave something there; a second `start` at a later step (a resume) works too."""
    import tempfile
    from pathlib import Path

    for method in ("start", "log", "log_images", "close"):
        _require(callable(getattr(logger, method, None)), who, f"needs a `{method}` method")
    with tempfile.TemporaryDirectory() as tmp:
        outside = set(Path(tmp).iterdir())
        run_dir = Path(tmp) / "run"
        image = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(0))
        for start in (0, 2):
            logger.start(run_dir, start, {"run": {"name": "check"}, "train": {"steps": 4}})
            for step in range(start + 1, start + 3):
                logger.log(step, "train", {"loss": 1.0 / step, "lr": 1e-4})
            logger.log(start + 2, "eval", {"psnr": 20.0})
            logger.log_images(start + 2, {"reconstruction": image})
            logger.close()
        _require(run_dir.is_dir() and any(run_dir.rglob("*")), who, "wrote nothing into the run folder")
        _require(set(Path(tmp).iterdir()) - {run_dir} == outside, who, "wrote outside the run folder")


def check_feature_extractor(extractor, *, clip: tuple[int, int, int] = (16, 64, 64),
                            who: str = "feature extractor") -> None:
    """`extractor(video (B, 3, T, H, W) in [0, 1])` gives finite float32 `(B, width)` features,
    the same for the same clip, without gradients; it says `width` and `verified`."""
    width = getattr(extractor, "width", None)
    _require(isinstance(width, int) and width > 0, who, f"`width` must be a positive int, got {width!r}")
    _require(isinstance(getattr(extractor, "verified", None), bool), who, "`verified` must be a bool")
    one = torch.rand(1, 3, *clip, generator=torch.Generator().manual_seed(0))
    features = extractor(torch.cat([one, one, 1 - one]))
    _require(features.shape == (3, width) and features.dtype == torch.float32, who,
             f"features must be (3, {width}) float32, got {tuple(features.shape)} {features.dtype}")
    _require(torch.isfinite(features).all(), who, "gave non-finite features")
    _require(torch.allclose(features[0], features[1], atol=1e-5), who, "the same clip gave different features")
    _require(not torch.allclose(features[0], features[2]), who, "different clips gave the same features")
    _require(not features.requires_grad, who, "features must not carry gradients (evaluation only)")


def _number_kind(field) -> str | None:
    """'int' or 'float' for a field typed int, float or either with None; else None."""
    tp = field.type
    if isinstance(tp, str):  # an annotation attrs could not resolve
        return {"int": "int", "float": "float", "int | None": "int", "float | None": "float"}.get(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else None
    return {int: "int", float: "float"}.get(tp)


def _declares_config(factory) -> bool:
    return attrs.has(factory) or attrs.has(getattr(factory, "Config", None) or object)


def check_config(factory, *, who: str = "config", **config: Any) -> list[str]:
    """A component's declared config (an attrs class, or its `Config`) validates every number
    it takes: each int and float field has a validator, and each float field refuses NaN
    through the same path a TOML value takes, with the field's dotted name in the message.
    `config` fills the fields that have no default. Returns the number fields it checked.

    A component whose config is read from its signature cannot range-check a number: declare
    an attrs class with `attrs.field(validator=...)` (`magvit.api` has the validators)."""
    from magvit.errors import ConfigError
    from magvit.registry.schema import schema_of, validate

    _require(_declares_config(factory), who, "declare the config as an attrs class (or a nested `Config`) so its "
             "numbers can carry validators; a plain signature checks types only")
    schema = schema_of(factory)
    try:
        attrs.resolve_types(schema)
    except Exception:  # annotations naming what the module cannot import: read them as text
        pass
    validate(factory, config, path=who)  # the given config (defaults elsewhere) is valid
    fields = {f.name: f for f in attrs.fields(schema) if f.init}
    numbers = {name: kind for name, f in fields.items() if (kind := _number_kind(f))}
    unchecked = [name for name in numbers if fields[name].validator is None]
    _require(not unchecked, who, f"number fields without a validator: {', '.join(unchecked)} (a negative "
             "size or a NaN weight would reach the component unchecked)")
    for name in (n for n, kind in numbers.items() if kind == "float"):
        try:
            validate(factory, {**config, name: math.nan}, path=who)
        except ConfigError as exc:
            _require(f"{who}.{name}" in str(exc), who, f"{name} = nan was refused without naming "
                     f"{who}.{name}: {exc}")
            continue
        raise AssertionError(f"{who}: {name} = nan passed its validator")
    return list(numbers)


def _raises(error: type[BaseException], call, who: str, rule: str) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError(f"{who}: {rule}")


CHECKS = {
    "tokenizers": check_tokenizer,
    "quantizers": check_quantizer,
    "transformers": check_transformer,
    "tasks": check_task,
    "paddings": check_padding,
    "schedules": check_schedule,
    "decoders": check_decoder,
    "inflations": check_inflation,
    "attentions": check_attention,
    "datasets": check_dataset,
    "perceptual_losses": check_perceptual_loss,
    "loggers": check_logger,
    "feature_extractors": check_feature_extractor,
}

# What a check needs beyond the component, read from its validated config.
_SIZES = ("vocab_size", "num_positions", "codebook_size")


def check_registered(kind: str, name: str, **config: Any) -> None:
    """Build `name` from registry `kind` (default config unless given) and run its check."""
    from magvit.registry import registries

    registry = registries()[kind]
    factory = registry.get(name)
    who = f"{kind}.{name}"
    if _declares_config(factory):  # a config read from a signature carries no validators
        check_config(factory, who=who, **config)
    component = registry.create(name, **config)
    if kind == "transformers":
        from magvit.registry.schema import validate

        structured = validate(registry.get(name), config, path=who)
        CHECKS[kind](component, who=who, **{key: getattr(structured, key) for key in _SIZES})
    else:
        CHECKS[kind](component, who=who)
