"""`magvit demo`: every task of a model on held-out clips, as videos, a contact sheet and a table.

For each task the demo writes `<task>.mp4` (one row per clip: condition | generated | ground
truth), one row of `contact_sheet.png` (the first clip's frames: condition, generated, ground
truth), and a table row: PSNR over the pixels the task had to generate (the condition pixels are
given, so they are left out), PSNR over the condition pixels (whether the model keeps what it
was given) and SSIM over the clip, of the generated clips against the ground truth; the same
two PSNRs of the padded condition video (the task's own baseline: the last given frame repeated
for FP, the linear blend for FI) and of the tokenizer's round trip of the ground truth (the
ceiling: generation cannot beat the tokens' own reconstruction); and the seconds generation took.
The three generated-pixel PSNRs are also kept frame by frame (`psnr_per_frame`, ...): the curve
shows where a prediction stops following the truth.
CG has no condition, so it has no ground truth to compare with; on the synthetic clips its
score is `class_accuracy`, the share of samples that a shape classifier trained on the clips'
labels assigns to the class they were asked for (`magvit.workflows.shape_classifier`: the
bundled one when it was trained on clips drawn like the model's, or `shape_classifier=PATH`).

The generated tokens are fitted to the given pixels (`Pipeline`'s condition fit, `refine_steps`;
0 = off) before they are decoded: that is part of generation, and it reads the padded condition
video only. FP (and any task with a class-conditional twin) runs by the pipeline's class search
(`class_search` candidates per class of its twin CFP, keeping the one that best redraws the given
frame; 0 = off): also part of generation, also reading the condition video only. With
`sample_search` N > 1, every other task with given pixels keeps the best of N samples by the
same reading of its given pixels. CG runs with
the pipeline's classifier-free guidance toward its class (`class_guidance`; 0 = off).
`paste_condition` pastes the condition pixels back into the videos and the contact sheet
(`Result.pasted`); the scores are always of the model's own, unpasted output.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import torch
from tqdm import tqdm

from magvit.core.bitmap_font import label as text_label
from magvit.core.files import make_parents, remove_if_empty
from magvit.core.metrics import masked_psnr, ssim
from magvit.core.montage import comparison_video, even_size, frame_strip, hstack, vstack
from magvit.core.video_io import write_image, write_video
from magvit.errors import MagvitError
from magvit.registry.schema import describe
from magvit.workflows.eval_clips import held_out_clips, input_clips
from magvit.workflows.pipeline import Pipeline
from magvit.workflows.shape_classifier import cg_accuracy, classifier_for

# Below this standard deviation over a whole clip, an output is "a solid colour".
SOLID_STD = 0.02


@attrs.frozen
class TaskRow:
    task: str
    psnr: float | None  # over the pixels the task generates (~pixel_mask)
    ssim: float | None
    baseline_psnr: float | None
    baseline_ssim: float | None
    seconds: float
    min_std: float  # the smallest per-clip standard deviation of the generated clips
    condition_psnr: float | None = None  # over the given condition pixels (pixel_mask)
    roundtrip_psnr: float | None = None  # the tokenizer's round trip of the truth, ~pixel_mask
    roundtrip_condition_psnr: float | None = None  # the same, over pixel_mask
    class_accuracy: float | None = None  # CG: samples the shape classifier puts in their class
    roundtrip_class_accuracy: float | None = None  # CG's ceiling: the same on the held-out clips' round trip
    class_match: float | None = None  # class search, held-out clips: kept candidates of the clip's own class
    # PSNR over each frame's generated pixels (None where a frame has none): where a prediction
    # stops following the truth; the same for the baseline and the round trip (the ceiling).
    psnr_per_frame: list[float | None] | None = None
    baseline_psnr_per_frame: list[float | None] | None = None
    roundtrip_psnr_per_frame: list[float | None] | None = None
    batch_size: int = 0  # clips generated at once (`Result.batch_size`): the seed's draws depend on it

    @property
    def solid(self) -> bool:
        return self.min_std < SOLID_STD


@attrs.frozen
class DemoReport:
    rows: list[TaskRow]
    out_dir: Path
    clips: int
    seconds: float
    paste_condition: bool = False
    decoder: str = ""  # the decoder that generated, with its config
    refine_steps: int = 0  # the condition fit's steps (`Pipeline.refine_steps`)
    class_search: int = 0  # candidates per class (`Pipeline.class_search`)
    class_search_twins: dict[str, str] = attrs.Factory(dict)  # searched task -> its twin (`Pipeline.class_twin`)
    class_guidance: float = 0.0  # the guidance of class-only tasks (`Pipeline.class_guidance`)
    class_guided: list[str] = attrs.Factory(list)  # the tasks generated with it (`Pipeline.guided_decoder`)
    read_classes: int = 0  # the class reader's classes the search tried (`Pipeline.read_classes`; 0: all)
    sample_search: int = 1  # samples per clip (`Pipeline.sample_search`; 1: no search)
    sample_searched: list[str] = attrs.Factory(list)  # the tasks that ran it (given pixels, no class search)

    def table(self) -> str:
        head = (f"{'task':<5} {'PSNR':>7} {'cond PSNR':>10} {'SSIM':>6}   {'baseline PSNR':>13} {'SSIM':>6}"
                f"   {'round trip: PSNR':>16} {'cond PSNR':>10}   {'seconds':>7}  output")
        lines = [head, "-" * len(head)]
        fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
        for r in self.rows:
            lines.append(
                f"{r.task:<5} {fmt(r.psnr, '7.2f'):>7} {fmt(r.condition_psnr, '10.2f'):>10} "
                f"{fmt(r.ssim, '6.3f'):>6}   {fmt(r.baseline_psnr, '13.2f'):>13} "
                f"{fmt(r.baseline_ssim, '6.3f'):>6}   {fmt(r.roundtrip_psnr, '16.2f'):>16} "
                f"{fmt(r.roundtrip_condition_psnr, '10.2f'):>10}   "
                f"{r.seconds:7.2f}  {'SOLID COLOUR' if r.solid else 'ok'}"
            )
        lines += [
            f"{self.clips} clip(s) per task, {self.seconds:.1f} s in all; every score is against the ground truth.",
            *(textwrap.wrap(f"Decoder {self.decoder}.", 100) if self.decoder else []),
            *((f"Generated tokens fitted to the given pixels for {self.refine_steps} step(s) before decoding",
               "(--refine-steps; the fit reads the condition video, never the ground truth).")
              if self.refine_steps else ("Tokens decoded as generated (no condition fit: --refine-steps 0).",)),
            *(line for task, twin in self.class_search_twins.items() for line in textwrap.wrap(
                f"{task}: the best of {self.class_search} {twin} sample(s) {self._tried()}, by how well they "
                f"redraw the given pixels (--class-search; 0 = off){self._match(task)}.", 100)),
            *(textwrap.wrap(f"{', '.join(self.sample_searched)}: the best of {self.sample_search} samples per "
                            "clip, by how well they redraw the given pixels (--sample-search; 1 = off).", 100)
              if self.sample_searched else ()),
            *(f"{task}: classifier-free guidance {self.class_guidance:g} toward its class (--class-guidance; 0 = off)."
              for task in self.class_guided),
            "PSNR: over the pixels the task generates; SSIM: over the clip.",
            "cond PSNR: over the condition pixels the task was given, to show whether the model keeps them.",
            "Baseline = the padded condition video (FP: last frame repeated; FI: linear blend).",
            "Round trip = the tokenizer's encode + decode of the ground truth: in practice the ceiling for PSNR",
            "and cond PSNR, since generated tokens are decoded by the same tokenizer.",
        ]
        lines += _frame_table([r for r in self.rows if _whole_frames(r)])
        cg = [r for r in self.rows if r.class_accuracy is not None]
        lines += [f"{r.task}: {r.class_accuracy:.1%} of the samples show their class's shape kind "
                  f"(shape classifier; {r.roundtrip_class_accuracy:.1%} of the held-out clips' round "
                  "trips)." for r in cg]
        if self.paste_condition:
            lines += ["--paste-condition: the condition pixels were pasted into the videos and the contact sheet;",
                      "the scores above are of the model's own (unpasted) output."]
        return "\n".join(lines)

    def _tried(self) -> str:
        """Which classes the search tried."""
        if not self.read_classes:
            return "per class"
        read = ("of the class" if self.read_classes == 1 else f"per class of the {self.read_classes} classes")
        return (f"{read} that the class reader reads from the given pixels (--read-classes "
                f"{self.read_classes}; 0 = every class)")

    def _match(self, task: str) -> str:
        row = next((r for r in self.rows if r.task == task), None)
        if row is None or row.class_match is None:
            return ""
        return f"; the kept sample has the clip's own class in {row.class_match:.1%} of the clips"

    def to_dict(self) -> dict:
        return {"clips": self.clips, "seconds": self.seconds, "paste_condition": self.paste_condition,
                "decoder": self.decoder, "refine_steps": self.refine_steps,
                "class_search": self.class_search, "class_search_twins": self.class_search_twins,
                "class_guidance": self.class_guidance, "class_guided": self.class_guided,
                "read_classes": self.read_classes, "sample_search": self.sample_search,
                "sample_searched": self.sample_searched,
                "tasks": [{**attrs.asdict(r), "solid": r.solid} for r in self.rows]}


LABEL_WIDTH = 40  # pixels of the task-name column of the contact sheet


def contact_sheet(rows: list[torch.Tensor], strip_width: int, pasted: bool = False) -> torch.Tensor:
    """Task rows under a header naming the three columns ("generated+pasted" when the
    condition pixels were pasted into the generated clips)."""
    names = ("condition", "generated+pasted" if pasted else "generated", "ground truth")
    header = hstack([text_label("", 16, LABEL_WIDTH)] + [text_label(name, 16, strip_width) for name in names],
                    gap=6)
    return vstack([header, *rows], gap=4)


def _scale_for(pipe: Pipeline) -> int:
    """Enlarge tiny clips so that the outputs are comfortable to look at (about 128 px)."""
    return max(1, 128 // max(pipe.clip_shape[1:]))


def run_demo(
    checkpoint: str | Path = "default",
    out_dir: str | Path = "magvit-demo",
    *,
    inputs: list[Path] | None = None,
    clips: int = 16,
    label: int = 0,
    seed: int = 0,
    device: str = "auto",
    precision: str | None = None,
    compile: bool = False,
    progress: bool = True,
    paste_condition: bool = False,
    shape_classifier: str | Path | None = None,
    decoder: str | None = None,
    refine_steps: int | None = None,
    class_search: int | None = None,
    class_guidance: float | None = None,
    read_classes: int | None = None,
    sample_search: int | None = None,
    **decoder_overrides: Any,
) -> DemoReport:
    """Run every task of the model on `clips` held-out clips (or on `inputs`) and write the
    outputs into `out_dir`. `paste_condition` pastes the condition pixels into the written
    videos and contact sheet only; the scores are of the model's own output either way.
    `shape_classifier`: a file that scores CG (default: the bundled one, if it fits the data).
    `decoder` and `decoder_overrides` replace the experiment's decoder or its config keys
    (`Pipeline.make_decoder`); `refine_steps` the condition fit's, `class_search` the class
    search's, `read_classes` the class reader's share in it, `sample_search` the samples per clip
    of the other tasks with given pixels and `class_guidance` the class-only tasks' guidance
    (`Pipeline`); the report records them."""
    start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MagvitError(f"demo output {out} is a file; give a folder")
    if clips < 1:
        raise MagvitError(f"clips must be at least 1, got {clips}")
    pipe = Pipeline.from_checkpoint(checkpoint, device=device, precision=precision, compile=compile,
                                    decoder=decoder, refine_steps=refine_steps, class_search=class_search,
                                    class_guidance=class_guidance, read_classes=read_classes,
                                    sample_search=sample_search, **decoder_overrides)
    outputs = [out / f"{name}.mp4" for name in pipe.task_names] + [out / n for n in OUTPUT_FILES]
    for given in inputs or []:
        if Path(given).resolve() in {o.resolve() for o in outputs}:
            raise MagvitError(f"{given} is also a demo output; writing it would destroy the input. "
                              "Choose another --output folder")
    if inputs:
        videos, labels = input_clips(pipe, inputs, label)
    else:
        videos, labels = held_out_clips(pipe, clips, seed)
    classifier = _classifier(pipe, shape_classifier) if not inputs else None
    created = make_parents(out / "results.json")  # removed again if nothing gets written
    try:
        return _run_tasks(pipe, videos, labels, out, seed, progress, start, paste_condition, classifier,
                          labelled=not inputs)
    except BaseException:
        remove_if_empty(created)
        raise


OUTPUT_FILES = ("contact_sheet.png", "results.json", "results.txt")


def _classifier(pipe: Pipeline, path: str | Path | None):
    data = pipe.bundle.experiment.data
    return classifier_for(data.build() if data is not None else None, path)


def _run_tasks(pipe, videos, labels, out: Path, seed: int, progress: bool, start: float,
               paste_condition: bool, classifier=None, labelled: bool = False) -> DemoReport:
    """`labelled`: `labels` are the clips' own classes (held-out clips), not the user's."""
    scale = _scale_for(pipe)
    truth = videos.cpu()
    roundtrip = pipe.roundtrip(videos).cpu()  # the ceiling, the same for every task

    rows, sheet_rows, guided, searched = [], [], [], []
    for task_name in tqdm(pipe.task_names, desc="demo", unit="task", disable=not progress):
        task = pipe.task(task_name)
        task_labels = labels if task.needs_class else None
        tick = time.perf_counter()
        if task.has_condition:
            result = pipe.generate(task_name, videos, label=task_labels, seed=seed)
        else:  # CG: one sample per held-out clip's class
            result = pipe.generate(task_name, None, label=labels.tolist(), seed=seed)
        seconds = time.perf_counter() - tick
        if result.guidance_scale != getattr(pipe.decoder, "guidance_scale", 0):
            guided.append(task_name)
        if result.sample_search > 1:
            searched.append(task_name)

        generated = result.video.cpu()  # scored as the model made it, pasted or not
        condition = result.condition.cpu()
        scores = _scores(generated, condition, roundtrip, truth, result.pixel_mask, task.has_condition)
        if classifier is not None and not task.has_condition and task.needs_class:
            scores["class_accuracy"] = cg_accuracy(classifier, generated, labels.cpu())
            scores["roundtrip_class_accuracy"] = cg_accuracy(classifier, roundtrip, labels.cpu())
        if labelled and result.classes is not None:
            scores["class_match"] = float((result.classes.cpu() == labels.cpu()).float().mean())
        rows.append(TaskRow(task=task_name, seconds=seconds, batch_size=result.batch_size,
                            min_std=float(generated.flatten(1).std(dim=1).min()), **scores))
        shown = result.pasted().video.cpu() if paste_condition else generated
        grid = comparison_video([condition, shown, truth], scale=scale, gap=2)
        write_video(out / f"{task_name}.mp4", even_size(grid), fps=4, pixel_format="yuv420p")
        strips = [frame_strip(c[0], scale=max(1, scale // 2)) for c in (condition, shown, truth)]
        sheet_rows.append(hstack([text_label(task_name, strips[0].shape[1], LABEL_WIDTH), *strips], gap=6))

    write_image(out / "contact_sheet.png", contact_sheet(sheet_rows, strips[0].shape[2], paste_condition))
    twins = {name: twin for name in pipe.task_names if pipe.class_search and (twin := pipe.class_twin(name))}
    report = DemoReport(rows, out, videos.shape[0], time.perf_counter() - start, paste_condition,
                        describe(pipe.decoder), pipe.refine_steps, class_search=pipe.class_search,
                        class_search_twins=twins, class_guidance=pipe.class_guidance, class_guided=guided,
                        read_classes=pipe.read_classes if twins else 0, sample_search=pipe.sample_search,
                        sample_searched=searched)
    (out / "results.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "results.txt").write_text(report.table() + "\n")
    return report


def _scores(generated, condition, roundtrip, truth, given: torch.Tensor, scored: bool) -> dict:
    """A task's scores against the ground truth (all None for a task without a condition):
    PSNR over the pixels it generates (`~given`) and over the condition pixels (`given`) of its
    clips, of the padded condition video and of the tokenizer's round trip; SSIM over the clip."""
    if not scored:
        return dict.fromkeys(("psnr", "ssim", "baseline_psnr", "baseline_ssim", "condition_psnr",
                              "roundtrip_psnr", "roundtrip_condition_psnr"))
    return {
        "psnr_per_frame": _frame_psnrs(generated, truth, ~given),
        "baseline_psnr_per_frame": _frame_psnrs(condition, truth, ~given),
        "roundtrip_psnr_per_frame": _frame_psnrs(roundtrip, truth, ~given),
        "psnr": _mean_psnr(generated, truth, ~given),
        "ssim": float(ssim(generated, truth).mean()),
        "baseline_psnr": _mean_psnr(condition, truth, ~given),
        "baseline_ssim": float(ssim(condition, truth).mean()),
        "condition_psnr": _mean_psnr(generated, truth, given),
        "roundtrip_psnr": _mean_psnr(roundtrip, truth, ~given),
        "roundtrip_condition_psnr": _mean_psnr(roundtrip, truth, given),
    }


