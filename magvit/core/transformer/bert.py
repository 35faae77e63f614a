"""The MAGVIT token transformer: a post-LayerNorm BERT (Appendix A.2, SPEC §6).

    embeddings: LN(token + position) -> dropout
    each layer: x = LN(x + dropout(attention(x)));  x = LN(x + dropout(mlp(x)))
    head:       LN(gelu(dense(x))) @ token_embedding[:codebook]ᵀ + bias   (tied weights)

Logits cover the codebook only: class, [MASK] and prompt ids are inputs, never predictions.

Factorised codebook (`codebook_factors = (K1, K2, ...)`, product = codebook size, as MAGVIT-v2
does for 2^18 codes): a code is the mixed-radix number of its digits (the last fastest), its
embedding the sum of one row per digit, and the head predicts each digit: K1 + K2 + ... outputs
instead of K1·K2·..., and far fewer parameters. `forward(ids, factored=True)` gives the digit
logits (training's loss never builds the full vocabulary); plain `forward` gives the codebook's
logits as their outer sum, log p(code) = Σ log p(digit), for the decoders.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import torch
import torch.nn as nn
import torch.nn.functional as F

from magvit.core.transformer.attention import SdpaAttention
from magvit.errors import MagvitError

LN_EPS = 1e-12
INIT_STD = 0.02

# name -> (num_layers, hidden, mlp, heads); B/L/H are Table 8 of the paper.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (4, 128, 512, 4),
    "B": (12, 768, 3072, 12),
    "L": (24, 1024, 4096, 16),
    "H": (32, 1280, 5120, 16),
}

Attention = Callable[..., torch.Tensor]


@attrs.frozen
class BertConfig:
    num_layers: int
    hidden: int
    mlp: int
    heads: int
    vocab_size: int
    num_positions: int
    codebook_size: int
    dropout: float = 0.1
    attention_dropout: float = 0.1
    codebook_factors: tuple[int, ...] = ()  # () = one output per code


def code_digits(codes: torch.Tensor, factors: tuple[int, ...]) -> list[torch.Tensor]:
    """Code ids -> their digits in the mixed radix `factors` (the last digit varies fastest)."""
    digits = []
    for k in reversed(factors):
        digits.append(codes % k)
        codes = torch.div(codes, k, rounding_mode="floor")
    return digits[::-1]


def full_logits(digit_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(..., K_f) logits per digit -> (..., ΠK_f) logits whose softmax is the product of theirs."""
    out = digit_logits[0].float().log_softmax(-1)
    for logits in digit_logits[1:]:
        out = (out.unsqueeze(-1) + logits.float().log_softmax(-1).unsqueeze(-2)).flatten(-2)
    return out


class SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig, attend: Attention):
        super().__init__()
        self.heads, self.attend, self.dropout = cfg.heads, attend, cfg.attention_dropout
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x, *, causal: bool = False, cache: KVCache | None = None, layer: int = 0):
        B, S, D = x.shape
        q, k, v = (t.view(B, S, self.heads, D // self.heads).transpose(1, 2)
                   for t in self.qkv(x).split(D, dim=-1))
        if cache is not None:
            k, v = cache.append(layer, k, v)
        dropout = self.dropout if self.training else 0.0
        y = self.attend(q, k, v, causal=causal, dropout=dropout)
        return self.out(y.transpose(1, 2).reshape(B, S, D))


class Layer(nn.Module):
    def __init__(self, cfg: BertConfig, attend: Attention):
        super().__init__()
        self.attention = SelfAttention(cfg, attend)
        self.attention_norm = nn.LayerNorm(cfg.hidden, eps=LN_EPS)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.mlp), nn.GELU(), nn.Linear(cfg.mlp, cfg.hidden)
        )
        self.mlp_norm = nn.LayerNorm(cfg.hidden, eps=LN_EPS)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, **attention_args):
        x = self.attention_norm(x + self.dropout(self.attention(x, **attention_args)))
        return self.mlp_norm(x + self.dropout(self.mlp(x)))


