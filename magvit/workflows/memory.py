"""Training memory an experiment needs per GPU (`magvit model summary EXP --memory`).

Activation memory is measured, not estimated: the model runs forward (and its loss) on the
`meta` device, where tensors have sizes but no data, and `saved_tensors_hooks` add up every
tensor autograd keeps for the backward pass (parameters excluded, each tensor once). Nothing is
allocated, so the L tokenizer at 16x128x128 costs nothing here. The transformer is measured
twice: as it runs here (the math attention path keeps (heads x L x L) score matrices) and
without those matrices, which flash / memory-efficient attention kernels do not keep.
"bf16" runs the model in bf16 (autocast keeps a few tensors, such as norms' inputs, in fp32).
For a tokenizer, the encoder and decoder are measured (the quantizer's few MB are not), plus the
discriminator on the real and the reconstructed clip when the GAN is on (its parameters count
in the static memory; R1's double backward is not included).
Static memory is 16 bytes per trained parameter: fp32 weights, gradients and two Adam moments.
"""

from __future__ import annotations

import math

import attrs
import torch

from magvit.registry.experiment import Experiment
from magvit.workflows.summary import tokenizer_without_weights

ADAM_BYTES_PER_PARAM = 16  # fp32 weight + gradient + exp_avg + exp_avg_sq
RESERVE = 0.10  # of the GPU kept free for the CUDA context, workspaces and fragmentation


@attrs.frozen
class Footprint:
    name: str
    parameters: int
    static_bytes: int
    activation_bytes: dict[str, int]  # precision -> bytes per clip

    def max_micro_batch(self, gpu_bytes: int, precision: str) -> int:
        usable = gpu_bytes * (1 - RESERVE) - self.static_bytes
        return max(0, math.floor(usable / self.activation_bytes[precision]))


def saved_activation_bytes(forward, module: torch.nn.Module, skip=lambda tensor: False) -> int:
    """Bytes autograd saves for backward while `forward()` runs (parameters excluded, and the
    tensors `skip` picks)."""
    params = {id(p) for p in module.parameters()}
    seen: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        base = tensor._base if tensor._base is not None else tensor
        if id(tensor) not in params and id(base) not in params and not skip(tensor):
            seen[id(tensor)] = tensor  # the reference keeps ids unique while we count
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(t.numel() * t.element_size() for t in seen.values())


def _transformer(exp: Experiment) -> Footprint:
    from magvit.workflows.stage2_layout import layout_without_weights

    layout = layout_without_weights(exp)
    sizes = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with torch.device("meta"):
            model = layout.transformer.build().to(dtype).train()
        length = layout.vocab.prefix_length + layout.num_latent
        ids = torch.zeros(1, length, dtype=torch.long, device="meta")

        def forward(model=model, ids=ids):
            logits = model(ids)
            torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids.flatten().clamp(max=0))

        sizes[precision] = saved_activation_bytes(forward, model)
        # flash / memory-efficient attention keep no (L x L) score matrices
        scores = lambda t, n=length: t.dim() >= 2 and tuple(t.shape[-2:]) == (n, n)  # noqa: E731
        sizes[f"{precision}-flash"] = saved_activation_bytes(forward, model, skip=scores)
    count = sum(p.numel() for p in model.parameters())
    return Footprint("transformer", count, count * ADAM_BYTES_PER_PARAM, sizes)


def _tokenizer(exp: Experiment) -> Footprint:
    data = exp.data.config
    clip = (data.frames, data.resolution, data.resolution)
    sizes = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = tokenizer_without_weights(exp.tokenizer).to(dtype).train()
        video = torch.zeros(1, 3, *clip, dtype=dtype, device="meta", requires_grad=False)

        def forward(model=model, video=video):
            # encoder and decoder; the quantizer between them (a token x codebook distance
            # matrix, a few MB) uses ops the meta device lacks and is left out
            recon = model.decode_latent(model.encode_latent(video))
            (recon.float() - video.float()).pow(2).mean()

        sizes[precision] = saved_activation_bytes(forward, model)
        disc = _discriminator(exp, model, clip, dtype)
        if disc is not None:  # the GAN: its forward on the real and the reconstructed clip
            sizes[precision] += 2 * saved_activation_bytes(lambda d=disc, v=video: d(v).sum(), disc)
    count = sum(p.numel() for p in model.parameters())
    if disc is not None:
        count += sum(p.numel() for p in disc.parameters())
    return Footprint("tokenizer", count, count * ADAM_BYTES_PER_PARAM, sizes)


def _discriminator(exp: Experiment, model, clip, dtype):
    from magvit.core.tokenizer.discriminator import Discriminator
    from magvit.workflows.tokenizer_losses import tokenizer_losses

    if not tokenizer_losses(exp.losses).gan or not hasattr(model, "arch"):
        return None
    with torch.device("meta"):
        return Discriminator(model.arch.disc_channels, model.arch.disc_multipliers, clip[0], clip[1]).to(dtype)


def memory_footprints(exp: Experiment) -> list[Footprint]:
    """Stage 2 (an experiment with [transformer]): the transformer, its tokenizer frozen and run
    without gradients. Stage 1: the tokenizer's generator."""
    if exp.transformer is not None and exp.tasks and exp.data is not None:
        return [_transformer(exp)]
    if exp.tokenizer is not None and exp.data is not None:
        return [_tokenizer(exp)]
    return []
