"""`magvit model summary EXP [--json]`: parameter counts per component."""

from __future__ import annotations

import json

from magvit.cli.commands.config import add_set_option
from magvit.registry.experiment import load_experiment


def register(sub) -> None:
    p = sub.add_parser("model", help="inspect the models an experiment builds")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    summary = msub.add_parser("summary", help="parameter counts per component")
    summary.add_argument("experiment", help="a .toml path or a shipped experiment name")
    summary.add_argument("--json", action="store_true", help="print a JSON object")
    add_set_option(summary)
    summary.set_defaults(func=run_summary)


def run_summary(args) -> int:
    from magvit.workflows.summary import parameter_counts

    counts = parameter_counts(load_experiment(args.experiment, args.overrides))
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    width = max((len(name) for name in counts), default=0)
    for name, n in counts.items():
        print(f"{name:<{width}}  {n:>13,}  ({n / 1e6:.2f}M)")
    return 0
