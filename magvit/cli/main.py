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
import traceback

from magvit import __version__
from magvit.cli.arguments import Parser, integer
from magvit.errors import MagvitError


def build_parser() -> argparse.ArgumentParser:
    from magvit.cli import commands

    parser = Parser(prog="magvit", description="Masked generative video transformers (MAGVIT).")
    parser.add_argument("--version", action="version", version=f"magvit {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (for bug reports)")
    parser.add_argument("--threads", type=integer(1),
                        help="CPU threads (default: OMP_NUM_THREADS, else the cores this process may use)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    except MagvitError as exc:  # raised by an argument type
        print(f"magvit: error: {exc}", file=sys.stderr)
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for run records
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from magvit.core.allocator import keep_freed_memory
        from magvit.core.threads import apply_thread_policy

        malloc = keep_freed_memory()  # before the first large tensor
        args.thread_policy = {**apply_thread_policy(args.threads), "malloc": malloc}
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("magvit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error ends in one line and exit 2; --debug shows the rest
        if args.debug:
            traceback.print_exc()
        print(f"magvit: error: {describe_error(exc)}", file=sys.stderr)
        return 2


def describe_error(exc: BaseException) -> str:
    """What the user reads: a MagvitError's own message; a file problem with its path; anything
    else is a bug in magvit or a plugin, named as such."""
    if isinstance(exc, MagvitError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return (f"unexpected {type(exc).__name__}: {exc} (a bug in magvit or a plugin; rerun with "
            "--debug for the traceback and report it)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
