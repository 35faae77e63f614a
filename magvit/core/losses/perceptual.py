"""Per-frame perceptual loss on VGG16 features loaded from a weights file the user names.

Pretrained weights cannot be downloaded at run time, so the file is given in the experiment
(`[losses.perceptual] kind = "vgg16", weights = "vgg16.safetensors"`): a safetensors or torch
file with torchvision's `vgg16` keys (`features.0.weight`, ...). The distance is the mean squared
difference of channel-normalised features after each of the five conv stages (LPIPS without its
learned per-channel weights), averaged over frames.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from magvit.core.training.precision import full_precision
from magvit.errors import MagvitError

# Conv widths of VGG16's five stages; "M" = max pool. Layer indices match torchvision's.
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def _conv_layers() -> dict[int, tuple[int, int]]:
    """torchvision's `features` index -> (in, out) channels of each conv (ReLUs and pools between)."""
    layers, index, ch = {}, 0, 3
    for item in _VGG16:
        if item == "M":
            index += 1
        else:
            layers[index] = (ch, item)
            index, ch = index + 2, item
    return layers


VGG16_LAYERS = _conv_layers()  # the keys a weights file must hold: features.{index}.weight/bias
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _read_state(path: str) -> dict[str, torch.Tensor]:
    file = Path(path)
    if not file.is_file():
        raise MagvitError(
            f"perceptual loss weights {path!r} not found; give the path of a VGG16 state dict "
            "(torchvision keys, .safetensors or .pt), or remove [losses.perceptual]"
        )
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(file)
    return torch.load(file, map_location="cpu", weights_only=True)


def vgg16_features(up_to: int | None = None) -> nn.Sequential:
    """torchvision's `vgg16().features` layout (conv, ReLU, max pool), layers `[0, up_to]`."""
    layers: list[nn.Module] = []
    ch = 3
    for item in _VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(ch, item, 3, padding=1), nn.ReLU()]
            ch = item
    return nn.Sequential(*(layers if up_to is None else layers[: up_to + 1]))


class VGG16Perceptual(nn.Module):
    def __init__(self, weights: str):
        super().__init__()
        self.features = vgg16_features()
        state = {k: v for k, v in _read_state(weights).items() if k.startswith("features.")}
        try:
            self.load_state_dict(state)
        except RuntimeError as exc:
            raise MagvitError(f"perceptual loss weights {weights!r} are not a VGG16 state dict: {exc}") from None
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    def _stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        h, out = (images - self.mean) / self.std, []
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                out.append(h)
            h = layer(h)
        return out + [h]

    def forward(self, video: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distance between two `(B, 3, T, H, W)` videos in [0, 1], frame by frame, in fp32."""
        frames = lambda v: v.float().transpose(1, 2).flatten(0, 1)  # noqa: E731
        with full_precision(video.device):
            loss = video.new_zeros((), dtype=torch.float32)
            for a, b in zip(self._stages(frames(video)), self._stages(frames(target))):
                loss = loss + (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(1).mean()
        return loss
