"""Generation from a trained stage-2 bundle: load it once, then generate for any task.

    pipe = Pipeline.from_checkpoint("runs/ucf-mt")
    result = pipe.generate("fp", "clip.mp4", seed=0)        # or a (3, T, H, W) / (B, ...) tensor
    result.video                                            # (B, 3, T, H, W) in [0, 1]
    result.pasted().video                                   # the given pixels pasted back in
    pipe.roundtrip("clip.mp4")                              # the tokenizer's own round trip

Per batch: the task pads the condition video, the tokenizer turns it into condition tokens z̃,
the decoder generates the latent tokens from the transformer's logits (prefix `[prompt,
class]`), the tokens are fitted to the given pixels (`refine_steps` Adam steps through the
tokenizer's decoder, `magvit.core.condition_fit`; 0 = off), and the tokenizer decodes them back
to pixels. Only that fit takes gradients (of the code vectors, not of any weight), and one seed
reproduces the whole call. `precision` ("auto": bf16 on CUDA and on CPUs with bf16
instructions, else fp32; or MAGVIT_PRECISION) runs the networks under autocast, the transformer
from a copy of its weights in that precision; quantizer distances, the decoders' softmax,
Gumbel noise and schedule stay in fp32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from magvit.api import latent_mask_for
from magvit.core import condition_fit
from magvit.core.class_reader import likely_classes
from magvit.core.condition_search import best_candidates, given_pixel_error
from magvit.core.decoding.model_logits import GuidedPair, PrefixedLogits
from magvit.core.tokens import build_sequence
from magvit.core.training.precision import (
    inference_autocast,
    resolve_inference_precision,
    weights_in_precision,
)
from magvit.core.video_io import pixels_in_unit_range, read_video
from magvit.errors import MagvitError
from magvit.registry import registries
from magvit.workflows.generation_batch import ClipMemory, auto_batch_size, clip_memory
from magvit.workflows.generation_inputs import (
    class_labels,
    non_negative_number,
    seed_number,
    whole_number,
)
from magvit.workflows.generation_result import Result

Labels = int | Sequence[int] | torch.Tensor | None
BatchSize = int | str  # a number of clips, or "auto"
_UNMEASURED = object()  # clip_memory() not measured yet (None means it cannot be)
# `Pipeline`'s default class search over every class (a model without a class reader, or
# read_classes=0): candidates per class for a task with a class-conditional twin. With 2 (8
# candidates) the bundled default's FP gains +3.28 dB (bf16) and +3.51 (fp32) over its baseline
# on the demo's 64 clips, +2.32 without; about +3.15 on 96 other held-out clips, where 1 gave +2.4
# to +2.9 and 3 nothing more (magvit/weights/README.md).
CLASS_SEARCH = 2
# `Pipeline`'s default classifier-free guidance for a task given a class and no pixels (CG). On
# the bundled default's 64 CG samples (two seeds) the shape classifier finds the class's kind in
# 52% and 41% without it, 83% and 81% at 3, 95% at 8, where the shapes grow and saturate; the
# same guidance on the tasks with given pixels costs up to 1.2 dB, so they run without it.
CLASS_GUIDANCE = 3.0
# `Pipeline`'s defaults for a bundle with a class reader: the class search tries only the class the
# reader finds most likely in the given pixels, READ_SEARCH samples of it. The bundled default's
# reader is right on all 64 demo clips, and FP gained +4.34 dB with 2 samples and +4.68 with 4 (96
# other held-out clips: +4.12, +4.18, +4.44 with 1, 2, 4), against +3.28 by the search over every
# class; its two likeliest classes, 1 or 2 samples each, give +3.45 and +3.48, as the given pixels'
# error picks the wrong one of two classes in 30-42% of the clips (measured before the transformer's
# CPU fine-tune, which took the 4-sample gain to +4.84; magvit/weights/README.md).
READ_CLASSES = 1
READ_SEARCH = 4
# `Pipeline`'s default sample search: samples per clip for a task with given pixels that runs no
# class search, keeping the one that best redraws the given pixels (1: one sample, no search). Off
# by default because each sample costs a full decode: the demo's 2 minutes on 2 CPU cores hold one
# (magvit/weights/README.md, "The sample search", gives the gains against the time).
SAMPLE_SEARCH = 1


class Pipeline:
    def __init__(self, bundle: Any, decoder: Any = None, *, precision: str | None = None,
                 compile: bool = False, refine_steps: int | None = None, class_search: int | None = None,
                 class_guidance: float | None = None, read_classes: int | None = None,
                 sample_search: int | None = None, **overrides: Any):
        """`bundle`: what `magvit.workflows.bundle.load_bundle` returns (transformer,
        tokenizer, vocab, task_names, experiment, meta); `decoder` and `overrides`: see
        `make_decoder`; `precision`: "auto" (default), "fp32", "bf16" or "fp16"; `compile`:
        `torch.compile` the transformer and the tokenizer's encoder and decoder with static
        shapes (the decode loop repeats one shape), capturing CUDA graphs on CUDA;
        `refine_steps`: the condition fit's steps for tasks with given pixels (None:
        `condition_fit.STEPS` where the tokenizer has the latent path for it, else 0);
        `class_search`: candidates per class for a task with a class-conditional twin
        (`class_twin`; None: `READ_SEARCH` where the class reader picks the class, else
        `CLASS_SEARCH` for a model with classes, else 0; 0 = off);
        `class_guidance`: the classifier-free guidance scale for a task given a class and no
        pixels (CG), where the decoder has `guidance_scale` and was given none (None:
        `CLASS_GUIDANCE` for a model with classes, else 0; 0 = off); `read_classes`: the class
        search tries only that many of the classes the bundle's class reader finds most likely
        in the given pixels (`magvit.core.class_reader`; None: `READ_CLASSES` for a bundle with
        a reader, else 0; 0 = every class, the reader unused); `sample_search`: samples per clip
        for a task with given pixels that runs no class search, keeping the one that best redraws
        the given pixels (None: `SAMPLE_SEARCH`; 1 = one sample, no search)."""
        self.bundle = bundle
        self.class_reader = getattr(bundle, "class_reader", None)  # test bundles may lack the field
        self.tokenizer = bundle.tokenizer.eval()
        self.vocab = bundle.vocab
        self.device = next(bundle.transformer.parameters()).device
        self.precision = resolve_inference_precision(self.device, precision)
        # the bundle keeps its fp32 weights (export, other pipelines); this runs a half copy
        self.transformer = weights_in_precision(bundle.transformer.eval(), self.precision)
        self.compiled = compile
        self._clip_memory: Any = _UNMEASURED
        if compile:
            self.clip_memory()  # measured on the eager modules, before they are wrapped
            self._compile()
        self.decoder = self.make_decoder(decoder, **overrides)
        self.refine_steps = self._refine_steps(refine_steps)
        self.read_classes = self._read_classes(read_classes)
        self.class_search = self._class_search(class_search)
        self.sample_search = self._sample_search(sample_search)
        self.class_guidance = self._class_guidance(class_guidance)
        self._twins: dict[str, str | None] = {}

    def _class_search(self, per_class: int | None) -> int:
        if per_class is None:
            if self.vocab.num_classes < 2:
                return 0
            return READ_SEARCH if self.read_classes else CLASS_SEARCH
        return whole_number(per_class, "class_search", 0, "candidates per class; 0 = off")

    @staticmethod
    def _sample_search(count: int | None) -> int:
        if count is None:
            return SAMPLE_SEARCH
        return whole_number(count, "sample_search", 1,
                            "samples per clip, the one that best redraws the given pixels kept; 1 = no search")

    def _read_classes(self, count: int | None) -> int:
        if count is None:
            return min(READ_CLASSES, self.vocab.num_classes) if self.class_reader is not None else 0
        whole_number(count, "read_classes", 0,
                     "the class reader's most likely classes the class search tries; 0 = every class")
        if count and self.class_reader is None:
            raise MagvitError(f"read_classes={count}: this model has no class reader (export one into it with "
                              "`magvit export ... --class-reader FILE`); use read_classes=0 (--read-classes 0)")
        if count > self.vocab.num_classes:
            raise MagvitError(f"read_classes={count}: the model has {self.vocab.num_classes} classes; "
                              f"give at most {self.vocab.num_classes} (0 = every class)")
        return count

    def _class_guidance(self, scale: float | None) -> float:
        if scale is None:
            return CLASS_GUIDANCE if self.vocab.num_classes > 1 else 0.0
        return non_negative_number(scale, "class_guidance",
                                   "the classifier-free guidance scale for class-only tasks such as cg; 0 = off")

    def guided_decoder(self, task: str, decoder: Any, scale: float | None = None, *,
                       label: Labels = None) -> Any:
        """`decoder` with the class guidance (`scale`, else the pipeline's) when task `task` is
        given a class and no pixels and `decoder` has a `guidance_scale` of 0; else `decoder`.
        `label`: the call's classes, if known; when every one is -1 (no class) there is no class
        to guide toward (both prefixes would give the same logits), so `decoder` is returned."""
        scale = self.class_guidance if scale is None else self._class_guidance(scale)
        task_obj = self.task(task)
        unconditional = label is not None and bool((class_labels(label, self.vocab.num_classes) == -1).all())
        if (not scale or unconditional or not task_obj.needs_class or task_obj.has_condition
                or getattr(decoder, "guidance_scale", None) != 0 or not attrs.has(type(decoder))):
            return decoder
        return attrs.evolve(decoder, guidance_scale=scale)

    def _refine_steps(self, steps: int | None) -> int:
        if steps is None:
            return condition_fit.STEPS if condition_fit.can_fit(self.tokenizer) else 0
        whole_number(steps, "refine_steps", 0, "0 = off")
        if steps and not condition_fit.can_fit(self.tokenizer):
            raise MagvitError(
                f"refine_steps={steps}: this model's tokenizer ({type(self.tokenizer).__name__}) has no latent "
                f"path to fit tokens through (decode_latent and a quantizer with lookup, nearest_codes and code_bounds); "
                f"use refine_steps=0 (--refine-steps 0)"
            )
        return steps

    def _compile(self) -> None:
        mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs
        self.transformer = torch.compile(self.transformer, dynamic=False, mode=mode)
        for part in ("encoder", "decoder"):
            module = getattr(self.tokenizer, part, None)
            if isinstance(module, torch.nn.Module):
                setattr(self.tokenizer, part, torch.compile(module, dynamic=False, mode=mode))

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto", decoder: Any = None,
                        precision: str | None = None, compile: bool = False, refine_steps: int | None = None,
                        class_search: int | None = None, class_guidance: float | None = None,
                        read_classes: int | None = None, sample_search: int | None = None,
                        **overrides: Any) -> Pipeline:
        from magvit.core.training.distributed import resolve_device
        from magvit.workflows.bundle import load_bundle

        return cls(load_bundle(path, device=resolve_device(device)), decoder, precision=precision,
                   compile=compile, refine_steps=refine_steps, class_search=class_search,
                   class_guidance=class_guidance, read_classes=read_classes, sample_search=sample_search,
                   **overrides)

    @classmethod
    def from_pretrained(cls, name: str | Path, *, device: str = "auto", decoder: Any = None,
                        revision: str | None = None, cache_dir: str | Path | None = None,
                        precision: str | None = None, **overrides: Any) -> Pipeline:
        """A model folder written by `magvit export` (or any checkpoint `from_checkpoint` takes),
        or a hub id (`owner/name`) downloaded with `huggingface_hub` into its cache."""
        from magvit.workflows.hub import pretrained_path

        path = pretrained_path(name, revision=revision, cache_dir=cache_dir)
        return cls.from_checkpoint(path, device=device, decoder=decoder, precision=precision, **overrides)

    # -- what the bundle says --------------------------------------------------------------
    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the clips the model was trained on."""
        return tuple(self.bundle.meta["clip_shape"])

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.bundle.task_names)

    def task(self, name: str):
        """The task as configured in the training experiment (or with defaults)."""
        if name not in self.task_names:
            raise MagvitError(
                f"this model was not trained for task {name!r}; its tasks are: "
                f"{', '.join(self.task_names)}"
            )
        entry = self.bundle.experiment.tasks.get(name)
        return entry.task.build() if entry is not None else registries().tasks.create(name)

    def class_twin(self, name: str) -> str | None:
        """The model's class-conditional task that is given exactly what task `name` is given
        (the same pixels, padded the same way: FP's twin is CFP), when `name` takes no class
        and has a condition and the model has at least two classes; else None. The class
        search runs a task as its twin."""
        if name not in self._twins:
            self._twins[name] = self._find_twin(name)
        return self._twins[name]

    def samples_searched(self, name: str, class_search: int | None = None,
                         sample_search: int | None = None) -> int:
        """How many samples per clip the sample search draws for task `name`: `sample_search`
        (None: the pipeline's) for a task with given pixels that runs no class search (under
        `class_search`, None: the pipeline's), else 1."""
        count = self.sample_search if sample_search is None else self._sample_search(sample_search)
        per_class = self.class_search if class_search is None else self._class_search(class_search)
        if (per_class and self.class_twin(name) is not None) or not self.task(name).has_condition:
            return 1
        return count

    def _find_twin(self, name: str) -> str | None:
        task = self.task(name)
        if task.needs_class or not task.has_condition or self.vocab.num_classes < 2:
            return None
        probe = torch.rand(1, 3, *self.clip_shape, generator=torch.Generator().manual_seed(0))
        padded, mask = task.condition(probe)
        for other in self.task_names:
            twin = self.task(other)
            if other == name or not (twin.needs_class and twin.has_condition):
                continue
            twin_padded, twin_mask = twin.condition(probe)
            if torch.equal(twin_mask, mask) and torch.equal(twin_padded, padded):
                return other
        return None

    def make_decoder(self, decoder: Any = None, **overrides: Any):
        """A decoder for this model: `decoder` is None (the experiment's `[decoder]`, else
        `commit`), a decoder name, or a built decoder. `overrides` replace config keys
        (`steps=8`); the codebook size and [MASK] id always come from the vocabulary."""
        if decoder is not None and not isinstance(decoder, str):
            if overrides:
                raise MagvitError("give config overrides with a decoder name, not a built decoder")
            return decoder
        section = self.bundle.experiment.decoder
        if section is not None and decoder in (None, section.kind):
            config = section.to_dict()
        else:
            config = {"kind": decoder or "commit"}
        config.update(overrides, codebook_size=self.vocab.codebook_size, mask_id=self.vocab.mask_id)
        return registries().decoders.create(config.pop("kind"), **config)

    # -- generation -----------------------------------------------------------------------
    def load_video(self, path: str | Path) -> torch.Tensor:
        """A `(3, T, H, W)` clip read from a file at the model's clip size."""
        frames, height, width = self.clip_shape
        if height != width:
            raise MagvitError(f"reading files needs a square clip size, this model's is {height}x{width}; "
                              "pass a tensor instead")
        video = read_video(path, frames=frames, resolution=height)
        if video.shape[1] < frames:
            raise MagvitError(f"{path} has {video.shape[1]} frames; the model needs {frames}")
        return video

    @torch.inference_mode()
    def generate(self, task: str, video: str | Path | torch.Tensor | None = None, *,
                 label: Labels = None, seed: int = 0, samples: int = 1, batch_size: BatchSize = "auto",
                 decoder: Any = None, refine_steps: int | None = None, class_search: int | None = None,
                 class_guidance: float | None = None, read_classes: int | None = None,
                 sample_search: int | None = None, progress: bool = False) -> Result:
        """Generate `samples` results per input clip (or per label, for a task without one).

        `video` is a file, a `(3, T, H, W)` clip or a `(B, 3, T, H, W)` batch at the model's
        clip size (a task without a condition, cg, reads only its batch size: one sample per
        clip, so one loop can run every task on the same clips); `label` one class for all or
        one per input; `decoder` overrides the pipeline's for this call (a name or a built
        decoder); `refine_steps` the pipeline's condition fit for this call (0 = off);
        `class_search` its candidates per class for a task with a class twin (`class_twin`; 0 =
        off; each clip then runs as classes x class_search candidates, or as read_classes x
        class_search with `read_classes`, the class reader's most likely classes for this call:
        0 = every class); `class_guidance` its
        guidance scale for a task given a class and no pixels (`guided_decoder`; 0 = off);
        `sample_search` its samples per clip for a task with given pixels that runs no class
        search, the one that best redraws the given pixels kept (1 = no search); `batch_size`
        clips run at once, or "auto": as many as fit in the device's free memory
        (`batch_size_for`). A seed gives the same result for the same batch size, which the
        result records (`Result.batch_size`): "auto" on a GPU follows the free memory, so pass
        the recorded number to repeat a call exactly.
        """
        task_obj = self.task(task)
        seed = seed_number(seed)
        whole_number(samples, "samples", 1, "results per input clip or label")
        refine = self.refine_steps if refine_steps is None else self._refine_steps(refine_steps)
        refine = refine if task_obj.has_condition else 0
        per_class = self.class_search if class_search is None else self._class_search(class_search)
        twin = self.class_twin(task) if per_class else None
        per_class = per_class if twin is not None else 0
        read = self.read_classes if read_classes is None else self._read_classes(read_classes)
        read = read if per_class else 0
        searched = self.samples_searched(task, per_class, sample_search)
        clips = self._clips(task, task_obj, video, label)
        labels = self._labels(task, task_obj, label, clips.shape[0])
        clips = clips.repeat_interleave(samples, dim=0)
        labels = None if labels is None else labels.repeat_interleave(samples, dim=0)
        decoder = self.decoder if decoder is None else self.make_decoder(decoder)
        decoder = self.guided_decoder(task, decoder, class_guidance, label=labels)
        generator = torch.Generator(self.device).manual_seed(seed)
        searching = twin is not None or searched > 1
        if not searching:
            batch_size = self.batch_size_for(batch_size, clips.shape[0], decoder, refine=bool(refine))
            parts = [
                self._generate_batch(task, task_obj, clips[s:s + batch_size],
                                     None if labels is None else labels[s:s + batch_size],
                                     decoder, generator, refine, progress)
                for s in range(0, clips.shape[0], batch_size)
            ]
            ran = batch_size
        else:
            def search(part: torch.Tensor, part_labels: torch.Tensor | None) -> Result:
                if twin is not None:
                    return self._search_batch(task, twin, part, decoder, generator, per_class, read, progress)
                return self._sample_batch(task, task_obj, part, part_labels, decoder, generator, searched, progress)

            candidates = (read or self.vocab.num_classes) * per_class if twin is not None else searched
            search_size = self._search_size(batch_size, clips.shape[0], candidates, decoder)
            parts = [search(clips[s:s + search_size], None if labels is None else labels[s:s + search_size])
                     for s in range(0, clips.shape[0], search_size)]
            ran = search_size  # in clips, each run as `candidates` rows
        seconds = {k: sum(p.seconds[k] for p in parts) for k in parts[0].seconds}
        classes = None if twin is None else torch.cat([p.classes for p in parts])
        result = Result(task, torch.cat([p.condition for p in parts]),
                        torch.cat([p.video for p in parts]), torch.cat([p.tokens for p in parts]),
                        parts[0].pixel_mask, seconds, 0 if searching else refine, per_class, classes)
        if searching and refine:  # the fit, on the kept candidates only, in batches of its own size
            fit_size = self.batch_size_for(batch_size, clips.shape[0], decoder, refine=True)
            result = self._fit_kept(result, fit_size, refine)
        return attrs.evolve(result, guidance_scale=float(getattr(decoder, "guidance_scale", 0) or 0),
                            read_classes=read, sample_search=searched, batch_size=ran)

    def _search_size(self, batch_size: BatchSize, clips: int, candidates: int, decoder: Any) -> int:
        """Clips per search batch: `batch_size`, or with "auto" as many clips as fit when each runs
        as `candidates` rows (sized in candidates, run in whole clips)."""
        if batch_size == "auto":
            rows = self.batch_size_for(batch_size, clips * candidates, decoder)
            batch_size = max(1, rows // candidates)
        return self.batch_size_for(batch_size, clips, decoder)

    def clip_memory(self) -> ClipMemory | None:
        """Bytes one more clip costs at each generation stage (measured once, on `meta`; None
        for models that cannot run there)."""
        if self._clip_memory is _UNMEASURED:
            self._clip_memory = clip_memory(self)
        return self._clip_memory

    def batch_size_for(self, batch_size: BatchSize, clips: int, decoder: Any = None, *,
                       refine: bool = False) -> int:
        """`batch_size` when it is a number, else the clips that fit in free memory at once
        (at most `clips`; on a CPU at most 8, see `magvit.workflows.generation_batch`);
        `refine`: the batch also runs the condition fit (the decoder with gradients)."""
        if batch_size == "auto":
            guided = bool(getattr(decoder or self.decoder, "guidance_scale", 0))
            return auto_batch_size(self.clip_memory, clips, self.device, guided=guided, refine=refine)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise MagvitError(f"batch_size must be a whole number of at least 1 or \"auto\", got {batch_size!r}")
        return batch_size

    @torch.inference_mode()
    def roundtrip(self, video: str | Path | torch.Tensor, *, batch_size: BatchSize = "auto") -> torch.Tensor:
        """The tokenizer's own round trip, `decode(encode(video))`, of a file, a `(3, T, H, W)`
        clip or a `(B, 3, T, H, W)` batch at the model's clip size: `(B, 3, T, H, W)` float32
        in [0, 1], in the pipeline's precision, `batch_size` clips at a time. Its PSNR against
        the clips is, in practice, the ceiling for what generation reaches through these tokens."""
        clips = self._video_batch(video)
        batch_size = self.batch_size_for(batch_size, clips.shape[0])
        parts = []
        for s in range(0, clips.shape[0], batch_size):
            with inference_autocast(self.device, self.precision):
                decoded = self.tokenizer.decode(self.tokenizer.encode(clips[s:s + batch_size]))
            parts.append(decoded.float().clamp(0, 1))
        return torch.cat(parts)

    def _clips(self, name: str, task, video, label) -> torch.Tensor:
        if video is None:
            if task.has_condition:
                raise MagvitError(f"task {name!r} needs a condition video; pass one (--input)")
            count = 1 if label is None else class_labels(label, self.vocab.num_classes).numel()  # a clip per label
            if count == 0:
                raise MagvitError(f"task {name!r} got no class labels; give at least one (--class N)")
            return torch.zeros(count, 3, *self.clip_shape, device=self.device)
        return self._video_batch(video)

    def _video_batch(self, video: str | Path | torch.Tensor) -> torch.Tensor:
        if isinstance(video, (str, Path)):
            video = self.load_video(video)
        video = pixels_in_unit_range(video, self.device)
        if video.dim() == 4:
            video = video.unsqueeze(0)
        if video.dim() != 5 or tuple(video.shape[1:]) != (3, *self.clip_shape) or video.shape[0] == 0:
            raise MagvitError(
                f"expected clips shaped (B, 3, {', '.join(map(str, self.clip_shape))}) (the "
                f"model's clip size, B at least 1), got {tuple(video.shape)}; read files with load_video"
            )
        return video

    def _labels(self, name: str, task, label: Labels, batch: int) -> torch.Tensor | None:
        if label is None:
            if task.needs_class:
                raise MagvitError(f"task {name!r} needs a class label; pass one (--class N)")
            return None
        if not task.needs_class:
            raise MagvitError(
                f"task {name!r} takes no class label (it was trained with the unconditional "
                f"class); drop the label, or use a class-conditional task such as cfp"
            )
        labels = class_labels(label, self.vocab.num_classes)
        if labels.numel() == 1:
            labels = labels.expand(batch)
        if labels.numel() != batch:
            raise MagvitError(f"got {labels.numel()} labels for {batch} input clips; give one or one each")
        return labels

    def _generate_batch(self, name, task, clips, labels, decoder, generator, refine, progress) -> Result:
        with inference_autocast(self.device, self.precision):
            return self._generate_batch_in_precision(name, task, clips, labels, decoder, generator, refine,
                                                     progress)

    def _generate_batch_in_precision(self, name, task, clips, labels, decoder, generator, refine,
                                     progress, repeats: int = 1) -> Result:
        """`repeats`: each clip runs as that many consecutive rows (one encode per clip)."""
        clock = _Clock(self.device)
        batch, (frames, height, width) = clips.shape[0] * repeats, self.clip_shape
        latent_shape = tuple(self.tokenizer.latent_shape(frames, height, width))
        padded, pixel_mask = task.condition(clips)
        if task.has_condition:
            cond_tokens = self.tokenizer.encode(padded).flatten(1).repeat_interleave(repeats, dim=0)
            latent_mask = latent_mask_for(task, self.tokenizer, latent_shape)
        else:
            cond_tokens = torch.zeros(batch, math.prod(latent_shape), dtype=torch.long, device=self.device)
            latent_mask = torch.zeros(latent_shape, dtype=torch.bool)
        padded = padded.repeat_interleave(repeats, dim=0)
        cond_mask = latent_mask.flatten().to(self.device).expand(batch, -1)
        encode_s = clock.lap()

        causal = getattr(decoder, "causal", False)
        prompt = name if self.vocab.task_names else None
        empty = cond_tokens[:, :0]
        prefix = build_sequence(self.vocab, empty, prompt, labels)
        logits_fn, uncond_fn = PrefixedLogits(self.transformer, prefix, causal), None
        if getattr(decoder, "guidance_scale", 0):
            uncond_prefix = build_sequence(self.vocab, empty, prompt, None)
            if causal:
                uncond_fn = PrefixedLogits(self.transformer, uncond_prefix, causal)
            else:  # both in one batched forward
                logits_fn = GuidedPair(self.transformer, prefix, uncond_prefix)
                uncond_fn = logits_fn.uncond
        tokens = decoder.decode(logits_fn, cond_tokens, cond_mask, generator=generator,
                                uncond_logits_fn=uncond_fn, progress=progress)
        transformer_s = clock.lap()

        tokens = tokens.view(batch, *latent_shape)
        if refine:  # the given pixels are those of `padded` where `pixel_mask` holds
            tokens, video = condition_fit.fit_to_condition(self.tokenizer, tokens, padded, pixel_mask, steps=refine)
        else:
            video = self.tokenizer.decode(tokens).float().clamp(0, 1)
        if not bool(torch.isfinite(video).all()):
            raise MagvitError("the tokenizer decoded NaN pixels; the checkpoint's tokenizer weights are broken")
        return Result(name, padded, video, tokens, pixel_mask.cpu(),
                      {"tokenizer": encode_s + clock.lap(), "transformer": transformer_s}, refine)

    def _search_batch(self, name, twin_name, clips, decoder, generator, per_class, read, progress) -> Result:
        """Task `name` on `clips` by the class search: its twin for every class (with `read`, for
        the class reader's `read` most likely classes of each clip), `per_class` candidates each,
        keeping per clip the candidate that best redraws the given pixels (the condition fit runs
        afterwards, on the kept ones only: `_fit_kept`)."""
        batch = clips.shape[0]
        if read:
            padded, pixel_mask = self.task(twin_name).condition(clips)
            classes = likely_classes(self.class_reader, padded, pixel_mask, read).to(self.device)   # (B, read)
        else:
            classes = torch.arange(self.vocab.num_classes, device=self.device).expand(batch, -1)  # (B, C)
        candidates = classes.shape[1] * per_class
        labels = classes.repeat_interleave(per_class, dim=1).flatten()      # (B * candidates,), clip-major
        with inference_autocast(self.device, self.precision):
            tried = self._generate_batch_in_precision(
                twin_name, self.task(twin_name), clips, labels, decoder, generator, 0, progress,
                repeats=candidates)
            clock = _Clock(self.device)
            rows = self._best_rows(tried, batch, candidates)
        seconds = dict(tried.seconds, tokenizer=tried.seconds["tokenizer"] + clock.lap())
        return Result(name, tried.condition[rows], tried.video[rows], tried.tokens[rows], tried.pixel_mask,
                      seconds, 0, per_class, labels[rows])

    def _sample_batch(self, name, task, clips, labels, decoder, generator, samples, progress) -> Result:
        """Task `name` on `clips` by the sample search: `samples` candidates per clip, keeping the
        one that best redraws the given pixels (the condition fit runs afterwards, on the kept ones
        only: `_fit_kept`)."""
        labels = None if labels is None else labels.repeat_interleave(samples)   # (B * samples,), clip-major
        with inference_autocast(self.device, self.precision):
            tried = self._generate_batch_in_precision(name, task, clips, labels, decoder, generator, 0,
                                                      progress, repeats=samples)
            clock = _Clock(self.device)
            rows = self._best_rows(tried, clips.shape[0], samples)
        seconds = dict(tried.seconds, tokenizer=tried.seconds["tokenizer"] + clock.lap())
        return Result(name, tried.condition[rows], tried.video[rows], tried.tokens[rows], tried.pixel_mask,
                      seconds)

    def _best_rows(self, tried: Result, clips: int, candidates: int) -> torch.Tensor:
        """`(clips,)` the row of `tried` (`clips` x `candidates` rows, clip-major) whose video
        best redraws its given pixels, for each clip."""
        errors = given_pixel_error(tried.video, tried.condition, tried.pixel_mask)   # (clips * candidates,)
        best = best_candidates(errors.view(clips, candidates)).to(self.device)       # (clips,)
        return torch.arange(clips, device=self.device) * candidates + best

    def _fit_kept(self, kept: Result, batch_size: int, refine: int) -> Result:
        """`kept` with its tokens fitted to its condition (`refine` steps), `batch_size` clips at once."""
        clock = _Clock(self.device)
        tokens, videos = [], []
        with inference_autocast(self.device, self.precision):
            for s in range(0, kept.tokens.shape[0], batch_size):
                fitted, video = condition_fit.fit_to_condition(
                    self.tokenizer, kept.tokens[s:s + batch_size], kept.condition[s:s + batch_size],
                    kept.pixel_mask, steps=refine)
                tokens.append(fitted)
                videos.append(video)
        seconds = dict(kept.seconds, tokenizer=kept.seconds["tokenizer"] + clock.lap())
        return attrs.evolve(kept, tokens=torch.cat(tokens), video=torch.cat(videos), seconds=seconds,
                            refine_steps=refine)


class _Clock:
    """Wall time between laps, waiting for the GPU so each lap holds its own work."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.last = self._now()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def lap(self) -> float:
        now = self._now()
        elapsed, self.last = now - self.last, now
        return elapsed
