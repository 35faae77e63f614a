"""Lookup-free quantization (MAGVIT-v2, Yu et al. 2023): one bit per latent channel.

A latent of K channels is quantized channel by channel to `sign(z)·scale`; the id is the binary
number its signs spell (channel k is bit k), so the codebook is implicit and holds 2^K codes.
Loss = `commitment_cost·|z - sg(q)|²` + `entropy_weight·(E[H(p(z))] - diversity·H(E[p(z)]))`,
where `p(z)` is the softmax over codes of `-|z - c|²/temperature`: the first term makes every
position pick a code confidently, the second spreads the batch over the codebook.

`p(z)` factorises over channels (bit k is 1 with probability `sigmoid(4·scale·z_k/temperature)`),
so the per-position entropy is a sum over channels. The batch average does not factorise; it is
computed exactly within groups of at most `entropy_group_bits` channels (2^bits probabilities
per position would not fit at 2^18) and summed over the groups, as MAGVIT-v2 does for large
vocabularies. All of it runs in fp32, also under autocast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from magvit.core.tokenizer.quantizer import Quantizer, from_rows, perplexity, to_rows
from magvit.core.training.precision import full_precision
from magvit.errors import MagvitError

MAX_BITS = 24  # ids are int64 and the usage counter holds one float per code


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of a Bernoulli with the given logits, elementwise and stable."""
    p = torch.sigmoid(logits)
    return p * F.softplus(-logits) + (1 - p) * F.softplus(logits)


def group_sizes(bits: int, group_bits: int) -> list[int]:
    """`bits` split into as few near-equal groups of at most `group_bits` as possible."""
    groups = math.ceil(bits / group_bits)
    return [bits // groups + (1 if i < bits % groups else 0) for i in range(groups)]


class LookupFreeQuantizer(Quantizer):
    def __init__(self, bits: int, commitment_cost: float = 0.25, entropy_weight: float = 0.1,
                 diversity: float = 1.0, entropy_temperature: float = 0.01,
                 entropy_group_bits: int = 8, scale: float = 1.0):
        super().__init__()
        if not 1 <= bits <= MAX_BITS:
            raise MagvitError(f"lfq: bits must be in [1, {MAX_BITS}], got {bits}")
        self.bits, self.dim, self.codebook_size = bits, bits, 2**bits
        self.commitment_cost, self.entropy_weight, self.diversity = commitment_cost, entropy_weight, diversity
        self.entropy_temperature, self.scale = entropy_temperature, scale
        self.groups = group_sizes(bits, entropy_group_bits)
        self.register_buffer("powers", 2 ** torch.arange(bits), persistent=False)
        self._init_usage()

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """`z (B, K, t, h, w)` -> `(B, t, h, w)` ids: bit k set where channel k is positive."""
        b, _, t, h, w = z.shape
        return ((to_rows(z) > 0).long() * self.powers).sum(-1).reshape(b, t, h, w)

    def code_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        high = torch.full((self.dim,), float(self.scale), device=self.powers.device)
        return -high, high

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """`(B, t, h, w)` ids -> `(B, K, t, h, w)` code vectors of ±scale."""
        bits = (codes.unsqueeze(-1) // self.powers) % 2  # (B, t, h, w, K)
        return ((bits.float() * 2 - 1) * self.scale).movedim(-1, 1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with full_precision(z.device):
            rows = to_rows(z)                                         # (N, K)
            q = torch.where(rows > 0, self.scale, -self.scale)
            commitment = self.commitment_cost * (rows - q).pow(2).mean()
            zero = torch.zeros((), device=z.device)
            sample_entropy = codebook_entropy = zero
            if self.entropy_weight:
                sample_entropy, codebook_entropy = self.entropies(rows)
            entropy = self.entropy_weight * (sample_entropy - self.diversity * codebook_entropy)
            q = rows + (q - rows).detach()
        codes = ((rows > 0).long() * self.powers).sum(-1)
        b, _, t, h, w = z.shape
        codes = codes.reshape(b, t, h, w)
        aux = {
            "quantizer_loss": commitment + entropy,
            "commitment_loss": commitment.detach(),
            "entropy_loss": entropy.detach(),
            "sample_entropy": sample_entropy.detach(),
            "codebook_entropy": codebook_entropy.detach(),
            "codes": codes,
            "perplexity": perplexity(codes, self.codebook_size),
        }
        return from_rows(q, z), aux

    def entropies(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean per-position entropy, entropy of the batch-average code distribution), nats."""
        logits = 4 * self.scale * rows / self.entropy_temperature  # log p(bit=1) - log p(bit=0)
        sample = binary_entropy(logits).sum(-1).mean()
        log_one, log_zero = -F.softplus(-logits), -F.softplus(logits)
        codebook = torch.zeros((), device=rows.device)
        start = 0
        for size in self.groups:
            table = ((torch.arange(2**size, device=rows.device).unsqueeze(-1)
                      >> torch.arange(size, device=rows.device)) & 1).float()  # (2^g, g)
            part = slice(start, start + size)
            log_p = log_one[:, part] @ table.t() + log_zero[:, part] @ (1 - table).t()  # (N, 2^g)
            mean_p = log_p.exp().mean(0)
            codebook = codebook - (mean_p * torch.log(mean_p + 1e-5)).sum()
            start += size
        return sample, codebook