def _mean_psnr(video: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float | None:
    """The mean over the clips of `masked_psnr`; None when `mask` selects no pixel."""
    return float(masked_psnr(video, truth, mask).mean()) if bool(mask.any()) else None


def _frame_psnrs(video: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> list[float | None]:
    """`_mean_psnr` over `mask`'s pixels of each frame in turn, None for a frame it leaves out."""
    frames = torch.eye(mask.shape[0], dtype=torch.bool, device=mask.device)  # (T, T): frame t alone
    return [_mean_psnr(video, truth, mask & only[:, None, None]) for only in frames]


def _frame_table(rows: list[TaskRow]) -> list[str]:
    """PSNR by frame of `rows` and of their baselines, a column a frame (blank: given whole)."""
    if not rows:
        return []
    cell = lambda v: f"{'':>6}" if v is None else f"{v:6.1f}"  # noqa: E731
    frames = len(rows[0].psnr_per_frame)
    lines = ["PSNR by frame over the generated pixels (blank: a frame given whole):",
             f"{'frame':<14}" + "".join(f"{t:>6}" for t in range(frames))]
    for r in rows:
        lines += [(f"{r.task:<14}" + "".join(map(cell, r.psnr_per_frame))).rstrip(),
                  (f"{'  baseline':<14}" + "".join(map(cell, r.baseline_psnr_per_frame))).rstrip()]
    return lines


def _whole_frames(row: TaskRow) -> bool:
    """A task that is given some frames whole (FP, FI, CFP): its PSNR by frame, the curve of a
    prediction, goes into the table."""
    return bool(row.psnr_per_frame) and None in row.psnr_per_frame
