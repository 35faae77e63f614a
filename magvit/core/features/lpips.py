"""LPIPS (Zhang et al., 2018) with the VGG16 backbone: the learned perceptual distance the paper
reports for frame prediction. Both parts come from files the user names: torchvision's VGG16
(`features.N.weight`) and the LPIPS linear heads (`lin0.model.1.weight` ... `lin4...`, the layout
of the `lpips` package's `vgg.pth`).

Per frame: inputs in [-1, 1] are shifted and scaled like the reference, features are taken after
relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, unit-normalised over channels, their squared
differences weighted by the heads, averaged over space and summed over layers; a clip's LPIPS is
the mean over its frames.
"""

from __future__ import annotations

import torch
from torch import nn

from magvit.core.losses.perceptual import VGG16_LAYERS, vgg16_features

TAPS = (3, 8, 15, 22, 29)  # torchvision `features` indices of the five ReLUs LPIPS reads
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = vgg16_features(up_to=TAPS[-1])
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def load(self, vgg: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]) -> None:
        wanted = {f"features.{i}.{p}" for i in VGG16_LAYERS if i <= TAPS[-1] for p in ("weight", "bias")}
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in vgg.items() if k in wanted})
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"].reshape(lin.weight.shape))

    def _taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, out = (images - self.shift) / self.scale, []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, video: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`(B, 3, T, H, W)` videos in [0, 1] -> `(B,)` LPIPS, in fp32."""
        frames = lambda v: (v.float().transpose(1, 2).flatten(0, 1) * 2 - 1)  # noqa: E731
        b, t = video.shape[0], video.shape[2]
        total = torch.zeros(b * t, device=video.device)
        for lin, a, c in zip(self.lins, self._taps(frames(video)), self._taps(frames(target))):
            total += lin((a - c).pow(2)).mean(dim=(1, 2, 3))
        return total.view(b, t).mean(dim=1)


def load_lpips(vgg_weights: str, head_weights: str, *, allow_unverified: bool = False) -> LPIPS:
    """LPIPS from two files, each checked by SHA-256 like every evaluation network."""
    from magvit.core.features.weights import check_weights_file, read_state_or_script
    from magvit.errors import MagvitError

    model = LPIPS()
    checked = [check_weights_file(vgg_weights, "lpips-vgg16", allow_unverified=allow_unverified),
               check_weights_file(head_weights, "lpips-heads", allow_unverified=allow_unverified)]
    vgg, heads = (read_state_or_script(c.path) for c in checked)
    try:
        model.load(vgg, heads)
    except (KeyError, RuntimeError) as exc:
        raise MagvitError(f"LPIPS weights do not fit (torchvision VGG16 keys features.N.*, heads "
                          f"lin0.model.1.weight ...): {str(exc).splitlines()[0]}") from None
    model.verified = all(c.verified for c in checked)
    model.sha256 = ",".join(c.sha256 for c in checked)
    return model
