"""`magvit bench`: how fast a model generates on this machine, and how close to the hardware.

For an experiment (random weights of its sizes: speed does not depend on the weights) or a
trained model, at batch 1: tokenizer encode of a condition clip, one transformer forward of the
whole sequence, the COMMIT decode (the experiment's steps, 12 by default) and tokenizer decode,
each the median of `repeats` runs after a warm-up, and the whole clip (`generate`). The
transformer's achieved GFLOP/s (its matmul FLOPs per forward, counted from the config) is
compared with a GEMM of its own largest shape measured in the same process and precision:
`transformer_gemm_fraction`. `tokenizer_share` is encode + decode over the whole clip (a task
without a condition, CG, encodes nothing). `fps` is generated frames per second at batch 1 and
`best_fps` at the best of `batches`; on CUDA, `bf16_peak_fraction` compares the transformer with
a large bf16 GEMM, the device's practical peak. `compare` alternates the chosen settings with the
fp32, uncompiled baseline and reports both, for ratios measured under the same machine load.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import attrs
import torch

from magvit.core.threads import usable_cores
from magvit.core.training.precision import inference_autocast, precision_dtype
from magvit.errors import MagvitError
from magvit.workflows.pipeline import Pipeline

CUDA_PEAK_GEMM = 8192  # a square bf16 GEMM this large runs near a GPU's tensor-core peak


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def transformer_flops(config: Any, length: int) -> float:
    """Matmul FLOPs of one forward of a BERT-style transformer on `length` tokens: the four
    attention projections and the two MLP layers per layer, the attention scores and their
    weighted sum, and the output head over the codebook."""
    h, mlp, layers = config.hidden, config.mlp, config.num_layers
    per_layer = 2 * length * (4 * h * h + 2 * h * mlp) + 2 * 2 * length * length * h
    head = 2 * length * (h * h + h * config.codebook_size)
    return float(layers * per_layer + head)


def gemm_gflops(m: int, k: int, n: int, device: torch.device, precision: str, repeats: int) -> float:
    """GFLOP/s of an (m x k) @ (k x n) matmul in `precision` on `device` (operands stored in
    that precision, so no cast is timed)."""
    dtype = precision_dtype(precision)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    with torch.inference_mode(), inference_autocast(device, precision):
        seconds = median_seconds(lambda: a @ b, device, repeats, warmup=2)
    return 2 * m * k * n / seconds / 1e9


def experiment_pipeline(name: str, device: torch.device, precision: str | None) -> Pipeline:
    """A pipeline with random weights of the sizes `name` (an experiment) trains."""
    from magvit.registry.experiment import load_experiment
    from magvit.workflows.bundle import Bundle, self_contained_tokenizer
    from magvit.workflows.stage2_layout import require_sections, stage2_layout

    exp = load_experiment(name)
    require_sections(exp, "data", "tokenizer", "transformer", "tasks")
    torch.manual_seed(0)
    tokenizer = self_contained_tokenizer(exp.tokenizer).build()
    tasks = {task: entry.task.build() for task, entry in exp.tasks.items()}
    layout = stage2_layout(exp, tokenizer, exp.data.config, tasks)
    transformer = layout.transformer.build()
    bundle = Bundle(transformer.to(device).eval(), tokenizer.to(device).eval(), layout.vocab,
                    layout.task_names, exp, {"clip_shape": list(layout.clip_shape), "path": str(exp.source)})
    return Pipeline(bundle, precision=precision)


def load_pipeline(model: str, device: str, precision: str | None) -> Pipeline:
    from magvit.core.training.distributed import resolve_device
    from magvit.registry.toml_files import find_experiment
    from magvit.weights import resolve_model_path

    dev = resolve_device(device)
    if model == "default" or Path(model).is_dir():
        return Pipeline.from_checkpoint(resolve_model_path(model), device=dev, precision=precision)
    try:
        find_experiment(model)
    except MagvitError:
        raise MagvitError(f"{model} is neither a model folder nor an experiment; give a stage-2 run, "
                          "`default` or an experiment name (`magvit experiments list`)") from None
    return experiment_pipeline(model, dev, precision)


@attrs.frozen
class BenchResult:
    model: str
    device: str
    precision: str
    compiled: bool
    threads: int
    cores: int
    task: str
    clip: tuple[int, int, int]
    tokens: int
    steps: int
    encode_s: float
    transformer_step_s: float
    transformer_clip_s: float
    decode_s: float
    clip_s: float
    transformer_gflops: float
    gemm_gflops: float
    peak_memory_bytes: int
    batch_clips_per_s: dict[int, float] = attrs.field(factory=dict)  # throughput by batch size
    bf16_peak_gflops: float | None = None  # CUDA: a large bf16 GEMM, the device's practical peak

    @property
    def best_batch(self) -> int:
        return max(self.batch_clips_per_s, key=self.batch_clips_per_s.get) if self.batch_clips_per_s else 1

    @property
    def tokenizer_share(self) -> float:
        """Encode (of the condition; none for CG) + decode over the whole clip."""
        return min(1.0, (self.encode_s + self.decode_s) / self.clip_s)

    @property
    def transformer_gemm_fraction(self) -> float:
        return self.transformer_gflops / self.gemm_gflops

    @property
    def fps(self) -> float:
        """Generated frames per second at batch 1 (the paper's unit: 37 fps for B on a V100)."""
        return self.clip[0] / self.clip_s

    @property
    def best_fps(self) -> float:
        """Frames per second at the best measured batch size (batch 1 when none was measured)."""
        return self.clip[0] * self.batch_clips_per_s[self.best_batch] if self.batch_clips_per_s else self.fps

    @property
    def bf16_peak_fraction(self) -> float | None:
        """The transformer's achieved GFLOP/s over the device's bf16 peak (CUDA only)."""
        return self.transformer_gflops / self.bf16_peak_gflops if self.bf16_peak_gflops else None

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "clip": list(self.clip), "clips_per_s": 1 / self.clip_s,
                "best_batch": self.best_batch, "fps": self.fps, "best_fps": self.best_fps,
                "bf16_peak_fraction": self.bf16_peak_fraction,
                "tokenizer_share": self.tokenizer_share,
                "transformer_gemm_fraction": self.transformer_gemm_fraction}

    def table(self) -> str:
        rows = [
            ("tokenizer encode", f"{self.encode_s * 1e3:.1f} ms"),
            ("transformer forward", f"{self.transformer_step_s * 1e3:.1f} ms  ({self.transformer_gflops:.0f} "
                                    f"GFLOP/s = {100 * self.transformer_gemm_fraction:.0f}% of a "
                                    f"{self.gemm_gflops:.0f} GFLOP/s GEMM)"),
            (f"COMMIT-{self.steps} decode", f"{self.transformer_clip_s * 1e3:.1f} ms"),
            ("tokenizer decode", f"{self.decode_s * 1e3:.1f} ms"),
            ("whole clip", f"{self.clip_s * 1e3:.1f} ms = {1 / self.clip_s:.2f} clips/s "
                           f"(tokenizer {100 * self.tokenizer_share:.0f}%)"),
            ("frames/s", f"{self.fps:.1f} at batch 1, {self.best_fps:.1f} at batch {self.best_batch}"),
            *((("bf16 peak", f"{self.bf16_peak_gflops:.0f} GFLOP/s; the transformer reaches "
                             f"{100 * self.bf16_peak_fraction:.0f}%"),) if self.bf16_peak_gflops else ()),
            ("peak memory", f"{self.peak_memory_bytes / 2**20:.0f} MiB"),
            *((f"batch {b}", f"{v:.2f} clips/s") for b, v in self.batch_clips_per_s.items()),
        ]
        head = (f"{self.model}: {'x'.join(map(str, self.clip))} clip, {self.tokens} tokens, task {self.task}, "
                f"{self.device} {self.precision}{' compiled' if self.compiled else ''}, "
                f"{self.threads} thread(s) on {self.cores} core(s), batch 1")
        return "\n".join([head, *(f"  {name:<22}{value}" for name, value in rows)])


