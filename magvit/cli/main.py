"""`magvit` entry point.

Each module in `magvit.cli.commands` defines `register(subparsers)`, which adds its sub-command
and sets `func(args) -> int | None` as the parser default. A `MagvitError` (bad input) ends the
command with its message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from magvit import __version__
from magvit.errors import MagvitError


def build_parser() -> argparse.ArgumentParser:
    from magvit.cli import commands

    parser = argparse.ArgumentParser(
        prog="magvit", description="Masked generative video transformers (MAGVIT)."
    )
    parser.add_argument("--version", action="version", version=f"magvit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MagvitError as exc:
        print(f"magvit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("magvit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
