"""What a plugin needs, in one import: `from magvit import api`.

    import attrs
    from magvit import api

    @attrs.define
    class Quadratic:                             # a mask schedule; its fields are config keys
        power: float = attrs.field(default=2.0, validator=api.positive)

        def __call__(self, r):
            return api.ratio_like((1 - api.as_progress(r)) ** self.power, r)

    @api.hookimpl
    def magvit_register_schedules(registry):
        registry.add("quadratic", Quadratic)

A task subclasses `api.Task` and names its padding with `api.padding("edge")`
(`plugins_contrib/magvit-task-rewind` is a complete one). The built-in plugins are written
against this module too. `magvit.testing` has the conformance check for every registry kind
(`check_schedule(Quadratic())`, `check_registered("tasks", "rewind")`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import attrs
import torch

from magvit.core import regions
from magvit.core.masking import latent_mask_from_pixels
from magvit.core.padding import Fill, check_mask, pad_video
from magvit.errors import InvalidValue, MagvitError
from magvit.registry import Registry, hookimpl, registries, validators
from magvit.registry.components import Component, structure_component
from magvit.registry.converter import Problems

__all__ = [
    "MIN_RATIO", "AttentionComponent", "Component", "Fill", "InvalidValue", "MagvitError", "PaddingComponent",
    "Registry", "ScheduleComponent", "Task", "as_component", "as_progress", "at_least",
    "check_mask", "component", "default_component", "finite", "fraction", "hookimpl", "in_range",
    "latent_mask_for", "latent_mask_from_pixels", "load_tokenizer_checkpoint", "pad_video", "padding",
    "positive", "ratio_like", "regions", "registries",
]


# -- references to other plugins ----------------------------------------------------------------
def component(registry: str) -> type[Component]:
    """The config type of a field that names a plugin of `registry` (`{kind = "edge", ...}`)."""
    return Component.of(registry)


PaddingComponent = component("paddings")
ScheduleComponent = component("schedules")
AttentionComponent = component("attentions")


def default_component(registry: str, name: str, **config: Any) -> Any:
    """An attrs field whose default is plugin `name` of `registry` with `config`, looked up by
    name when the instance is made (so a plugin never imports another plugin's classes)."""
    cls = component(registry)
    return attrs.field(factory=lambda: structure_component({"kind": name, **config}, cls),
                       metadata={"magvit_requires": (registry, name)})


def as_component(registry: str, value: Any, what: str | None = None) -> Component:
    """A plugin name, a table `{kind = ..., ...}` or a component -> a component of `registry`
    (for a field that also takes plain Python values: `attrs.field(converter=...)`)."""
    cls = component(registry)
    if isinstance(value, cls):
        return value
    try:
        return structure_component(value, cls)
    except (Problems, TypeError) as exc:
        raise MagvitError(f"{what or registry} {value!r}: {exc}") from None


def padding(name: str, **config: Any) -> Any:
    """A task's `padding` field defaulting to the registered padding `name`."""
    return default_component("paddings", name, **config)


# -- validators (attrs `validator=`): errors read `section.key: must be ..., got ...` -----------
at_least, positive, fraction, in_range, finite = (
    validators.at_least, validators.positive, validators.fraction, validators.in_range, validators.finite,
)


# -- schedules ----------------------------------------------------------------------------------
MIN_RATIO = 1e-6  # gamma(1): the authors' release clips mask ratios to [1e-6, 1]


def as_progress(r) -> torch.Tensor:
    """Progress `r` (float or tensor) as a float32 tensor: schedules compute in float32."""
    return torch.as_tensor(r, dtype=torch.float32)


def ratio_like(ratio: torch.Tensor, r):
    """Finish a schedule: clip to [1e-6, 1]; a float for a float `r`, a tensor for a tensor."""
    ratio = torch.as_tensor(ratio, dtype=torch.float32).clamp(MIN_RATIO, 1.0)
    return ratio if isinstance(r, torch.Tensor) else float(ratio)


# -- tasks --------------------------------------------------------------------------------------
class Task:
    """Base of every task: subclasses set `name` and define `pixel_mask`.

    A task says which pixels of a clip are given (`pixel_mask`), pads the rest with its padding
    plugin (`condition`), and which latent tokens get a condition token when masked
    (`latent_mask`): by default every token whose supervoxel holds a given pixel.
    """

    name: ClassVar[str]
    needs_class: ClassVar[bool] = False
    has_condition: ClassVar[bool] = True
    padding: PaddingComponent

    def pixel_mask(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """(T, H, W) bool, True on the given pixels of a T x H x W clip."""
        raise NotImplementedError

    def latent_mask(self, latent_shape, factors=(4, 8, 8), causal: bool = False) -> torch.Tensor:
        """(t, h, w) bool, True where a masked token takes its condition token. A causal
        tokenizer's first latent frame is the first frame alone (clips of 1 + k·ft frames)."""
        clip = tuple(n * f for n, f in zip(latent_shape, factors))
        if causal:
            clip = (1 + (latent_shape[0] - 1) * factors[0], *clip[1:])
        return latent_mask_from_pixels(self.pixel_mask(clip), factors, causal)

    def condition(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The padded condition video (same shape as `video`) and the (T, H, W) pixel mask."""
        mask = self._video_mask(video)
        return self.pad(video, mask), mask

    @functools.cached_property
    def pad(self):
        """The padding function, built once per task from its `padding` config."""
        chosen = self.padding
        return chosen.build() if isinstance(chosen, Component) else chosen

    def _video_mask(self, video: torch.Tensor) -> torch.Tensor:
        """The pixel mask for `video`, after checking that it is a clip or a batch of clips."""
        if video.dim() not in (4, 5) or video.shape[-4] != 3:
            raise MagvitError(f"task {self.name}: expected a video (B, 3, T, H, W), got {tuple(video.shape)}")
        return self.pixel_mask(tuple(video.shape[-3:])).to(video.device)


def latent_mask_for(task, tokenizer, latent_shape) -> torch.Tensor:
    """`task.latent_mask` on `tokenizer`'s grid (its factors, and causal when it is); a task
    whose `latent_mask` predates `causal` still works with non-causal tokenizers."""
    factors = tuple(tokenizer.factors)
    if getattr(tokenizer, "causal", False):
        return task.latent_mask(tuple(latent_shape), factors, causal=True)
    return task.latent_mask(tuple(latent_shape), factors)


def load_tokenizer_checkpoint(model: torch.nn.Module, checkpoint: str) -> torch.nn.Module:
    """Load a stage-1 run's weights (a run or step folder, or `default`) into a tokenizer
    `model`, the EMA weights when there are some; what a tokenizer factory does when its config
    names a `checkpoint`. Returns `model`."""
    from magvit.core.tokenizer.loading import load_tokenizer_weights
    from magvit.weights import resolve_model_path

    load_tokenizer_weights(model, str(resolve_model_path(checkpoint)))
    return model