def bench(model: str = "default", *, device: str = "auto", precision: str | None = None,
          compile: bool = False, repeats: int = 5, batches: tuple[int, ...] = ()) -> BenchResult:
    """Time one clip of `model` in the given settings; with `batches`, also the throughput of
    `generate` at each batch size (a size that does not fit in memory ends the list)."""
    pipe = prepare(model, device, precision, compile)
    result = measure(pipe, model, repeats)
    return attrs.evolve(result, batch_clips_per_s=throughput(pipe, batches, repeats)) if batches else result


def throughput(pipe: Pipeline, batches: tuple[int, ...], repeats: int) -> dict[int, float]:
    task = next((t for t in pipe.task_names if pipe.task(t).has_condition), pipe.task_names[0])
    has_condition, needs_class = pipe.task(task).has_condition, pipe.task(task).needs_class
    rates = {}
    for size in batches:
        clips = torch.rand(size, 3, *pipe.clip_shape, generator=torch.Generator().manual_seed(0)).to(pipe.device)
        labels = [0] * size if needs_class or not has_condition else None
        def run(clips=clips, labels=labels, size=size):
            pipe.generate(task, clips if has_condition else None, label=labels, seed=0, batch_size=size)

        try:
            seconds = median_seconds(run, pipe.device, repeats)
        except torch.OutOfMemoryError:
            break
        rates[size] = size / seconds
    return rates


