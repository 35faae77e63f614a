"""CPU training and demo speed: freed memory kept in the process (the `magvit` default) against
glibc's own malloc (`MAGVIT_MALLOC=system`), each in fresh processes, alternating.

Training: `magvit train transformer tiny-flat-gpu` from the bundled model, its recipe (batch 128,
bf16 autocast) for `--steps` steps; a run's speed is the median clips per second of its logged
intervals after the first (which holds the warm-up). Demo: the wall time of `magvit demo` with
`--demo-clips` clips. Prints both settings' medians and the ratio; `--json FILE` keeps them.
Run: `python benchmarks/allocator.py [--rounds 2] [--steps 20] [--demo-clips 16] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {"kept (default)": "keep", "glibc (MAGVIT_MALLOC=system)": "system"}
MAGVIT = [sys.executable, "-m", "magvit"]


def train_args(out: Path, steps: int, batch_size: int) -> list[str]:
    sets = {"run.device": '"cpu"', "tokenizer.checkpoint": '"default"', "train.init_from": '"default"',
            "tokenizer.base_channels": 16, "transformer.num_layers": 8, "train.steps": steps,
            "train.batch_size": batch_size, "train.warmup_steps": 1, "train.log_every": 5,
            "train.eval_every": 10**6, "train.checkpoint_every": 10**6, "train.num_workers": 1}
    args = ["train", "transformer", "tiny-flat-gpu", "--output-dir", str(out)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args


def run(args: list[str], setting: str, threads: int) -> float:
    """Runs `magvit --threads T ARGS` under `setting`; returns its wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["MAGVIT_MALLOC"] = setting
    started = time.perf_counter()
    subprocess.run([*MAGVIT, "--threads", str(threads), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def clips_per_second(run_dir: Path) -> float:
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["clips_per_s"] for r in logged if r.get("split") == "train" and "clips_per_s" in r]
    if len(speeds) < 2:
        raise SystemExit(f"{run_dir}: {len(speeds)} logged intervals; give --steps of 10 or more")
    return statistics.median(speeds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--demo-clips", type=int, default=16, help="0 leaves the demo out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    train = {name: [] for name in SETTINGS}
    demo = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(SETTINGS) if round_ % 2 == 0 else list(SETTINGS)[::-1]
            for name in order:
                out = Path(tmp) / f"train-{round_}-{SETTINGS[name]}"
                run(train_args(out, args.steps, args.batch_size), SETTINGS[name], args.threads)
                train[name].append(clips_per_second(out))
                print(f"round {round_ + 1} {name}: training {train[name][-1]:.2f} clips/s", flush=True)
                if args.demo_clips:
                    demo_out = Path(tmp) / f"demo-{round_}-{SETTINGS[name]}"
                    demo[name].append(run(["demo", "--clips", str(args.demo_clips), "--output",
                                           str(demo_out)], SETTINGS[name], args.threads))
                    print(f"round {round_ + 1} {name}: demo {demo[name][-1]:.1f} s", flush=True)
    kept, system = list(SETTINGS)
    result = {"rounds": args.rounds, "steps": args.steps, "batch_size": args.batch_size,
              "threads": args.threads, "demo_clips": args.demo_clips,
              "training_clips_per_s": {n: statistics.median(v) for n, v in train.items()},
              "training_runs": train}
    result["training_speedup"] = (result["training_clips_per_s"][kept]
                                  / result["training_clips_per_s"][system])
    print(f"training, median clips/s: {kept} {result['training_clips_per_s'][kept]:.2f}, "
          f"{system} {result['training_clips_per_s'][system]:.2f}: "
          f"{result['training_speedup']:.2f}x")
    if args.demo_clips:
        result["demo_seconds"] = {n: statistics.median(v) for n, v in demo.items()}
        result["demo_runs"] = demo
        result["demo_speedup"] = result["demo_seconds"][system] / result["demo_seconds"][kept]
        print(f"demo, median wall s: {kept} {result['demo_seconds'][kept]:.1f}, "
              f"{system} {result['demo_seconds'][system]:.1f}: {result['demo_speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
