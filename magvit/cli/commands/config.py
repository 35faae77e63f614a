"""`magvit config show|validate`: the fully resolved experiment, or just its problems."""

from __future__ import annotations

import sys

from magvit.errors import MagvitError
from magvit.registry.experiment import experiment_toml, load_experiment
from magvit.workflows.preflight import check_experiment
from magvit.workflows.stage2_layout import sized_experiment


def add_set_option(parser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value (VALUE parsed as TOML), e.g. --set decoder.steps=8",
    )


def register(sub) -> None:
    p = sub.add_parser("config", help="show or validate experiment configs")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="print the resolved experiment (extends + overrides + defaults)")
    show.add_argument("experiment", help="a .toml path or a shipped experiment name")
    add_set_option(show)
    show.set_defaults(func=run_show)
    val = csub.add_parser("validate", help="check experiments; report every problem")
    val.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                     help=".toml paths or shipped experiment names")
    val.add_argument("--stage", choices=("tokenizer", "transformer"),
                     help="check for this training stage (default: the experiment's own)")
    val.add_argument("--no-files", dest="files", action="store_false",
                     help="skip the checks that read the disk (data folder, checkpoints)")
    add_set_option(val)
    val.set_defaults(func=run_validate)


def run_show(args) -> int:
    exp = load_experiment(args.experiment, args.overrides)
    sys.stdout.write(experiment_toml(sized_experiment(exp)))  # the sizes of the model training builds
    return 0


def run_validate(args) -> int:
    failed = 0
    for name in args.experiments:
        try:
            check_experiment(load_experiment(name, args.overrides), args.stage, files=args.files)
        except MagvitError as exc:
            failed += 1
            print(f"magvit: error: {name}: {exc}", file=sys.stderr)
        else:
            print(f"{name}: ok")
    return 2 if failed else 0