def compare(model: str = "default", *, device: str = "auto", precision: str | None = None,
            compile: bool = False, repeats: int = 3, rounds: int = 2) -> tuple[BenchResult, BenchResult]:
    """The given settings and the fp32, uncompiled baseline, measured in alternation (`rounds`
    times each, the faster round kept), so a machine whose load changes affects both alike."""
    fast = prepare(model, device, precision, compile)
    base = prepare(model, device, "fp32", False)
    runs: dict[str, list[BenchResult]] = {"fast": [], "base": []}
    for _ in range(rounds):
        runs["base"].append(measure(base, model, repeats))
        runs["fast"].append(measure(fast, model, repeats))
    best = lambda results: min(results, key=lambda r: r.clip_s)  # noqa: E731
    return best(runs["fast"]), best(runs["base"])


def prepare(model: str, device: str, precision: str | None, compile: bool) -> Pipeline:
    pipe = load_pipeline(model, device, precision)
    if compile:
        pipe.compiled = True
        pipe._compile()
    return pipe


def measure(pipe: Pipeline, model: str, repeats: int) -> BenchResult:
    dev = pipe.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    frames, height, width = pipe.clip_shape
    conditional = [t for t in pipe.task_names if pipe.task(t).has_condition]
    task = conditional[0] if conditional else pipe.task_names[0]
    has_condition, needs_class = pipe.task(task).has_condition, pipe.task(task).needs_class
    clip = torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(0)).to(dev)
    config = pipe.bundle.transformer.config
    length = config.num_positions
    with torch.inference_mode(), inference_autocast(dev, pipe.precision):
        tokens = pipe.tokenizer.encode(clip)
        encode_s = median_seconds(lambda: pipe.tokenizer.encode(clip), dev, repeats) if has_condition else 0.0
        decode_s = median_seconds(lambda: pipe.tokenizer.decode(tokens), dev, repeats)
        ids = torch.randint(0, pipe.vocab.codebook_size, (1, length), device=dev)
        step_s = median_seconds(lambda: pipe.transformer(ids), dev, repeats, warmup=2)
    transformer_seconds = []

    def run():
        result = pipe.generate(task, clip if has_condition else None, label=0 if needs_class else None, seed=0)
        transformer_seconds.append(result.seconds["transformer"])

    clip_s = median_seconds(run, dev, repeats)
    transformer_clip_s = statistics.median(transformer_seconds[-repeats:])  # the timed runs
    gemm = gemm_gflops(length, config.hidden, config.mlp, dev, pipe.precision, repeats)
    peak_bf16 = gemm_gflops(CUDA_PEAK_GEMM, CUDA_PEAK_GEMM, CUDA_PEAK_GEMM, dev, "bf16", repeats) if dev.type == "cuda" else None
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return BenchResult(
        model=model, device=str(dev), precision=pipe.precision, compiled=getattr(pipe, "compiled", False),
        threads=torch.get_num_threads(), cores=usable_cores(), task=task, clip=(frames, height, width),
        tokens=math.prod(tokens.shape[1:]), steps=int(getattr(pipe.decoder, "steps", 0)),
        encode_s=encode_s, transformer_step_s=step_s, transformer_clip_s=transformer_clip_s,
        decode_s=decode_s, clip_s=clip_s, transformer_gflops=transformer_flops(config, length) / step_s / 1e9,
        gemm_gflops=gemm, peak_memory_bytes=int(peak), bf16_peak_gflops=peak_bf16,
    )
