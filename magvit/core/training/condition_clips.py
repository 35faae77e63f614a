"""Condition clips: train the tokenizer on the padded videos that stage 2 encodes too
(`[losses] condition_clips`).

Stage 2 never shows the transformer a given frame as such: a task pads its condition (the first
frame repeated for FP, a blend for FI, a border of zeros for outpainting) and the transformer sees
the tokens of that padded video. Training clips all move, so a tokenizer trained on them alone
has never encoded a still clip: the bundled default's round-trips FP's repeated first frame at
24.8 dB against 27.7 dB for the same frame in its clip. Here a fraction of the clips is replaced
by one conditional task's padded video of itself, and the tokenizer is trained to reconstruct
that (what it did and did not change for the default's recipe: magvit/weights/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def condition_clips(video: torch.Tensor, fraction: float, tasks: Sequence,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`video (B, 3, T, H, W)` -> (the same with `fraction` of the clips, drawn with `generator`,
    replaced by `task.condition(clip)[0]` of a task drawn from `tasks`, `task_of (B,)` long: the
    index in `tasks` of the task a clip was padded by, -1 for a clip left as it was)."""
    out = video.clone()
    task_of = torch.full((video.shape[0],), -1, dtype=torch.long)
    if not tasks or fraction <= 0:
        return out, task_of
    for b in range(video.shape[0]):
        if torch.rand((), generator=generator).item() >= fraction:
            continue
        task_of[b] = int(torch.randint(len(tasks), (), generator=generator))
        padded, _ = tasks[int(task_of[b])].condition(video[b:b + 1])
        out[b] = padded[0].to(video.dtype)
    return out, task_of
