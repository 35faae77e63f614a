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

from magvit.api import MagvitError, at_least, hookimpl
from magvit.core.features import C3D, InceptionI3d
from magvit.core.features.weights import check_weights_file, read_state_or_script


def load_checked(net: nn.Module, path: str, network: str, layout: str, allow_unverified: bool,
                 script=None) -> tuple[str, bool]:
    """Check `path` by SHA-256, load it into `net` (or hand a TorchScript module to `script`);
    return (sha256, verified)."""
    checked = check_weights_file(path, network, allow_unverified=allow_unverified)
    loaded = read_state_or_script(checked.path)
    if isinstance(loaded, torch.jit.ScriptModule):
        if script is None:
            raise MagvitError(f"{path}: {network} loads a state dict, not a TorchScript file")
        script(loaded)
    else:
        try:
            net.load_state_dict(loaded)
        except RuntimeError as exc:
            raise MagvitError(f"{path} does not fit {network.upper()} ({layout}): "
                              f"{str(exc).splitlines()[0]}") from None
    return checked.sha256, checked.verified


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
        def script(module):
            if self.config.features != "logits":
                raise MagvitError("the TorchScript I3D returns the 400 logits only; set features = \"logits\"")
            self.script = module

        self.sha256, self.verified = load_checked(self.net, path, "i3d", "the PyTorch port's keys, 400 classes",
                                                  self.config.allow_unverified, script)

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


@attrs.define(kw_only=True)
class C3DConfig:
    weights: str = ""  # a state dict with the common PyTorch C3D keys (conv1 ... fc8)
    num_classes: int = attrs.field(default=101, validator=at_least(2))
    # per-channel values subtracted after scaling to [0, 255], in the weights' channel order
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    allow_unverified: bool = False


class C3DFeatures(nn.Module):
    """Class probabilities of C3D for IS: frames resized to 128x171 (bilinear), centre-cropped
    to 112x112, scaled to [0, 255] minus `mean`; the first 16 frames. `width` = classes."""

    Config = C3DConfig

    def __init__(self, config: C3DConfig | None = None):
        super().__init__()
        self.config = config or C3DConfig()
        self.net = C3D(self.config.num_classes)
        self.sha256, self.verified = "", False
        if self.config.weights:
            self.sha256, self.verified = load_checked(
                self.net, self.config.weights, "c3d", f"keys conv1 ... fc8, {self.config.num_classes} classes",
                self.config.allow_unverified)
        self.register_buffer("mean", torch.tensor(self.config.mean).view(1, 3, 1, 1, 1))
        self.eval().requires_grad_(False)

    @property
    def width(self) -> int:
        return self.config.num_classes

    @torch.inference_mode()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3 or video.shape[2] < 16:
            raise MagvitError(f"c3d takes videos (B, 3, T >= 16, H, W) in [0, 1], got {tuple(video.shape)}")
        b, _, _, h, w = video.shape
        frames = video[:, :, :16].float().transpose(1, 2).reshape(b * 16, 3, h, w)
        frames = F.interpolate(frames, size=(128, 171), mode="bilinear", align_corners=False)
        top, left = (128 - 112) // 2, (171 - 112) // 2
        frames = frames[..., top:top + 112, left:left + 112]
        x = frames.reshape(b, 16, 3, 112, 112).transpose(1, 2) * 255 - self.mean
        return self.net(x).float().softmax(dim=-1)


@hookimpl
def magvit_register_feature_extractors(registry):
    registry.add("i3d", I3DFeatures)
    registry.add("c3d", C3DFeatures)
