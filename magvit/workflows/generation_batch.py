"""How many clips `Pipeline.generate` runs at once when the batch size is "auto".

Memory per clip is measured, not guessed: the tokenizer's encode and decode and one transformer
forward run on the `meta` device at batches 1 and 2 (`magvit.core.live_memory`), and the
difference is what one more clip costs at the peak of each stage. The decoders then hold about
four `(tokens x codebook)` float32 arrays per clip (the logits upcast, their log-softmax, the
Gumbel noise and the noisy logits), added to the transformer's stage; classifier-free guidance
runs two prefixes per clip in one forward. The stages run one after another, so a clip costs the
largest of them. Autocast does not act on `meta`, so activations count at their weights' dtype
(fp32 for the tokenizer): under bf16 the estimate is high, which errs on the safe side.

The batch is what fits in `FREE_FRACTION` of the device's free memory (CUDA:
`torch.cuda.mem_get_info`; CPU: the kernel's MemAvailable), at most the clips given, and on a
CPU at most `CPU_BATCH`: a CPU's cores are busy from small batches on, and larger ones only
wait longer for the first result. A model that cannot run on `meta` (a wrapper that is not a
module, a computation whose sizes depend on values) gets `FALLBACK_BATCH`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from magvit.core import condition_fit
from magvit.core.live_memory import module_peak_bytes
from magvit.core.training.distributed import unwrap

FREE_FRACTION = 0.7  # of free memory; the rest is for the allocator's rounding and other tensors
CPU_BATCH = 8
FALLBACK_BATCH = 8  # when the memory per clip cannot be measured
DECODER_ARRAYS = 4  # float32 (tokens x codebook) arrays the decoders hold per clip


@attrs.frozen
class ClipMemory:
    """Bytes one more clip adds at the peak of each generation stage."""

    encode: int
    transformer: int  # one forward of the whole sequence
    decode_logits: int  # the decoders' float32 work on one clip's logits
    decode: int
    refine: int = 0  # the condition fit: a decode with gradients and its backward

    def per_clip(self, guided: bool = False, refine: bool = False) -> int:
        transformer = self.transformer * (2 if guided else 1) + self.decode_logits
        return max(self.encode, transformer, self.decode, self.refine if refine else 0, 1)


def _per_clip(measure) -> int:
    return max(0, measure(2) - measure(1))


def clip_memory(pipe: Any) -> ClipMemory | None:
    """`ClipMemory` of a pipeline's tokenizer and transformer (activations at their weights'
    dtype), or None if they cannot run on the meta device."""
    try:
        return _measure(pipe)
    except Exception:  # noqa: BLE001 - any model code may fail on meta; the batch falls back
        return None


def _measure(pipe: Any) -> ClipMemory:
    frames, height, width = pipe.clip_shape
    latent = tuple(pipe.tokenizer.latent_shape(frames, height, width))
    tokenizer, transformer = pipe.tokenizer, unwrap(pipe.transformer)  # measured eagerly
    length = transformer.config.num_positions
    codebook = pipe.vocab.codebook_size

    def encode(b: int) -> int:
        return module_peak_bytes(tokenizer, "encode", torch.empty(b, 3, frames, height, width))

    def decode(b: int) -> int:
        return module_peak_bytes(tokenizer, "decode", torch.zeros(b, *latent, dtype=torch.long))

    def forward(b: int) -> int:
        return module_peak_bytes(transformer, "forward", torch.zeros(b, length, dtype=torch.long))

    def refine(b: int) -> int:
        if not condition_fit.can_fit(tokenizer):
            return 0
        with torch.inference_mode(False), torch.enable_grad():  # so that autograd keeps the activations
            vectors = torch.zeros(b, tokenizer.quantizer.dim, *latent, requires_grad=True)
            return 2 * module_peak_bytes(tokenizer, "decode_latent", vectors)

    return ClipMemory(encode=_per_clip(encode), transformer=_per_clip(forward),
                      decode_logits=DECODER_ARRAYS * math.prod(latent) * codebook * 4,
                      decode=_per_clip(decode), refine=_per_clip(refine))


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of `device` in bytes, or None where it cannot be read."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    meminfo = Path("/proc/meminfo")
    if device.type == "cpu" and meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def auto_batch_size(memory: ClipMemory | None | Callable[[], ClipMemory | None], clips: int,
                    device: torch.device, *, guided: bool = False, refine: bool = False,
                    free: int | None = None) -> int:
    """Clips per batch: what fits in the free memory, at most `clips` (and `CPU_BATCH` on a CPU);
    `FALLBACK_BATCH` at most when `memory` is unknown. `memory` may be a function, called only
    when the answer depends on it (measuring costs a second the first time, for torch's imports)."""
    limit = clips if device.type == "cuda" else min(clips, CPU_BATCH)
    if limit <= 1:
        return 1
    if callable(memory):
        memory = memory()
    if memory is None:
        return max(1, min(clips, FALLBACK_BATCH))
    free = free_memory_bytes(device) if free is None else free
    if free is None:
        return limit
    fits = int(free * FREE_FRACTION) // memory.per_clip(guided, refine)
    return max(1, min(limit, fits))
