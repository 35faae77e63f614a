"""Procedural "bouncing shapes" clips: tests and the bundled default model train on them.

Each clip is drawn from its own generator, seeded by (split, seed, index), so the same seed gives
the same clips on any machine and in any worker, and the train and eval splits never share one.

How a clip is made:

1. Pick the class `c`. The class fixes both the shape kind and its direction of motion:
   0 moves right, 1 down, 2 down-right, 3 up-right (`num_classes` < 4 uses the first ones; 0
   draws any kind and labels it -1). `kinds` picks the four shape kinds:
   - `"contour"`: circle, square, diamond, ring, told apart by their outlines;
   - `"mass"`: disk, wide bar, tall bar, cross, told apart by where their mass lies, which a
     coarse or blurred view of one frame still shows (the bars reach 1.25 radii along their
     long axis and the cross's arms 1.1, so like the diamond they may cross a wall a little
     before they bounce).
2. Paint a background: a vertical gradient between two dark random colours
   (`background = "gradient"`), or one flat dark colour (`"flat"`).
3. Place 2 to 3 shapes of kind `c` (`min_shapes`, `max_shapes`), each with a random bright
   colour (any hue, or one of `palette` evenly spaced hues), a radius of 10-16% of the frame
   (`min_radius`, `max_radius`) and a random position inside the frame.
4. Move every shape by `speed` (a fraction of the frame per frame) along the class direction
   (with `per_axis_speed`, diagonal shapes move `speed` along each axis, so every class moves a
   whole number of pixels per frame on each axis when `speed * resolution` is whole), bouncing
   off the walls; later shapes are drawn over earlier ones with anti-aliased edges (`edge`
   pixels wide).
5. With `grid = G` pixels, every centre starts on a multiple of G pixels and bounces between the
   grid lines nearest the walls that the shape does not cross, so a shape moving G/2 pixels per
   frame sits on the grid every other frame. For the tiny tokenizer (4x4-pixel patches, 2 frames
   per latent frame) `grid = 4` makes a moving shape's patches repeat exactly one token over per
   latent frame, instead of at a new sub-patch offset each time.

The shape kind is visible in any single frame, and the first frame fixes all later ones (the
speed is constant and every clip starts moving in the class direction), so class-conditional
generation and frame prediction from one frame are both well posed for a small model.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch.utils.data import Dataset

from magvit.core.data.seeding import item_generator
from magvit.errors import InvalidValue, MagvitError

SPLITS = ("train", "eval")
BACKGROUNDS = ("gradient", "flat")
# (shape kind, unit direction (dx, dy) in image coordinates, y pointing down)
MOTION_CLASSES = (
    ("circle", (1.0, 0.0)),
    ("square", (0.0, 1.0)),
    ("diamond", (math.sqrt(0.5), math.sqrt(0.5))),
    ("ring", (math.sqrt(0.5), -math.sqrt(0.5))),
)
# the shape kinds of each `kinds` set, in class order (the directions are MOTION_CLASSES')
SHAPE_SETS = {
    "contour": tuple(kind for kind, _ in MOTION_CLASSES),
    "mass": ("disk", "wide bar", "tall bar", "cross"),
}


def _positive(_instance, attribute, value):
    if not value > 0:  # NaN too
        raise InvalidValue(attribute.name, f"must be positive, got {value}")
    if not math.isfinite(value):
        raise InvalidValue(attribute.name, f"must be finite, got {value}")


def _class_count(_instance, attribute, value):
    if not 0 <= value <= len(MOTION_CLASSES):
        raise InvalidValue(attribute.name, f"must be in 0..{len(MOTION_CLASSES)}, got {value}")


@attrs.define(kw_only=True)
class SyntheticShapes:
    """Config of the `synthetic` dataset; `make(split, seed)` builds the torch Dataset."""

    frames: int = attrs.field(default=8, validator=_positive)
    resolution: int = attrs.field(default=32, validator=_positive)
    num_classes: int = attrs.field(default=4, validator=_class_count)
    train_clips: int = attrs.field(default=2048, validator=_positive)
    eval_clips: int = attrs.field(default=256, validator=_positive)
    min_shapes: int = attrs.field(default=2, validator=_positive)
    max_shapes: int = attrs.field(default=3, validator=_positive)
    speed: float = attrs.field(default=0.0625, validator=_positive)
    min_radius: float = attrs.field(default=0.10, validator=_positive)
    max_radius: float = attrs.field(default=0.16, validator=_positive)
    # 0: any hue; N: one of N evenly spaced hues at full saturation and value
    palette: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    background: str = attrs.field(default="gradient", validator=attrs.validators.in_(BACKGROUNDS))
    per_axis_speed: bool = False
    edge: float = attrs.field(default=1.0, validator=_positive)  # anti-aliased edge width, in pixels
    grid: int = attrs.field(default=0, validator=attrs.validators.ge(0))  # pixels; 0: any position
    kinds: str = attrs.field(default="contour", validator=attrs.validators.in_(tuple(SHAPE_SETS)))

    def __attrs_post_init__(self) -> None:
        if self.max_shapes < self.min_shapes:
            raise ValueError(
                f"max_shapes ({self.max_shapes}) must be at least min_shapes ({self.min_shapes})"
            )
        if not self.min_radius <= self.max_radius < 0.5:
            raise ValueError(f"radii must satisfy min_radius <= max_radius < 0.5, got "
                             f"{self.min_radius} and {self.max_radius}")
        if self.grid and 2 * _grid_margin(self.max_radius, self.grid, self.resolution) >= self.resolution:
            raise ValueError(f"grid = {self.grid} leaves a shape of max_radius {self.max_radius} no "
                             f"room to move in {self.resolution} pixels; use a smaller grid or radius")

    def make(self, split: str, seed: int = 0) -> SyntheticShapesDataset:
        if split not in SPLITS:
            raise MagvitError(f"unknown split {split!r} for the synthetic dataset; use 'train' or 'eval'")
        size = self.train_clips if split == "train" else self.eval_clips
        return SyntheticShapesDataset(self, split, seed, size)


class SyntheticShapesDataset(Dataset):
    """`size` fixed clips; item `i` is `{"video": (3, T, H, W) float32, "label": int}`."""

    def __init__(self, config: SyntheticShapes, split: str, seed: int, size: int):
        self.config, self.split, self.seed, self.size = config, split, seed, size
        pixel_centres = (torch.arange(config.resolution) + 0.5) / config.resolution
        self._y, self._x = torch.meshgrid(pixel_centres, pixel_centres, indexing="ij")

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Clips are fixed per index, so the epoch changes nothing (the training loop calls it)."""

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(f"clip {index} out of range for {self.size} {self.split} clips")
        cfg = self.config
        g = item_generator("synthetic", self.split, self.seed, index)
        label = int(torch.randint(cfg.num_classes or len(MOTION_CLASSES), (), generator=g))
        shape, direction = SHAPE_SETS[cfg.kinds][label], MOTION_CLASSES[label][1]
        if cfg.per_axis_speed:
            direction = tuple(math.copysign(1.0, d) if d else 0.0 for d in direction)
        video = self._background(g).expand(cfg.frames, 3, -1, -1).clone()
        count = int(torch.randint(cfg.min_shapes, cfg.max_shapes + 1, (), generator=g))
        steps = torch.arange(cfg.frames, dtype=torch.float32)[:, None, None]
        for _ in range(count):
            colour = _bright_colour(g, cfg.palette)
            radius = cfg.min_radius + (cfg.max_radius - cfg.min_radius) * float(torch.rand((), generator=g))
            if cfg.grid:  # the centre's range [margin, 1 - margin] starts and ends on grid lines
                margin = _grid_margin(radius, cfg.grid, cfg.resolution) / cfg.resolution
                lines = round((1 - 2 * margin) * cfg.resolution / cfg.grid) + 1
                start = margin + torch.randint(lines, (2,), generator=g) * (cfg.grid / cfg.resolution)
            else:
                margin = radius
                start = radius + (1 - 2 * radius) * torch.rand(2, generator=g)
            cx = _bounce(start[0] + cfg.speed * direction[0] * steps, margin)
            cy = _bounce(start[1] + cfg.speed * direction[1] * steps, margin)
            distance = _signed_distance(shape, self._x - cx, self._y - cy, radius)
            alpha = (0.5 - distance * cfg.resolution / cfg.edge).clamp(0, 1)[:, None]  # (T, 1, H, W)
            video = video * (1 - alpha) + colour[None, :, None, None] * alpha
        return {"video": video.permute(1, 0, 2, 3).contiguous(),
                "label": label if cfg.num_classes else -1}

    def _background(self, g: torch.Generator) -> torch.Tensor:
        top, bottom = 0.35 * torch.rand(2, 3, generator=g)
        if self.config.background == "flat":
            bottom = top
        return top[:, None, None] + (bottom - top)[:, None, None] * self._y  # (3, H, W)


