"""`magvit train tokenizer|transformer EXP`: stage 1 and stage 2 training.

Runs under `torchrun` as well (DDP; gloo on CPU). The run directory is
`<run.output_dir>/<run.name>` unless `--output-dir` is given.
"""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

from magvit.cli.arguments import output_folder
from magvit.cli.commands.config import add_set_option
from magvit.errors import MagvitError
from magvit.registry.experiment import load_experiment
from magvit.workflows.preflight import check_experiment
from magvit.workflows.resume_checks import resumes

STAGES = {
    "tokenizer": ("magvit.workflows.train_tokenizer", "stage 1: the video tokenizer"),
    "transformer": ("magvit.workflows.train_transformer", "stage 2: the masked token transformer"),
}


def register(sub) -> None:
    p = sub.add_parser("train", help="train a tokenizer (stage 1) or a transformer (stage 2)")
    tsub = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage, (_, help_text) in STAGES.items():
        s = tsub.add_parser(stage, help=help_text)
        s.add_argument("experiment", help="a .toml path or a shipped experiment name")
        add_set_option(s)
        s.add_argument("--output-dir", type=output_folder, help="run directory (default: run.output_dir/run.name)")
        s.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
        s.set_defaults(func=run)


def run(args) -> int:
    exp = load_experiment(args.experiment, args.overrides)
    run_dir = Path(args.output_dir or Path(exp.run.output_dir) / exp.run.name)
    if run_dir.exists() and not run_dir.is_dir():
        raise MagvitError(f"run directory {run_dir} is a file; give a folder (--output-dir)")
    # everything training would reject, before it starts
    check_experiment(exp, args.stage, resuming=resumes(run_dir, args.resume))
    if exp.train.accumulate > 1:
        print(f"effective batch: {exp.train.batch_size} x {exp.train.accumulate} accumulated = "
              f"{exp.train.batch_size * exp.train.accumulate} clips per step (over all processes)")
    module = importlib.import_module(STAGES[args.stage][0])
    try:
        module.train(exp, run_dir=run_dir, resume=args.resume)
    except MagvitError:
        raise  # refused before training: nothing to record
    except BaseException:  # interrupted or crashed mid-run: its steps count, record the command
        _record_command(run_dir, args.argv)
        raise
    _record_command(run_dir, args.argv)
    return 0


def _record_command(run_dir: Path, argv: list[str]) -> None:
    """Append this invocation to the run's command.txt (the model card of an export shows it)."""
    from magvit.workflows.model_card import COMMAND_FILE

    if not run_dir.is_dir():
        return
    with open(run_dir / COMMAND_FILE, "a", encoding="utf-8") as f:
        f.write(shlex.join(["magvit", *argv]) + "\n")
