"""Generation from a trained model, the public entry point (`from magvit.pipeline import Pipeline`).

    pipe = Pipeline.from_checkpoint("default")               # or a run directory / checkpoint
    result = pipe.generate("fp", "clip.mp4", seed=0)        # or a (3, T, H, W) / (B, ...) tensor
    result.video                                            # (B, 3, T, H, W) in [0, 1]

The implementation is a workflow (`magvit.workflows.pipeline`); this module only re-exports it,
so the layers stay one-way: this facade -> workflows -> plugins -> registry -> core.
"""

from magvit.workflows.pipeline import Labels, Pipeline, Result
from magvit.workflows.ultrawide import outpaint_ultrawide

__all__ = ["Labels", "Pipeline", "Result", "outpaint_ultrawide"]
