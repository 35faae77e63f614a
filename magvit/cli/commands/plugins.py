"""`magvit plugins`: every plugin, its distribution and version, what it registered, failures."""

from __future__ import annotations

import json

from magvit.registry import registries


def register(sub) -> None:
    p = sub.add_parser("plugins", help="list installed plugins, what they register, load errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--traceback", action="store_true", help="show full tracebacks of failures")
    p.set_defaults(func=run)


def run(args) -> int:
    regs = registries()
    if args.json:
        print(json.dumps({
            "plugins": [
                {"name": p.info.name, "distribution": p.info.distribution,
                 "version": p.info.version, "builtin": p.builtin, "registered": p.registered}
                for p in regs.plugins
            ],
            "failures": [
                {"name": f.plugin, "distribution": f.distribution, "stage": f.stage, "error": f.error}
                for f in regs.failures
            ],
            "blocked": regs.blocked,
        }, indent=2))
        return 0
    for p in regs.plugins:
        origin = "built-in" if p.builtin else "third-party"
        print(f"{p.info.name}  [{p.info.distribution} {p.info.version}, {origin}]")
        for kind, names in p.registered.items():
            print(f"    {kind}: {', '.join(names)}")
        if not p.registered:
            print("    (registered nothing)")
    for name in regs.blocked:
        print(f"{name}  [blocked by MAGVIT_BLOCK_PLUGINS / MAGVIT_LOAD_PLUGINS]")
    if regs.failures:
        print(f"\n{len(regs.failures)} plugin(s) failed to load:")
        for f in regs.failures:
            print(f"  {f}")
            if args.traceback:
                print("    " + f.details.replace("\n", "\n    "))
    return 0
