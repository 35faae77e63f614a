"""`magvit train transformer EXP`: stage 2, COMMIT multi-task masked token modeling.

Writes `run_dir/config.resolved.toml`, `metrics.jsonl`, `eval.json` (held-out masked-token CE
per task, when `train.eval_every` > 0) and checkpoints under `run_dir/checkpoints/`; every
checkpoint is a self-contained bundle (`magvit.workflows.bundle.load_bundle`). Under `torchrun`
each process trains on its shard of the global batch (DDP; gloo on CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from magvit.core.training import TrainLoop, cleanup, seed_everything, setup_distributed
from magvit.registry.experiment import Experiment, experiment_dict, write_resolved_config
from magvit.workflows.bundle import BUNDLE_FILE, bundle_files
from magvit.workflows.preflight import check_experiment
from magvit.workflows.resume_checks import resume_check, resumes
from magvit.workflows.transformer_stage import TransformerStage


def train(exp: Experiment, run_dir: Path, resume: bool = False) -> Path:
    """Train the transformer of `exp` into `run_dir`; return the last checkpoint (a bundle)."""
    # A resume takes its weights (and its init_from record) from the checkpoint, so the source
    # is neither loaded nor checked: it may have changed since (`default` after a release).
    resuming = resumes(run_dir, resume)
    check_experiment(exp, "transformer", resuming=resuming)
    ctx = setup_distributed(exp.run.device)
    try:
        seed_everything(exp.run.seed, ctx.rank)
        stage = TransformerStage(exp, run_dir, ctx, load_init_from=not resuming)
        exp = attrs.evolve(exp, transformer=stage.layout.transformer)  # record the sizes it built
        check = resume_check(exp, "transformer")

        def check_and_keep_lineage(ckpt) -> None:
            check(ckpt)
            # A resumed run's weights descend from its checkpoint, so its `init_from` record stays
            # (the stage, not having loaded the source, has none of its own).
            saved = json.loads(ckpt.files.get(BUNDLE_FILE, "{}")).get("init_from")
            if saved:
                stage.record["init_from"] = saved
                loop.files.update(bundle_files(stage.record, exp))

        loop = TrainLoop(
            run_dir,
            total_steps=exp.train.steps,
            checkpoint_every=exp.train.checkpoint_every,
            log_every=exp.train.log_every,
            ctx=ctx,
            desc="transformer",
            files=bundle_files(stage.record, exp),
            eval_every=exp.train.eval_every,
            check_resume=check_and_keep_lineage,
            loggers=None if exp.run.loggers is None else [logger.build() for logger in exp.run.loggers],
            run_config=experiment_dict(exp),
            media_every=exp.run.media_every,
        )
        if ctx.is_main:
            write_resolved_config(exp, run_dir)
        return loop.run(stage, resume=resume)
    finally:
        cleanup(ctx)
