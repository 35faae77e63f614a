"""C3D (Tran et al., 2015) as a UCF-101 classifier: the network whose class probabilities give
the Inception Score of the TGAN-v2 protocol the paper follows (10 splits).

Layer names follow the common PyTorch C3D (`conv1`, ..., `conv5b`, `fc6`, `fc7`, `fc8`), so its
state-dict files load as they are. Input: `(B, 3, 16, 112, 112)`, values as the weights expect
(see `C3DFeatures` in the plugin for the preprocessing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONVS = [("conv1", 3, 64), ("conv2", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256),
         ("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512)]
POOL_AFTER = {"conv1": (1, 2, 2), "conv2": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2)}


class C3D(nn.Module):
    def __init__(self, num_classes: int = 101):
        super().__init__()
        for name, c_in, c_out in CONVS:
            setattr(self, name, nn.Conv3d(c_in, c_out, 3, padding=1))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, 3, 16, 112, 112)` -> `(B, num_classes)` logits."""
        for name, _, _ in CONVS:
            x = F.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                x = F.max_pool3d(x, POOL_AFTER[name], POOL_AFTER[name])
        x = F.max_pool3d(x, (2, 2, 2), (2, 2, 2), padding=(0, 1, 1))  # pool5: 512 x 1 x 4 x 4
        x = F.relu(self.fc6(x.flatten(1)))
        x = F.relu(self.fc7(x))
        return self.fc8(x)


def inception_score(probabilities: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over `splits` equal parts of the samples: mean and standard
    deviation (the TGAN-v2 protocol uses 10 splits). Computed in float64."""
    p = probabilities.double()
    if p.dim() != 2 or len(p) < splits:
        raise ValueError(f"need (N >= {splits}, classes) probabilities, got {tuple(p.shape)}")
    scores = []
    for part in p.chunk(splits):
        marginal = part.mean(dim=0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-30)) - torch.log(marginal.clamp_min(1e-30)))).sum(dim=1)
        scores.append(torch.exp(kl.mean()).item())
    scores_t = torch.tensor(scores, dtype=torch.float64)
    return float(scores_t.mean()), float(scores_t.std(unbiased=False)) if splits > 1 else 0.0
