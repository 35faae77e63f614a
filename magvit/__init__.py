"""magvit: masked generative video transformers in PyTorch.

`magvit.hookimpl` and `magvit.registries()` load on first use, so that importing the pure-torch
core (`magvit.core...`) does not import pluggy or the plugin machinery.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "registries"]


def __getattr__(name: str):
    if name in ("hookimpl", "registries"):
        import magvit.registry as registry

        return getattr(registry, name)
    raise AttributeError(f"module 'magvit' has no attribute {name!r}")
