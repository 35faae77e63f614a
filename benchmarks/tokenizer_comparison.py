"""Tokenizers compared at equal compute on this machine: vq, lfq, fsq, causal or not, and vq2d.

Every configuration trains the tiny tokenizer on the synthetic clips for the same steps and batch
(`tiny-tokenizer`'s recipe), then a tiny ten-task transformer on its tokens for the same steps.
Reported per configuration, on held-out clips (the eval split, never trained on): round-trip
PSNR and SSIM, codes used and perplexity, the condition agreement of every conditional task
(share of condition tokens equal to the true tokens, PSNR of the given pixels after a round
trip of the padded condition video), the stage-2 held-out masked-token cross-entropy (mean over
the ten tasks, with the uniform guess log(codebook) beside it), and the wall-clock seconds of
each stage. Causal configurations use 7-frame clips, so that they keep the 4x8x8 token grid
(the first frame alone, then pairs).

    python benchmarks/tokenizer_comparison.py --steps 600 --stage2-steps 300 \\
        --runs runs/comparison --json benchmarks/results/tokenizer_comparison.json

Runs one configuration after another (2 cores: one training at a time); a configuration whose
runs exist is resumed to the asked steps, so the script can be stopped and started again.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

LFQ = '{kind="lfq",bits=14}'
FSQ = '{kind="fsq",levels=[8,8,8,5,5,5]}'
CAUSAL = ["tokenizer.causal=true", "data.frames=7"]
CONFIGS: dict[str, list[str]] = {  # name -> --set overrides of tiny-tokenizer and tiny
    "vq": [],
    "lfq": [f"tokenizer.quantizer={LFQ}"],
    "fsq": [f"tokenizer.quantizer={FSQ}"],
    "lfq-causal": [f"tokenizer.quantizer={LFQ}", *CAUSAL],
    "fsq-causal": [f"tokenizer.quantizer={FSQ}", *CAUSAL],
    "vq-causal": CAUSAL,
    "vq2d": ['tokenizer.kind="vq2d"'],
    # a spatially local encoder (a token sees its patch and 3 pixels around it; per-position norm)
    "fsq-local": [f"tokenizer.quantizer={FSQ}", "tokenizer.local=true"],
    "fsq-causal-local": [f"tokenizer.quantizer={FSQ}", "tokenizer.local=true", *CAUSAL],
}


def sets(overrides: list[str]) -> list[str]:
    return [arg for value in overrides for arg in ("--set", value)]


def train(stage: str, experiment: str, out: Path, overrides: list[str]) -> float:
    """Train (or resume) one run to its steps; the seconds it took this time."""
    args = ["magvit", "train", stage, experiment, "--output-dir", str(out), *sets(overrides)]
    if (out / "checkpoints").is_dir():
        args.append("--resume")
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


@torch.no_grad()
def tokenizer_scores(run: Path, clips: int) -> dict:
    from magvit.core.metrics import psnr, ssim
    from magvit.core.tokenizer.quantizer import perplexity
    from magvit.workflows.condition_agreement import condition_agreement, condition_tasks
    from magvit.workflows.train_tokenizer import load_tokenizer, trained_experiment

    tokenizer = load_tokenizer(checkpoint=run)
    data = trained_experiment(run).data.build().make("eval", seed=0)
    scores = {"psnr": [], "ssim": []}
    codes, reports = [], []
    tasks = condition_tasks()
    for start in range(0, min(clips, len(data)), 16):
        video = torch.stack([data[i]["video"] for i in range(start, min(start + 16, clips, len(data)))])
        tokens = tokenizer.encode(video)
        recon = tokenizer.decode(tokens)
        scores["psnr"].append(psnr(recon, video))
        scores["ssim"].append(ssim(recon, video))
        codes.append(tokens.flatten())
        reports.append((len(video), condition_agreement(tokenizer, video, tasks, true_tokens=tokens)))
    codes = torch.cat(codes)
    total = sum(n for n, _ in reports)
    agreement = {task: {key: sum(n * r[task][key] for n, r in reports) / total
                        for key in ("agreement", "condition_psnr")} for task in reports[0][1]}
    return {"psnr": torch.cat(scores["psnr"]).mean().item(), "ssim": torch.cat(scores["ssim"]).mean().item(),
            "codebook_size": tokenizer.codebook_size, "codes_used": int(codes.unique().numel()),
            "perplexity": perplexity(codes, tokenizer.codebook_size).item(),
            "latent_shape": list(tokens.shape[1:]), "agreement": agreement}


def stage2_scores(run: Path) -> dict:
    report = json.loads((run / "eval.json").read_text())
    ce = report["masked_token_ce"]
    return {"masked_ce": sum(ce.values()) / len(ce), "masked_ce_per_task": ce, "uniform_ce": report["uniform_ce"]}


def table(results: dict) -> str:
    tasks = ("fp", "fi", "ipc", "opc")
    head = ("| tokenizer | tokens | codes | PSNR | SSIM | used | " + " | ".join(f"agree {t}" for t in tasks)
            + " | stage-2 CE (uniform) | s stage 1 / 2 |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        if "psnr" not in r:
            continue
        agree = " | ".join(f"{100 * r['agreement'][t]['agreement']:.0f}%" for t in tasks)
        ce = f"{r['masked_ce']:.2f} ({r['uniform_ce']:.2f})" if "masked_ce" in r else "-"
        rows.append(
            f"| {name} | {'x'.join(map(str, r['latent_shape']))} | {r['codebook_size']} | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['codes_used']} | {agree} | {ce} | "
            f"{r['stage1_s']:.0f} / {r.get('stage2_s', math.nan):.0f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="tokenizer steps (each configuration)")
    parser.add_argument("--stage2-steps", type=int, default=300, help="transformer steps (0: skip stage 2)")
    parser.add_argument("--clips", type=int, default=128, help="held-out clips scored")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--runs", type=Path, default=Path("runs/comparison"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tokenizer_comparison.json"))
    args = parser.parse_args()
    results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    for name in args.only or CONFIGS:
        overrides = CONFIGS[name]
        tok_run, s2_run = args.runs / f"{name}-tokenizer", args.runs / f"{name}-stage2"
        row = results.get(name, {})
        step1 = [f"train.steps={args.steps}", f"train.eval_every={args.steps}", "train.checkpoint_every=100",
                 f"train.warmup_steps={min(50, args.steps)}"]
        row["stage1_s"] = row.get("stage1_s", 0.0) + train("tokenizer", "tiny-tokenizer", tok_run, overrides + step1)
        row.update(tokenizer_scores(tok_run, args.clips), steps=args.steps)
        print(f"{name}: PSNR {row['psnr']:.2f} dB, {row['codes_used']} codes used", file=sys.stderr, flush=True)
        if args.stage2_steps:
            step2 = [f"train.steps={args.stage2_steps}", f"train.eval_every={args.stage2_steps}",
                     "train.checkpoint_every=100", f"train.warmup_steps={min(100, args.stage2_steps)}",
                     f'tokenizer.checkpoint="{tok_run}"']
            row["stage2_s"] = row.get("stage2_s", 0.0) + train("transformer", "tiny", s2_run, overrides + step2)
            row.update(stage2_scores(s2_run), stage2_steps=args.stage2_steps)
        results[name] = row
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
