"""Random choices of the decoders: Gumbel noise, top-k, sampling, confidence, re-mask counts.

All of it runs in float32 whatever the logits' dtype, and draws its randomness from the
`generator` it is given, so a seed reproduces a decode.
"""

from __future__ import annotations

import torch

# Uniform draws are clamped into (0, 1) so that the Gumbel transform stays finite.
_TINY = torch.finfo(torch.float32).tiny


def gumbel_noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Standard Gumbel(0, 1) samples, float32 (the decoders' confidence noise)."""
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    u = u.clamp(_TINY, 1.0 - 2**-24)
    return -torch.log(-torch.log(u))


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits with everything below the k-th largest set to -inf (k = 0: unchanged)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_tokens(logits: torch.Tensor, generator: torch.Generator | None,
                  temperature: float = 1.0, top_k: int = 0,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """One id per position from `softmax(logits / temperature)` restricted to the top k.

    Temperature 0 (or top_k 1) is argmax. Sampling inverts the softmax's cumulative sum at one
    uniform draw per position (not one per codebook entry, as the Gumbel-max trick needs: on a
    CPU those draws cost more than the transformer), so the draw is a pure function of the
    generator's state. `rows` (bool, the shape of `logits` without its last dim) samples only
    those positions, with the ids and generator state of a full draw there, and returns 0
    elsewhere (argmax draws nothing and fills every position): the decoders pass the positions
    they keep a sample of.
    """
    if temperature == 0 or top_k == 1:
        return top_k_filter(logits.float(), top_k).argmax(dim=-1)
    u = torch.rand(logits.shape[:-1], generator=generator, device=logits.device, dtype=torch.float32)
    if rows is None or bool(rows.all()):  # gathering every row would only add copies
        return inverse_cdf(_cumulative(logits.float(), temperature, top_k), u)
    ids = torch.zeros(logits.shape[:-1], dtype=torch.long, device=logits.device)
    ids[rows] = inverse_cdf(_cumulative(logits[rows].float(), temperature, top_k), u[rows])  # (rows.sum(),)
    return ids


def _cumulative(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """The cumulative sums of `softmax(logits / temperature)` over the top k, summed in place: at
    a decoding step's size (millions of entries) each new tensor costs as much as the sum."""
    logits = top_k_filter(logits, top_k)
    if temperature != 1:
        logits = logits / temperature
    return torch.softmax(logits, dim=-1).cumsum_(dim=-1)


def inverse_cdf(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The id whose interval of the cumulative probabilities `cdf (..., V)` (the running sum of
    non-negative weights, any positive total) holds `u` (in [0, 1)) times the total: a draw
    from the weights when `u` is uniform. An id of weight 0 is never returned, not even for
    u = 1."""
    total = cdf[..., -1:].contiguous()
    ids = torch.searchsorted(cdf, u.unsqueeze(-1) * total, right=True)  # first cdf[i] > u * total
    last = torch.searchsorted(cdf, total)  # first cdf[i] >= total: the last id of weight > 0
    return torch.minimum(ids, last).squeeze(-1)


def num_to_remask(total: torch.Tensor, ratio: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """`clip(floor(total * ratio), 1, unknown - 1)` per row, never below 0 (SPEC §4).

    `total` and `unknown` are `(B,)` counts; the product is taken in float32 as in the
    reference, which is what makes cosine give 511 (not 512) at step 7 of 12.
    """
    n = torch.floor(total.to(torch.float32) * ratio.to(torch.float32)).long()
    n = torch.minimum(n.clamp(min=1), unknown - 1)
    return n.clamp(min=0)

