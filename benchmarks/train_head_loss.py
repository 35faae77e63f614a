"""Stage 2's output head and loss, forward and backward: torch's pieces against ours, interleaved.

The tiny transformer's step is dominated by its widest tensor, the (batch, positions, codes)
logits: with 4,375 FSQ codes they are 50x the hidden states. Two changes cut the passes over it:
the head is one `F.linear` (the bias fused into the matmul, instead of a broadcast add that
under bf16 autocast also promoted the logits to fp32), and the label-smoothed cross-entropy is
`smoothed_cross_entropy`, whose backward writes softmax - target in one buffer. The baseline is
what stage 2 ran before: `x @ codes.T + bias` and `F.cross_entropy(..., label_smoothing=eps)`.
Both see the same inputs, alternate round by round, and report the median of their rounds, so
the ratio holds under whatever else the machine is doing.

Run: `python benchmarks/train_head_loss.py [--threads 2] [--rounds 7]` (about a minute); writes
`benchmarks/results/cpu-train-head-loss.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from magvit.core.losses.smoothed_cross_entropy import smoothed_cross_entropy

PREFIX = 2  # class / task tokens before the latent positions, as in stage 2's sequences


def head_and_loss(x, codes, bias, targets, weights, *, ours: bool, precision: str, eps: float):
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
    with cast:
        logits = F.linear(x, codes, bias) if ours else x @ codes.t() + bias  # (B, L, C)
    logits = logits[:, PREFIX:].flatten(0, 1)  # (B * N, C): the latent positions only
    if ours:
        ce = smoothed_cross_entropy(logits, targets.flatten(), eps)
    else:
        ce = F.cross_entropy(logits.float(), targets.flatten(), reduction="none", label_smoothing=eps)
    loss = (ce.view(targets.shape) * weights).sum(1).div(weights.sum(1)).mean()
    loss.backward()
    return loss.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--codes", type=int, default=7 * 5 * 5 * 5 * 5)  # tiny-flat's FSQ levels
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-train-head-loss.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    hidden, latent = 128, 4 * 8 * 8  # the tiny transformer on 8x32x32 clips
    x = torch.randn(args.batch, PREFIX + latent, hidden, generator=g).requires_grad_(True)
    codes = (0.02 * torch.randn(args.codes, hidden, generator=g)).requires_grad_(True)
    bias = (0.1 * torch.randn(args.codes, generator=g)).requires_grad_(True)
    targets = torch.randint(0, args.codes, (args.batch, latent), generator=g)
    weights = torch.rand(args.batch, latent, generator=g)
    report = {"threads": args.threads, "batch": args.batch, "positions": latent, "codes": args.codes,
              "hidden": hidden, "rounds": args.rounds}
    for precision in ("bf16", "fp32"):
        times: dict[str, list[float]] = {"torch": [], "ours": []}
        losses = {}
        for _ in range(args.rounds + 1):  # the first round warms both up and is not counted
            for name in ("torch", "ours"):
                for p in (x, codes, bias):
                    p.grad = None
                start = time.perf_counter()
                losses[name] = head_and_loss(x, codes, bias, targets, weights, ours=name == "ours",
                                             precision=precision, eps=1e-4)
                times[name].append(time.perf_counter() - start)
        torch_ms, ours_ms = (1000 * statistics.median(times[n][1:]) for n in ("torch", "ours"))
        report[precision] = {"torch_ms": round(torch_ms, 1), "ours_ms": round(ours_ms, 1),
                             "speedup": round(torch_ms / ours_ms, 2),
                             "loss_difference": abs(losses["torch"] - losses["ours"]).item()}
        print(f"{precision}: torch {torch_ms:.1f} ms, ours {ours_ms:.1f} ms, {torch_ms / ours_ms:.2f}x "
              f"(losses differ by {report[precision]['loss_difference']:.1e})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
