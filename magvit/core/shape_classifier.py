"""A small shape classifier for the `synthetic` dataset: which shape kind fills a clip.

It measures class-conditional generation (CG) on synthetic clips: the share of samples whose
shape kind matches the requested class. The network is a per-frame 2D CNN (three 3x3
convolutions with batch norm and 2x2 max pooling, then global max pooling: a frame is scored
by its strongest shape features wherever they are) whose logits are averaged over the
frames, so it judges the shapes' look in each frame and not their motion, and takes clips of any
length and any square size. `ShapeClassifierConfig` records the dataset geometry it was trained on
(`num_classes`, `frames`, `resolution`) so a saved file can be checked against a dataset.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn


@attrs.frozen(kw_only=True)
class ShapeClassifierConfig:
    num_classes: int = 4
    frames: int = 8          # the clip length and size it was trained on (it accepts any)
    resolution: int = 32
    width: int = 16          # channels of the first convolution; doubled after each pooling

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ShapeClassifierConfig:
        return cls(**data)


class ShapeClassifier(nn.Module):
    """`(B, 3, T, H, W)` clips in [0, 1] -> `(B, num_classes)` logits (frame logits averaged)."""

    def __init__(self, config: ShapeClassifierConfig | None = None):
        super().__init__()
        self.config = config or ShapeClassifierConfig()
        w = self.config.width
        self.convs = nn.ModuleList([nn.Conv2d(3, w, 3, padding=1),
                                    nn.Conv2d(w, 2 * w, 3, padding=1),
                                    nn.Conv2d(2 * w, 4 * w, 3, padding=1)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(c) for c in (w, 2 * w, 4 * w)])
        self.head = nn.Linear(4 * w, self.config.num_classes)
        # what a saved file says it was trained on (a data config as a dict) and scored
        self.trained_on: dict | None = None
        self.held_out_accuracy: float | None = None
        # the tokenizer whose round trips it also trained on (None: clean clips only), and its
        # accuracy on the held-out clips' round trips through it
        self.round_trip_source: str | None = None
        self.held_out_roundtrip_accuracy: float | None = None

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def frame_logits(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, 3, H, W)` frames in [0, 1] -> `(N, num_classes)` logits, in fp32."""
        x = frames.float() * 2 - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = F.relu(norm(conv(x)))
            if i < len(self.convs) - 1 and min(x.shape[-2:]) >= 2:
                x = F.max_pool2d(x, 2)
        return self.head(x.amax(dim=(-2, -1)))  # where a shape is, not how much of the frame

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"expected clips (B, 3, T, H, W), got {tuple(video.shape)}")
        b, _, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, 3, h, w)
        return self.frame_logits(frames).reshape(b, t, -1).mean(dim=1)


@torch.no_grad()
def predict(model: ShapeClassifier, videos: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """`(B,)` int64 predicted classes of `videos (B, 3, T, H, W)`, in eval mode, `batch_size`
    clips at a time."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        return torch.cat([model(part.to(device)).argmax(dim=1).cpu()
                          for part in videos.split(batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: ShapeClassifier, videos: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of `videos` (B, 3, T, H, W) that `model` assigns to `labels` (B,)."""
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if len(videos) != len(labels):
        raise ValueError(f"{len(videos)} clips but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("accuracy of no clips is undefined")
    return float((predict(model, videos) == labels.cpu()).double().mean())
