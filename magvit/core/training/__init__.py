"""Training infrastructure shared by stage 1 (tokenizer) and stage 2 (transformer)."""

from magvit.core.training.batches import BatchStream, batch_indices
from magvit.core.training.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    resolve_checkpoint,
    save_checkpoint,
)
from magvit.core.training.distributed import (
    DistContext,
    all_reduce_mean,
    barrier,
    cleanup,
    setup_distributed,
    sync_gradients,
    unwrap,
    wrap_ddp,
)
from magvit.core.training.ema import EMA
from magvit.core.training.gradients import grad_norm_of
from magvit.core.training.loop import TrainLoop
from magvit.core.training.lr import load_schedule_state, make_lr_scheduler, warmup_cosine
from magvit.core.training.precision import (
    NonFiniteLossError,
    autocast,
    check_finite,
    full_precision,
)
from magvit.core.training.rng import capture_rng_state, restore_rng_state, seed_everything

__all__ = [
    "EMA", "BatchStream", "Checkpoint", "DistContext", "NonFiniteLossError", "TrainLoop",
    "all_reduce_mean", "autocast", "barrier", "batch_indices", "capture_rng_state",
    "check_finite", "cleanup", "full_precision", "grad_norm_of", "latest_checkpoint", "load_checkpoint",
    "load_schedule_state", "load_weights", "make_lr_scheduler", "resolve_checkpoint", "restore_rng_state",
    "save_checkpoint", "seed_everything", "setup_distributed", "sync_gradients", "unwrap", "wrap_ddp", "warmup_cosine",
]
