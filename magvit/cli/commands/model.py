"""`magvit model summary EXP [--json]`: parameter counts per component."""

from __future__ import annotations

import json

from magvit.cli.arguments import number
from magvit.cli.commands.config import add_set_option
from magvit.registry.experiment import load_experiment


def register(sub) -> None:
    p = sub.add_parser("model", help="inspect the models an experiment builds")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    summary = msub.add_parser("summary", help="parameter counts per component")
    summary.add_argument("experiment", help="a .toml path or a shipped experiment name")
    summary.add_argument("--json", action="store_true", help="print a JSON object")
    summary.add_argument("--memory", action="store_true",
                         help="also the training memory: activations per clip (fp32, bf16) and the "
                              "largest micro-batch per GPU")
    summary.add_argument("--gpu-gib", type=number(1.0), default=80.0, help="GPU memory for --memory (GiB)")
    add_set_option(summary)
    summary.set_defaults(func=run_summary)


def run_summary(args) -> int:
    from magvit.workflows.summary import parameter_counts

    exp = load_experiment(args.experiment, args.overrides)
    counts = parameter_counts(exp)
    memory = _memory(exp, args.gpu_gib) if args.memory else None
    if args.json:
        print(json.dumps(counts if memory is None else {"parameters": counts, "memory": memory}, indent=2))
        return 0
    width = max((len(name) for name in counts), default=0)
    for name, n in counts.items():
        print(f"{name:<{width}}  {n:>13,}  ({n / 1e6:.2f}M)")
    for row in memory or []:
        print(f"\n{row['component']} training memory per GPU of {args.gpu_gib:g} GiB "
              f"({row['static_gib']:.2f} GiB weights, gradients and Adam moments; 10% kept free):")
        print(f"  {'precision':<12}{'activations / clip':>20}{'largest micro-batch':>22}")
        for precision, gib in row["activation_gib_per_clip"].items():
            print(f"  {precision:<12}{gib:>16.3f} GiB{row['max_micro_batch'][precision]:>22}")
    return 0


def _memory(exp, gpu_gib: float) -> list[dict]:
    from magvit.workflows.memory import memory_footprints

    gpu = int(gpu_gib * 2**30)
    return [{
        "component": f.name, "parameters": f.parameters, "static_gib": f.static_bytes / 2**30,
        "activation_gib_per_clip": {p: b / 2**30 for p, b in f.activation_bytes.items()},
        "max_micro_batch": {p: f.max_micro_batch(gpu, p) for p in f.activation_bytes},
        "gpu_gib": gpu_gib,
    } for f in memory_footprints(exp)]