class KVCache:
    """Keys and values of the positions seen so far, per layer, for causal decoding."""

    def __init__(self, num_layers: int, batch_size: int, max_length: int, heads: int,
                 head_dim: int, device=None, dtype=None):
        shape = (num_layers, batch_size, heads, max_length, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.max_length = max_length
        self.length = 0  # positions committed; advanced by `Bert.forward_cached`
        self._adding = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        start, end = self.length, self.length + k.shape[-2]
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        self._adding = k.shape[-2]
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def commit(self) -> None:
        self.length += self._adding
        self._adding = 0


class Bert(nn.Module):
    def __init__(self, cfg: BertConfig, attend: Attention | None = None):
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise MagvitError(
                f"transformer.hidden = {cfg.hidden} is not divisible by transformer.heads = "
                f"{cfg.heads}: pick a head count that divides the hidden size"
            )
        if cfg.codebook_size > cfg.vocab_size:
            raise MagvitError(
                f"transformer.codebook_size = {cfg.codebook_size} is larger than vocab_size = "
                f"{cfg.vocab_size}: the vocabulary must contain every code"
            )
        factors = tuple(cfg.codebook_factors)
        if factors and (min(factors) < 2 or math.prod(factors) != cfg.codebook_size):
            raise MagvitError(
                f"transformer.codebook_factors = {list(factors)} must be ints >= 2 whose product is "
                f"the codebook size {cfg.codebook_size} (e.g. [512, 512] for 2^18 codes)"
            )
        self.config = cfg
        attend = attend or SdpaAttention()
        # Rows: every code (or, factorised, every digit of every factor), then the other ids.
        rows = sum(factors) + cfg.vocab_size - cfg.codebook_size if factors else cfg.vocab_size
        self.token_embedding = nn.Embedding(rows, cfg.hidden)
        self.position_embedding = nn.Embedding(cfg.num_positions, cfg.hidden)
        self.embedding_norm = nn.LayerNorm(cfg.hidden, eps=LN_EPS)
        self.embedding_dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Layer(cfg, attend) for _ in range(cfg.num_layers))
        self.head_dense = nn.Linear(cfg.hidden, cfg.hidden)
        self.head_norm = nn.LayerNorm(cfg.hidden, eps=LN_EPS)
        self.head_bias = nn.Parameter(torch.zeros(sum(factors) if factors else cfg.codebook_size))
        self.apply(_init_weights)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def codebook_factors(self) -> tuple[int, ...]:
        return tuple(self.config.codebook_factors)

    def forward(self, input_ids: torch.Tensor, *, causal: bool = False, factored: bool = False):
        """(B, L) ids -> (B, L, codebook_size) logits; bidirectional unless `causal`. With
        `factored`, a tuple of (B, L, K_f) logits, one per codebook factor (one entry, the
        codebook's logits, for a model without factors)."""
        out = self._run(input_ids, start=0, causal=causal)
        return out if factored else self._full(out)

    def _full(self, digit_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return full_logits(digit_logits) if self.codebook_factors else digit_logits[0]

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        factors = self.codebook_factors
        if not factors:
            return self.token_embedding(ids)
        codebook = self.config.codebook_size
        is_code = ids < codebook
        codes = torch.where(is_code, ids, 0)
        offsets = [sum(factors[:f]) for f in range(len(factors))]
        x = sum(self.token_embedding(d + o) for d, o in zip(code_digits(codes, factors), offsets))
        other = self.token_embedding((ids - codebook + sum(factors)).clamp(min=sum(factors)))
        return torch.where(is_code.unsqueeze(-1), x, other)

    def new_kv_cache(self, batch_size: int, max_length: int) -> KVCache:
        cfg, param = self.config, self.token_embedding.weight
        if max_length > cfg.num_positions:
            raise ValueError(f"max_length {max_length} > num_positions {cfg.num_positions}")
        return KVCache(cfg.num_layers, batch_size, max_length, cfg.heads,
                       cfg.hidden // cfg.heads, device=param.device, dtype=param.dtype)

    def forward_cached(self, input_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Causal logits for S new positions placed after the `cache.length` cached ones."""
        if cache.length + input_ids.shape[1] > cache.max_length:
            raise ValueError(
                f"KV cache holds {cache.max_length} positions; {cache.length} are used and "
                f"{input_ids.shape[1]} more were given"
            )
        logits = self._run(input_ids, start=cache.length, causal=True, cache=cache)
        cache.commit()
        return self._full(logits)

    def _run(self, input_ids, *, start: int, causal: bool,
             cache: KVCache | None = None) -> tuple[torch.Tensor, ...]:
        """Logits per codebook factor (one entry when there are none)."""
        length = input_ids.shape[1]
        if start + length > self.config.num_positions:
            raise ValueError(
                f"sequence of {start + length} positions is longer than the model's "
                f"{self.config.num_positions} position embeddings"
            )
        positions = torch.arange(start, start + length, device=input_ids.device)
        x = self._embed(input_ids) + self.position_embedding(positions)
        x = self.embedding_dropout(self.embedding_norm(x))
        for i, layer in enumerate(self.layers):
            x = layer(x, causal=causal, cache=cache, layer=i)
        x = self.head_norm(F.gelu(self.head_dense(x)))
        factors = self.codebook_factors or (self.config.codebook_size,)
        codes = self.token_embedding.weight[: sum(factors)]  # tied: the codes' (or digits') rows
        # One addmm: a separate broadcast add of the bias over (B, L, codes) cost as much as the
        # matmul itself in bf16 on CPU.
        return F.linear(x, codes, self.head_bias).split(factors, dim=-1)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.trunc_normal_(module.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def parameter_count(cfg: BertConfig) -> int:
    """Exact number of parameters of `Bert(cfg)`, without building it."""
    d, outputs = cfg.hidden, sum(cfg.codebook_factors) or cfg.codebook_size
    rows = cfg.vocab_size - cfg.codebook_size + outputs
    layer = (d * 3 * d + 3 * d) + (d * d + d) + (d * cfg.mlp + cfg.mlp) + (cfg.mlp * d + d) + 4 * d
    embeddings = rows * d + cfg.num_positions * d + 2 * d
    head = d * d + d + 2 * d + outputs
    return cfg.num_layers * layer + embeddings + head
