"""Train a candidate default model (both stages) on one lent CUDA GPU within a wall-clock budget.

Every run is `magvit train ...` on a shipped experiment (`tiny-flat-gpu-tokenizer`, then
`tiny-flat-gpu`); this script only picks `train.steps` so that each stage ends inside its share
of the budget, runs a few variants of each stage side by side (small models leave a GPU mostly
idle, so several fit at once), and keeps the best tokenizer for stage 2:

1. stage 1: each tokenizer variant runs a short calibration (the seconds a step takes with the
   others running beside it), then its full run, cosine-decayed to the steps that fit;
2. the tokenizer with the best held-out round trip (the last eval's PSNR) is kept;
3. stage 2: the same for each transformer variant, on that tokenizer;
4. each stage-2 run is exported (`magvit export`) and everything is packed into `--out`.

With `--init-from BUNDLE` (e.g. `default`) there is no stage 1: the fine-tuning variants
continue that bundle's transformer on its own tokenizer (`train.init_from`) for the whole
budget (the bundled default's held-out cross-entropy was still falling when its lease ran out).

With `--tokenizer RUN` there is no stage 1 either: the transformer variants train from scratch,
for the whole budget, on a 16-channel tokenizer trained elsewhere (on CPU cores, say: stage 1 of
this recipe takes 30 min on 2 cores in bf16, stage 2 the hours a GPU saves). Its tokens are not
the bundle's, so nothing of the bundle carries over.

A run still going at its stage's deadline gets SIGINT, which stops it after the step with a
checkpoint. The commands each run got are in its `command.txt`; `plan.json` has the steps.

    python scripts/train_default_on_gpu.py --out OUT --budget 540
    python scripts/train_default_on_gpu.py --out OUT --budget 540 --init-from default
    python scripts/train_default_on_gpu.py --out OUT --budget 540 --tokenizer runs/tokenizer --transformers b8
    python scripts/train_default_on_gpu.py --out OUT --budget 540 --recipe mass
    python scripts/train_default_on_gpu.py --out OUT --init-from default --set train.num_workers=10

`--set KEY=VALUE` (repeatable) is passed to every `magvit train` the script runs, after its own
overrides, and is checked against the recipe's experiments before anything starts.

`--recipe` picks the pair of shipped experiments (`flat`: the bundled default's clips; `big`:
larger shapes, and `mass`: shape kinds told apart by where their mass lies, whose single frames
keep their kind through the tokenizer). A `--tokenizer` run trained on other clips than the
recipe's stage 2 draws is refused before anything starts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from magvit.core.training.loggers import METRICS_FILE, read_metrics

TOKENIZER_EXPERIMENT = "tiny-flat-gpu-tokenizer"
TRANSFORMER_EXPERIMENT = "tiny-flat-gpu"
# --recipe -> (stage-1 experiment, stage-2 experiment); both of a pair draw the same clips
RECIPES = {
    "flat": (TOKENIZER_EXPERIMENT, TRANSFORMER_EXPERIMENT),   # the bundled default's
    "big": ("tiny-big-gpu-tokenizer", "tiny-big-gpu"),         # larger shapes (magvit/weights/README.md)
    "mass": ("tiny-mass-gpu-tokenizer", "tiny-mass-gpu"),      # shape kinds told apart by mass (ditto)
}
# variant -> overrides; the tokenizer's shape overrides are passed on to stage 2
TOKENIZERS = {
    "t32": ["tokenizer.base_channels=32", "train.lr=2e-3"],
    "t24d2": ["tokenizer.base_channels=24", "tokenizer.decoder_res_blocks=2", "train.lr=2e-3"],
    "t16": ["tokenizer.base_channels=16", "train.lr=1e-3"],
}
SHAPE_KEYS = ("tokenizer.base_channels=", "tokenizer.decoder_res_blocks=")
TRANSFORMERS = {
    "b4": ["transformer.num_layers=4"],
    "b8": ["transformer.num_layers=8"],
}
# A bundle with a class reader generates FP as CFP with the class it reads, so its fine-tunes train
# CFP three times as often as FP, the other way round from the recipe (the bundled default's last
# CPU fine-tune: CFP's held-out CE fell 0.023 nats in 800 steps, FP's demo gain rose 0.39 dB).
CFP_WEIGHTED = ["tasks.fp.weight=1", "tasks.cfp.weight=3"]
# --init-from: stage 2 alone, from a bundle of `tiny-flat-gpu` (8 layers), at fine-tuning rates;
# a GPU this small a model leaves mostly idle takes twice the batch for little more time a step
FINETUNES = {
    "f128": ["train.lr=3e-4", *CFP_WEIGHTED],
    "f256": ["train.lr=4e-4", "train.batch_size=256", *CFP_WEIGHTED],
}
SAFETY = 0.9  # evals, checkpoints and a slower stretch eat into the measured rate


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def launch(args, stage: str, experiment: str, run_dir: Path, sets: list[str]) -> subprocess.Popen:
    command = [*args.magvit, "train", stage, experiment, "--output-dir", str(run_dir)]
    for item in [*sets, *args.sets]:  # the user's --set last, so it wins
        command += ["--set", item]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log("launch " + " ".join(command))
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as out:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int]:
    """Wait for every process; past `deadline` each still running is asked to stop (SIGINT)."""
    asked = set()
    while any(p.poll() is None for p in procs.values()):
        if time.time() > deadline:
            for name, p in procs.items():
                if p.poll() is None and name not in asked:
                    log(f"{name}: deadline reached, SIGINT")
                    p.send_signal(signal.SIGINT)
                    asked.add(name)
            if time.time() > deadline + 60:
                for p in procs.values():
                    if p.poll() is None:
                        p.kill()
        time.sleep(1)
    return {name: p.returncode for name, p in procs.items()}


def metrics(run_dir: Path, split: str) -> list[dict]:
    """The run's `metrics.jsonl` records of one split; none for a run that logged nothing."""
    if not (run_dir / METRICS_FILE).is_file():
        return []
    return [r for r in read_metrics(run_dir) if r.get("split") == split]


