"""Built-in attention backends: `sdpa` (default, everywhere), `xformers` (CUDA), `math` (reference)."""

import magvit
from magvit.core.transformer.attention import MathAttention, SdpaAttention, XformersAttention


@magvit.hookimpl
def magvit_register_attentions(registry):
    registry.add("sdpa", SdpaAttention)
    registry.add("xformers", XformersAttention)
    registry.add("math", MathAttention)
