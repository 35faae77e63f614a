"""magvit: masked generative video transformers in PyTorch."""

__version__ = "0.1.0"

from magvit.registry import hookimpl, registries  # noqa: E402

__all__ = ["__version__", "hookimpl", "registries"]
