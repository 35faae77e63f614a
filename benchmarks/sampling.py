"""Seconds per decoding step's token draw: inverse-CDF sampling (ours) against the Gumbel-max trick.

Both draw one codebook id per position from the untempered softmax (SPEC §4), from the same
logits, interleaved in one run. Gumbel-max needs a uniform draw and two logs per codebook entry;
the inverse CDF one uniform per position plus a softmax and a cumulative sum. Shapes: the
bundled default model's step (8 clips of 256 tokens, codebook 4375) and the B preset's (1 clip of
1024 tokens, codebook 1024), every position sampled (COMMIT's first step) and 40% of them (a
late step: `rows`).
Run: `python benchmarks/sampling.py [--repeats 20] [--threads 2] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from magvit.core.decoding.sampling import gumbel_noise, sample_tokens

SHAPES = {"default (8 x 256 x 4375)": (8, 256, 4375), "B (1 x 1024 x 1024)": (1, 1024, 1024)}


def gumbel_max(logits: torch.Tensor, generator: torch.Generator, rows: torch.Tensor) -> torch.Tensor:
    """The baseline: argmax(logits + Gumbel noise) with one noise value per codebook entry,
    drawn for every position (so a seed gives the same ids whichever rows are kept)."""
    noise = gumbel_noise(logits.shape, generator)[rows]
    ids = torch.zeros(logits.shape[:-1], dtype=torch.long)
    ids[rows] = (logits[rows].float() + noise).argmax(dim=-1)
    return ids


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows_out = []
    for name, (batch, tokens, vocab) in SHAPES.items():
        gen = torch.Generator().manual_seed(0)
        logits = torch.log_softmax(torch.randn(batch, tokens, vocab, generator=gen) * 3, dim=-1)
        for share in (1.0, 0.4):
            rows = torch.rand(batch, tokens, generator=gen) < share
            ours, base = [], []
            for _ in range(args.repeats):  # interleaved: both see the same machine state
                ours.append(timed(lambda x=logits, g=gen, r=rows: sample_tokens(x, g, rows=r)))
                base.append(timed(lambda x=logits, g=gen, r=rows: gumbel_max(x, g, r)))
            row = {"shape": name, "rows": share, "inverse_cdf_ms": 1e3 * statistics.median(ours),
                   "gumbel_max_ms": 1e3 * statistics.median(base)}
            row["speedup"] = row["gumbel_max_ms"] / row["inverse_cdf_ms"]
            rows_out.append(row)
            print(f"{name:26s} rows {share:4.0%}: inverse CDF {row['inverse_cdf_ms']:8.2f} ms, "
                  f"Gumbel-max {row['gumbel_max_ms']:8.2f} ms, {row['speedup']:5.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "torch": torch.__version__,
                       "cpu_capability": torch.backends.cpu.get_cpu_capability(), "rows": rows_out}, f, indent=2)


if __name__ == "__main__":
    main()