def seconds_per_step(run_dir: Path) -> float | None:
    rows = [r for r in metrics(run_dir, "train") if "elapsed_s" in r]
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]  # the first log line carries the start-up; rate from the rest
    return (last["elapsed_s"] - first["elapsed_s"]) / max(last["step"] - first["step"], 1)


def calibrate(args, stage, experiment, variants, extra, tag) -> dict[str, tuple[float, float]]:
    """variant -> (seconds per step, seconds of start-up and finish), all variants at once."""
    procs, dirs, started = {}, {}, time.time()
    n = args.calibration_steps
    for name, sets in variants.items():
        dirs[name] = args.work / f"cal-{tag}-{name}"
        procs[name] = launch(args, stage, experiment, dirs[name], [
            *extra(name), *sets, f"train.steps={n}", f"train.warmup_steps={n // 10}", f"train.log_every={n // 6}",
            "train.eval_every=0", f"train.checkpoint_every={n}"])
    codes = wait_all(procs, started + 240)
    walls = time.time() - started
    rates = {}
    for name in variants:
        rate = seconds_per_step(dirs[name])
        if codes[name] != 0 or rate is None:
            log(f"{name}: calibration failed (exit {codes[name]}); dropped")
            continue
        rates[name] = (rate, max(walls - n * rate, 5.0))
        log(f"{name}: {rate * 1000:.1f} ms a step with {len(variants)} side by side, "
            f"start-up and finish {rates[name][1]:.0f} s")
    return rates


