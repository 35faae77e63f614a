"""Built-in feature extractors for evaluation: `i3d` (FVD). Built without weights for tests;
`weights = "PATH"` loads a state dict with the PyTorch I3D port's keys or a TorchScript file,
checked by SHA-256 (`allow_unverified` accepts an unknown file and marks the result).

An extractor maps `(B, 3, T, H, W)` videos in [0, 1] to `(B, width)` float32 features and says
`width`, `verified` and `sha256` (empty without weights).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from magvit.api import MagvitError, hookimpl
from magvit.core.features import InceptionI3d
from magvit.core.features.weights import check_weights_file, read_state_or_script


@attrs.define(kw_only=True)
class I3DConfig:
    weights: str = ""  # a state dict (.pt/.pth/.safetensors) or TorchScript file; "" = random init
    features: Literal["logits", "pool"] = "logits"  # 400 logits (the FVD release) or 1024 pooled
    allow_unverified: bool = False


class I3DFeatures(nn.Module):
    """FVD's preprocessing, then I3D: frames resized to 224x224 (bilinear), values to [-1, 1]."""

    Config = I3DConfig
    size = 224

    def __init__(self, config: I3DConfig | None = None):
        super().__init__()
        self.config = config or I3DConfig()
        self.net = InceptionI3d(400, self.config.features)
        self.script = None
        self.sha256, self.verified = "", False
        if self.config.weights:
            self._load(self.config.weights)
        self.eval().requires_grad_(False)

    @property
    def width(self) -> int:
        return self.net.width

    def _load(self, path: str) -> None:
        checked = check_weights_file(path, "i3d", allow_unverified=self.config.allow_unverified)
        loaded = read_state_or_script(checked.path)
        if isinstance(loaded, torch.jit.ScriptModule):
            if self.config.features != "logits":
                raise MagvitError("the TorchScript I3D returns the 400 logits only; set features = \"logits\"")
            self.script = loaded
        else:
            try:
                self.net.load_state_dict(loaded)
            except RuntimeError as exc:
                raise MagvitError(f"{path} does not fit I3D (the PyTorch port's keys, 400 classes): "
                                  f"{str(exc).splitlines()[0]}") from None
        self.sha256, self.verified = checked.sha256, checked.verified

    @torch.inference_mode()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise MagvitError(f"i3d takes videos (B, 3, T, H, W) in [0, 1], got {tuple(video.shape)}")
        b, _, t, h, w = video.shape
        frames = video.float().transpose(1, 2).reshape(b * t, 3, h, w)
        if (h, w) != (self.size, self.size):
            frames = F.interpolate(frames, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (frames.reshape(b, t, 3, self.size, self.size).transpose(1, 2) * 2 - 1).clamp(-1, 1)
        if self.script is not None:  # the common TorchScript export takes [-1, 1] at 224
            return self.script(x, rescale=False, resize=False, return_features=True).float()
        return self.net(x).float()


@hookimpl
def magvit_register_feature_extractors(registry):
    registry.add("i3d", I3DFeatures)