def _bright_colour(g: torch.Generator, palette: int = 0) -> torch.Tensor:
    """A saturated colour: a random hue at saturation and value in [0.75, 1], or with a
    `palette`, one of that many evenly spaced hues at full saturation and value."""
    hue, saturation, value = torch.rand(3, generator=g)
    if palette:
        hue, saturation, value = torch.floor(hue * palette) / palette, torch.tensor(1.0), torch.tensor(1.0)
    else:
        saturation, value = 0.75 + 0.25 * saturation, 0.75 + 0.25 * value
    k = (torch.tensor([5.0, 3.0, 1.0]) + hue * 6) % 6
    return value - value * saturation * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def _grid_margin(radius: float, grid: int, resolution: int) -> int:
    """The first grid line (in pixels) at which a centre keeps a shape of `radius` in the frame."""
    return grid * math.ceil(radius * resolution / grid - 1e-9)


def _bounce(position: torch.Tensor, margin: float) -> torch.Tensor:
    """Fold a free path back into [margin, 1 - margin], as a ball reflecting off the walls."""
    span = 1 - 2 * margin
    folded = (position - margin) % (2 * span)
    return margin + torch.where(folded > span, 2 * span - folded, folded)


def _signed_distance(shape: str, dx: torch.Tensor, dy: torch.Tensor, radius: float) -> torch.Tensor:
    """Distance (as a fraction of the frame) outside the shape's edge; negative inside."""
    if shape == "circle":
        return torch.hypot(dx, dy) - radius
    if shape == "square":
        return torch.maximum(dx.abs(), dy.abs()) - 0.85 * radius
    if shape == "diamond":
        return (dx.abs() + dy.abs() - 1.2 * radius) * math.sqrt(0.5)
    if shape == "ring":
        return (torch.hypot(dx, dy) - 0.7 * radius).abs() - 0.3 * radius
    if shape == "disk":
        return torch.hypot(dx, dy) - 0.9 * radius
    if shape == "wide bar":
        return _box(dx, dy, 1.25 * radius, 0.5 * radius)
    if shape == "tall bar":
        return _box(dx, dy, 0.5 * radius, 1.25 * radius)
    if shape == "cross":
        arms = _box(dx, dy, 1.1 * radius, 0.4 * radius), _box(dx, dy, 0.4 * radius, 1.1 * radius)
        return torch.minimum(*arms)
    raise ValueError(f"unknown shape kind {shape!r}")


def _box(dx: torch.Tensor, dy: torch.Tensor, half_width: float, half_height: float) -> torch.Tensor:
    """Chebyshev-style distance outside an axis-aligned box (exact inside; enough for the edge)."""
    return torch.maximum(dx.abs() - half_width, dy.abs() - half_height)
