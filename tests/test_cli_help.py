"""Every option of every `magvit` command says in its help what it does."""

from __future__ import annotations

import argparse

from magvit.cli.main import build_parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help():
    commands = _commands(build_parser())
    assert {"demo", "eval", "export", "generate", "train"} <= set(commands)
    missing = []
    for name, parser in commands.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parsers = {name: parser, **{f"{name} {k}": v for a in nested for k, v in a.choices.items()}}
        for label, p in parsers.items():
            for action in p._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                if not (action.help or "").strip():
                    missing.append(f"magvit {label} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
