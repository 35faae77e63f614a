"""Misplaced tokens: teach a decoder not to let wrong neighbouring tokens spoil the pixels of
the right ones (`[losses] misplaced_tokens`).

A task's output is the given tokens beside generated ones, and a decoder that pools over many
tokens lets the generated ones' mistakes blur the given pixels. Here a box of a clip's quantized
latents is replaced by the same clip's latents moved by a token or two (a shape drawn in the
wrong place, the commonest mistake of a generated region), and the reconstruction loss counts
only the pixels whose own tokens were left in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _interval(n: int, generator: torch.Generator) -> slice:
    """A random non-empty interval of range(n)."""
    a, b = sorted(torch.randint(0, n + 1, (2,), generator=generator).tolist())
    if a == b:
        a, b = (a, a + 1) if a < n else (a - 1, a)
    return slice(a, b)


def misplace_tokens(latent: torch.Tensor, fraction: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`latent (B, C, t, h, w)` -> (the same with a box moved in `fraction` of the clips,
    `kept (B, 1, t, h, w)` bool: True where a position holds its own latent).

    The box is a random interval per axis, or (half of the time) everything outside one, like an
    inpainting or an outpainting task's generated region; what fills it is the clip's latent
    rolled by (-1..1, -2..2, -2..2) positions, never (0, 0, 0). A clip whose box would be the
    whole grid keeps its latents (a loss over no pixels teaches nothing)."""
    out = latent.clone()
    kept = torch.ones(latent.shape[0], 1, *latent.shape[2:], dtype=torch.bool, device=latent.device)
    t, h, w = latent.shape[2:]
    for b in range(latent.shape[0]):
        if torch.rand((), generator=generator).item() >= fraction:
            continue
        box = torch.zeros(t, h, w, dtype=torch.bool)
        box[_interval(t, generator), _interval(h, generator), _interval(w, generator)] = True
        if torch.rand((), generator=generator).item() < 0.5:
            box = ~box
        if box.all():
            continue
        shift = (0, 0, 0)
        while shift == (0, 0, 0):
            shift = (int(torch.randint(-1, 2, (), generator=generator)) if t > 1 else 0,
                     int(torch.randint(-2, 3, (), generator=generator)),
                     int(torch.randint(-2, 3, (), generator=generator)))
        box = box.to(latent.device)
        moved = torch.roll(latent[b], shifts=shift, dims=(1, 2, 3))  # (C, t, h, w)
        out[b] = torch.where(box, moved, latent[b])
        kept[b, 0] = ~box
    return out, kept


def kept_pixels(kept: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """`kept (B, 1, t, h, w)` bool -> `(B, 1, T, H, W)` float: 1 on the pixels of kept tokens
    (each token's patch; the grid divides the clip evenly)."""
    return F.interpolate(kept.float(), size=(frames, height, width), mode="nearest")