def train(args, stage, experiment, variants, rates, extra, budget, tag) -> dict[str, Path]:
    procs, dirs, started, plan = {}, {}, time.time(), {}
    for name, (rate, overhead) in rates.items():
        steps = max(int((budget - overhead) * SAFETY / rate), 20)
        every = max(steps // 4, 5)
        plan[name] = {"steps": steps, "seconds_per_step": rate, "overhead_s": overhead}
        dirs[name] = args.work / f"{tag}-{name}"
        procs[name] = launch(args, stage, experiment, dirs[name], [
            *extra(name), *variants[name], f"train.steps={steps}",
            f"train.warmup_steps={min(steps // 10, 500)}", f"train.eval_every={every}",
            f"train.checkpoint_every={every}"])
    args.plan[tag] = plan
    codes = wait_all(procs, started + budget)
    for name, code in codes.items():
        args.plan[tag][name].update(exit=code, wall_s=round(time.time() - started, 1))
        log(f"{name}: exit {code}")
    return dirs


def last_eval(run_dir: Path) -> dict:
    rows = metrics(run_dir, "eval")
    return rows[-1] if rows else {}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pack(args) -> None:
    (args.work / "plan.json").write_text(json.dumps(args.plan, indent=1))
    with tarfile.open(args.out / "logs.tgz", "w:gz") as tar:
        for path in sorted(args.work.rglob("*")):
            if path.is_file() and path.suffix in (".jsonl", ".json", ".toml", ".txt", ".log"):
                tar.add(path, arcname=str(path.relative_to(args.work)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results (bundles, logs)")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu-default"), help="folder for the runs")
    parser.add_argument("--budget", type=float, default=540, help="wall-clock seconds for everything")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--calibration-steps", type=int, default=300)
    parser.add_argument("--share", type=float, default=0.45, help="stage 1's share of the training time")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="flat",
                        help="the pair of shipped experiments to train (their clips differ)")
    parser.add_argument("--tokenizers", default=",".join(TOKENIZERS))
    parser.add_argument("--transformers", default=",".join(TRANSFORMERS))
    parser.add_argument("--init-from", default="", help="no stage 1: fine-tune this stage-2 bundle "
                        "(e.g. default) on its own tokenizer for the whole budget")
    parser.add_argument("--finetunes", default=",".join(FINETUNES))
    parser.add_argument("--tokenizer", default="", help="no stage 1: train the transformer variants from "
                        "scratch on this trained tokenizer (a run folder of tiny-flat-gpu-tokenizer with 16 base "
                        "channels, or of an experiment that extends it) for the whole budget")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="an experiment override for every run (repeatable)")
    args = parser.parse_args()
    if args.init_from and args.tokenizer:
        parser.error("--init-from fine-tunes a bundle on its own tokenizer; --tokenizer starts a new "
                     "transformer on another: give one of them")
    args.s1_experiment, args.s2_experiment = RECIPES[args.recipe]
    if args.tokenizer:
        differences = tokenizer_data_differences(args.s2_experiment, args.tokenizer)
        if differences:
            parser.error(f"--tokenizer {args.tokenizer} was trained on other clips than "
                         f"{args.s2_experiment} draws ({'; '.join(differences)}); give the --recipe "
                         "whose stage 1 trained it")
    bad = override_errors(args)
    if bad:
        parser.error(f"--set: {bad}")
    start = time.time()
    args.magvit = [sys.executable, "-m", "magvit", "--threads", "2"]
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    args.plan = {"budget_s": args.budget, "device": args.device, "recipe": args.recipe}
    device = [f'run.device="{args.device}"']
    try:
        if args.init_from:
            args.plan["init_from"] = args.init_from
            source = [f'tokenizer.checkpoint="{args.init_from}"', f'train.init_from="{args.init_from}"']
            finetunes = {k: FINETUNES[k] for k in args.finetunes.split(",")}
            return 0 if export_all(args, stage_two(args, finetunes, lambda _: [*device, *source], start)) else 1
        transformers = {k: TRANSFORMERS[k] for k in args.transformers.split(",")}
        if args.tokenizer:
            args.plan["tokenizer"] = args.tokenizer
            source = tokenizer_source(args.tokenizer)
            return 0 if export_all(args, stage_two(args, transformers, lambda _: [*device, *source], start)) else 1
        tokenizers = {k: TOKENIZERS[k] for k in args.tokenizers.split(",")}
        rates = calibrate(args, "tokenizer", args.s1_experiment, tokenizers, lambda _: device, "s1")
        if not rates:
            log("no tokenizer variant runs; stopping")
            return 1
        # left after stage 1: stage 2's calibration (~45 s), exports and packing (~30 s)
        left = args.budget - (time.time() - start) - 75
        runs = train(args, "tokenizer", args.s1_experiment, tokenizers, rates,
                     lambda _: device, left * args.share, "s1")
        scores = {name: last_eval(runs[name]).get("psnr", float("-inf")) for name in rates}
        args.plan["s1_psnr"] = scores
        best = max(scores, key=scores.get)
        log(f"tokenizers' held-out round trip (dB): {scores}; keeping {best}")
        shape = [s for s in tokenizers[best] if s.startswith(SHAPE_KEYS)]
        stage2 = lambda _: [*device, f'tokenizer.checkpoint="{runs[best]}"', *shape]  # noqa: E731
        args.plan["s1_best"] = {"variant": best, "overrides": shape}
        if not export_all(args, stage_two(args, transformers, stage2, start)):
            # no stage 2 came through: bring the tokenizer run's weights back
            last = (runs[best] / "checkpoints" / "last").read_text().strip()
            shutil.copy(runs[best] / "checkpoints" / last / "ema.safetensors", args.out / "tokenizer-ema.safetensors")
        return 0
    finally:
        args.plan["elapsed_s"] = round(time.time() - start, 1)
        pack(args)
        log(f"done in {time.time() - start:.0f} s")


