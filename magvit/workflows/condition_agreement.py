"""How much of a task's given information survives the tokenizer (`condition_agreement`).

A task pads its condition video (the given pixels plus padding) and the transformer sees the
tokens of that padded video in the condition region. For each task this measures, on clips:
- `agreement`: the share of condition-region tokens whose condition token equals the token of
  the true clip (1.0: the tokenizer keeps the condition exactly where the task says it is);
- `condition_psnr`: the PSNR (dB) of the given pixels after a round trip of the padded video.
`magvit reconstruct` and the tokenizer's training eval report both.
"""

from __future__ import annotations

import math

import torch

from magvit.api import latent_mask_for
from magvit.core.metrics import masked_psnr

# The built-in tasks that give pixels (CG gives none).
CONDITION_TASKS = ("fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cfp")


def condition_tasks(regs=None) -> dict:
    """The built-in conditional tasks, with default configs, that the registries hold."""
    from magvit.registry import registries

    regs = regs or registries()
    return {name: regs.tasks.create(name) for name in CONDITION_TASKS if name in regs.tasks}


@torch.no_grad()
def condition_agreement(tokenizer, videos: torch.Tensor, tasks: dict,
                        true_tokens: torch.Tensor | None = None) -> dict[str, dict[str, float]]:
    """`{task: {"agreement": share, "condition_psnr": dB}}` over the clips `videos (B, 3, T, H, W)`."""
    true = tokenizer.encode(videos) if true_tokens is None else true_tokens
    report = {}
    for name, task in tasks.items():
        padded, pixel_mask = task.condition(videos)
        latent = latent_mask_for(task, tokenizer, true.shape[1:]).to(true.device)
        if not bool(latent.any()):
            continue
        cond = tokenizer.encode(padded)
        agreement = (cond == true)[:, latent].float().mean().item()
        scores = masked_psnr(tokenizer.decode(cond), videos, pixel_mask)
        scores = scores[torch.isfinite(scores)]
        report[name] = {"agreement": agreement,
                        "condition_psnr": scores.mean().item() if len(scores) else math.nan}
    return report


def agreement_metrics(report: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat `agree_<task>` / `cond_psnr_<task>` metrics for a training log."""
    flat = {}
    for name, row in report.items():
        flat[f"agree_{name}"] = row["agreement"]
        flat[f"cond_psnr_{name}"] = row["condition_psnr"]
    return flat


def format_agreement(report: dict[str, dict[str, float]]) -> str:
    lines = ["task  condition tokens kept  condition PSNR"]
    for name, row in report.items():
        lines.append(f"{name:<5} {100 * row['agreement']:>20.1f}%  {row['condition_psnr']:>10.2f} dB")
    return "\n".join(lines)
