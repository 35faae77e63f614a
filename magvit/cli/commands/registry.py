"""`magvit registry list [KIND]`: the names in each registry and who provides them."""

from __future__ import annotations

import json

from magvit.errors import MagvitError
from magvit.registry import registries


def register(sub) -> None:
    p = sub.add_parser("registry", help="inspect the component registries")
    rsub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    lst = rsub.add_parser("list", help="list registered names, per registry")
    lst.add_argument("kind", nargs="?", help="one registry (tasks, schedules, ...)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=run_list)


def run_list(args) -> int:
    regs = registries()
    kinds = regs.kinds()
    if args.kind:
        if args.kind not in kinds:
            raise MagvitError(f"no registry {args.kind!r}; registries are: {', '.join(kinds)}")
        kinds = [args.kind]
    if args.json:
        print(json.dumps({
            k: {e.name: {"plugin": e.plugin.name, "distribution": e.plugin.distribution,
                         "version": e.plugin.version} for e in regs[k].entries()}
            for k in kinds
        }, indent=2))
        return 0
    for kind in kinds:
        entries = regs[kind].entries()
        print(f"{kind} ({len(entries)})")
        for e in entries:
            print(f"    {e.name:<16} {e.plugin.distribution} {e.plugin.version}  ({e.plugin.name})")
    return 0