def override_errors(args) -> str:
    """What is wrong with `--set` for the experiments this call will run ("" when nothing is), so
    that a typo stops the script before it spends a lease."""
    from magvit.errors import MagvitError
    from magvit.registry.experiment import load_experiment

    stages = [args.s2_experiment] if args.init_from or args.tokenizer else [args.s1_experiment, args.s2_experiment]
    for experiment in stages if args.sets else []:
        try:
            load_experiment(experiment, args.sets)
        except (MagvitError, ValueError) as exc:
            return f"{experiment}: {exc}"
    return ""


def tokenizer_source(path: str) -> list[str]:
    """Stage 2's overrides for `--tokenizer`: that checkpoint, with the 16-channel tokenizer's shape."""
    return [f'tokenizer.checkpoint="{path}"', *(s for s in TOKENIZERS["t16"] if s.startswith(SHAPE_KEYS))]


def tokenizer_data_differences(experiment: str, tokenizer: str) -> list[str]:
    """How the clips `tokenizer` was trained on differ from those stage 2's `experiment` draws."""
    from magvit.registry.experiment import load_experiment
    from magvit.workflows.tokenizer_data import data_differences

    return data_differences(load_experiment(experiment, tokenizer_source(tokenizer)))


def stage_two(args, variants, extra, start: float) -> dict[str, Path]:
    """Calibrate and train the stage-2 variants in what is left of the budget."""
    rates = calibrate(args, "transformer", args.s2_experiment, variants, extra, "s2")
    left = args.budget - (time.time() - start) - 30
    return train(args, "transformer", args.s2_experiment, variants, rates, extra, left, "s2") if rates else {}


def export_all(args, runs: dict[str, Path]) -> bool:
    """Export every stage-2 run and pack it for `--out` (one copy of the shared tokenizer);
    whether any came through."""
    tokenizer_file = None
    for name, run in runs.items():
        bundle = args.work / f"bundle-{name}"
        code = subprocess.call([*args.magvit, "export", str(run), str(bundle), "--overwrite"])
        if code != 0:
            log(f"{name}: export failed ({code})")
            continue
        tok = bundle / "tokenizer.safetensors"
        args.plan.setdefault("bundles", {})[name] = {"tokenizer_sha256": sha256(tok)}
        if tokenizer_file is None:
            tokenizer_file = args.out / "tokenizer.safetensors"
            shutil.copy(tok, tokenizer_file)
        with tarfile.open(args.out / f"bundle-{name}.tgz", "w:gz") as tar:
            for path in sorted(bundle.iterdir()):
                if path.name != "tokenizer.safetensors":
                    tar.add(path, arcname=f"bundle-{name}/{path.name}")
    return tokenizer_file is not None


if __name__ == "__main__":
    sys.exit(main())
