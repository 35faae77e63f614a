"""`magvit experiments list [--all] [--json]`: the shipped experiments, each with its purpose."""

from __future__ import annotations

import json

from magvit.registry.toml_files import SHIPPED_EXPERIMENTS, describe_experiment, shipped_experiments


def register(sub) -> None:
    p = sub.add_parser("experiments", help="the experiments shipped with magvit")
    esub = p.add_subparsers(dest="experiments_command", metavar="ACTION", required=True)
    lst = esub.add_parser("list", help="shipped experiment names with their one-line purpose")
    lst.add_argument("--all", action="store_true", help="include the base files they extend")
    lst.add_argument("--json", action="store_true", help="print a JSON object name -> purpose")
    lst.set_defaults(func=run_list)


def run_list(args) -> int:
    names = shipped_experiments(include_bases=args.all)
    purposes = {name: describe_experiment(SHIPPED_EXPERIMENTS / f"{name}.toml") for name in names}
    if args.json:
        print(json.dumps(purposes, indent=2))
        return 0
    width = max(map(len, names), default=0)
    for name, purpose in purposes.items():
        print(f"{name:<{width}}  {purpose}")
    print(f"\n{len(names)} experiments in {SHIPPED_EXPERIMENTS}; use a name anywhere an experiment "
          "is taken (`magvit config show tiny`), or copy one and edit it.")
    return 0
