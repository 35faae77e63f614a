"""Built-in attention backends: `sdpa` (default, everywhere), `xformers` (CUDA), `math` (reference)."""

from magvit.api import hookimpl
from magvit.core.transformer.attention import MathAttention, SdpaAttention, XformersAttention


@hookimpl
def magvit_register_attentions(registry):
    registry.add("sdpa", SdpaAttention)
    registry.add("xformers", XformersAttention)
    registry.add("math", MathAttention)
