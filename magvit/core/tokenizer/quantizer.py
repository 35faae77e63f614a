"""The quantizer protocol and the vector quantizer `vq`: nearest code by squared L2,
straight-through gradients (SPEC §5).

Every quantizer (`vq` here, `lfq` and `fsq` beside it) is an `nn.Module` with `codebook_size`,
`dim` (the latent channels it takes), `forward(z) -> (quantized, aux)` for training, `codes(z)`
(ids only, no losses: the inference path) and `lookup(codes)`; `Quantizer` holds the usage
counter they share.

Distances and losses are computed in fp32 even under autocast: in bf16, `a² - 2ab + b²`
loses the small differences that decide the nearest code. Loss =
`commitment_cost·|sg(q) - z|² + codebook_cost·|q - sg(z)|² + entropy_weight·entropy penalty`.

Codebook usage is counted in `hits` (per code, since the last dead-code check); the training
stage records it with `record_usage` and may call `restart_dead_codes` to move unused codes onto
encoder outputs. Both keep every DDP rank identical.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from magvit.core.losses.entropy import entropy_loss
from magvit.core.training.precision import full_precision


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """`(N, D) x (K, D) -> (N, K)` squared Euclidean distances, as a² - 2ab + b², in fp32."""
    z, codebook = z.float(), codebook.float()
    return (z.pow(2).sum(-1, keepdim=True) - 2 * z @ codebook.t() + codebook.pow(2).sum(-1))


def perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of the code histogram: the effective number of codes in use."""
    p = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    p = p / p.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())


def to_rows(z: torch.Tensor) -> torch.Tensor:
    """`(B, D, t, h, w)` -> `(B·t·h·w, D)` in fp32: one row per latent position."""
    return z.float().movedim(1, -1).reshape(-1, z.shape[1])


def from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_rows` for a latent shaped like `like`, in its dtype."""
    b, d, t, h, w = like.shape
    return rows.reshape(b, t, h, w, -1).movedim(-1, 1).to(like.dtype)


class Quantizer(nn.Module):
    """What the quantizers share: the usage counter `hits` (per code, since the last check).

    Subclasses set `codebook_size` and `dim` and implement `forward`, `codes` and `lookup`.
    Only the vector quantizer has codes to restart; the others have no codebook parameters.
    """

    def nearest_codes(self, vectors: torch.Tensor) -> torch.Tensor:
        """`(B, dim, t, h, w)` points of the code-vector space (what `lookup` returns, moved) ->
        `(B, t, h, w)` ids of the nearest code vectors. `codes` does that wherever it quantizes
        the latent as it stands (nearest codebook row, sign); a quantizer that reshapes the latent
        first (FSQ's bound) overrides this."""
        return self.codes(vectors)

    @torch.no_grad()
    def code_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`(dim,)` lowest and highest value of each channel over all code vectors: the box
        that holds the codebook (read from `lookup`, in chunks; quantizers with a formula for
        it override this)."""
        low = high = None
        for start in range(0, self.codebook_size, 65536):
            ids = torch.arange(start, min(start + 65536, self.codebook_size), device=self.hits.device)
            rows = self.lookup(ids.view(1, -1, 1, 1)).float().movedim(1, -1).reshape(-1, self.dim)
            chunk_low, chunk_high = rows.min(0).values, rows.max(0).values
            low = chunk_low if low is None else torch.minimum(low, chunk_low)
            high = chunk_high if high is None else torch.maximum(high, chunk_high)
        return low, high

    codebook_size: int
    dim: int

    def _init_usage(self) -> None:
        self.register_buffer("hits", torch.zeros(self.codebook_size))

    @torch.no_grad()
    def record_usage(self, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes.flatten(), minlength=self.codebook_size).float()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.hits += counts

    def dead_codes(self) -> torch.Tensor:
        """Indices of codes no token picked since the last check."""
        return (self.hits == 0).nonzero().flatten()

    @torch.no_grad()
    def restart_dead_codes(self, z: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """A quantizer without a learned codebook restarts nothing; the counts start over."""
        self.hits.zero_()
        return torch.zeros(0, dtype=torch.long, device=self.hits.device)


class VectorQuantizer(Quantizer):
    def __init__(self, codebook_size: int, dim: int, commitment_cost: float = 0.25,
                 codebook_cost: float = 1.0, entropy_weight: float = 0.1,
                 entropy_temperature: float = 0.01):
        super().__init__()
        self.codebook_size, self.dim = codebook_size, dim
        self.commitment_cost, self.codebook_cost = commitment_cost, codebook_cost
        self.entropy_weight, self.entropy_temperature = entropy_weight, entropy_temperature
        bound = math.sqrt(3 / dim)  # variance scaling 1.0, fan-in, uniform (as the release)
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim).uniform_(-bound, bound))
        self._init_usage()

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, t, h, w)` codes -> `(B, D, t, h, w)` code vectors."""
        return F.embedding(codes, self.codebook).permute(0, 4, 1, 2, 3)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """`z (B, D, t, h, w)` -> `(B, t, h, w)` ids of the nearest codes: no losses, no softmax."""
        b, _, t, h, w = z.shape
        with full_precision(z.device):
            return squared_distances(to_rows(z), self.codebook).argmin(-1).reshape(b, t, h, w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`z (B, D, t, h, w)` -> quantized (same shape, straight-through) and the losses."""
        b, d, t, h, w = z.shape
        with full_precision(z.device):
            flat = z.float().permute(0, 2, 3, 4, 1).reshape(-1, d)
            distances = squared_distances(flat, self.codebook)
            codes = distances.argmin(-1)
            q = F.embedding(codes, self.codebook.float())
            commitment = self.commitment_cost * (q.detach() - flat).pow(2).mean()
            codebook = self.codebook_cost * (q - flat.detach()).pow(2).mean()
            entropy = torch.zeros((), device=z.device)
            if self.entropy_weight:
                entropy = self.entropy_weight * entropy_loss(-distances, self.entropy_temperature)
            q = flat + (q - flat).detach()
        quantized = q.reshape(b, t, h, w, d).permute(0, 4, 1, 2, 3).to(z.dtype)
        codes = codes.reshape(b, t, h, w)
        aux = {
            "quantizer_loss": commitment + codebook + entropy,
            "commitment_loss": commitment.detach(),
            "codebook_loss": codebook.detach(),
            "entropy_loss": entropy.detach(),
            "codes": codes,
            "perplexity": perplexity(codes, self.codebook_size),
        }
        return quantized, aux

    @torch.no_grad()
    def restart_dead_codes(self, z: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """Move every dead code onto a random encoder output of `z (B, D, ...)`; reset counts.

        Returns the restarted code indices. Under DDP rank 0 picks the vectors and broadcasts
        them, so the ranks stay identical.
        """
        dead = self.dead_codes()
        if len(dead):
            flat = z.detach().float().movedim(1, -1).reshape(-1, self.dim)
            pick = torch.randint(len(flat), (len(dead),), generator=generator, device=flat.device)
            new = flat[pick].to(self.codebook.dtype)
            if dist.is_available() and dist.is_initialized():
                dist.broadcast(new, src=0)
            self.codebook[dead] = new
        self.hits.zero_()
        return dead
