"""`magvit generate --checkpoint C --task fp --input clip.mp4 --output out.mp4`.

Loads a stage-2 bundle, generates for one task and writes the result as a video. The decoder is
the experiment's unless `--decoder` names another; `--steps`, `--schedule`, `--temperature`,
`--top-k`, `--guidance-scale` and `--no-kv-cache` override its config. `--ultrawide N` widens
a vertical strip by N vertical outpaintings on each side (paper Fig. 17). `--paste-condition`
pastes the given condition pixels back into the written result (`Result.pasted`). FP (a task
with a class-conditional twin) runs by the pipeline's class search unless `--class-search 0`; CG
(a class, no pixels) gets classifier-free guidance toward its class unless `--class-guidance 0`.
`--sample-search N` keeps, for any other task with given pixels, the best of N samples per clip.
"""

from __future__ import annotations

from pathlib import Path

import torch

from magvit.cli.arguments import (
    add_decoder_options,
    batch_size,
    decoder_overrides,
    device,
    input_video,
    integer,
    number,
    output_video,
    refuse_overwriting,
)
from magvit.errors import MagvitError
from magvit.registry.schema import describe


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate videos with a trained transformer checkpoint")
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint of `train transformer`")
    p.add_argument("--task", required=True, help="task name (fp, fi, opc, ..., cg, cfp)")
    p.add_argument("--input", type=input_video, help="condition video (not needed for cg)")
    p.add_argument("--class", dest="label", type=integer(-1),
                   help="class label for cg / cfp (-1: no class, the unconditional class)")
    p.add_argument("--output", type=output_video, required=True,
                   help=".mp4, .mov, .m4v or .gif; several samples get -1, -2, ...")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the generation (default 0; the draws also depend on --batch-size)")
    p.add_argument("--samples", type=integer(1), default=1, help="results per input")
    p.add_argument("--batch-size", type=batch_size, default="auto",
                   help="clips generated at once (default auto: as many as fit in free memory, "
                        "at most 8 on a CPU)")
    p.add_argument("--side-by-side", action="store_true", help="write condition | result")
    p.add_argument("--paste-condition", action="store_true",
                   help="paste the given condition pixels back into the result (the model may "
                        "refine them; this keeps them exactly)")
    p.add_argument("--ultrawide", type=integer(1), metavar="N",
                   help="outpaint a vertical strip N times on each side (task opv)")
    p.add_argument("--fps", type=number(0, above=True), default=8.0,
                   help="frame rate of the written video (default 8)")
    p.add_argument("--pixel-format", choices=("yuv420p", "yuv444p"), default="yuv420p",
                   help="H.264 chroma: yuv420p plays everywhere (default), yuv444p keeps full colour")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer and tokenizer (static shapes; CUDA graphs on CUDA)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="generation precision (default auto: bf16 on CUDA and on CPUs with bf16 "
                        "instructions, else fp32; or MAGVIT_PRECISION)")
    add_decoder_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.core.video_io import write_video
    from magvit.pipeline import Pipeline

    outputs = _output_paths(args.output, _count(args))
    refuse_overwriting(outputs, [args.input])
    if args.paste_condition and args.ultrawide is not None:
        raise MagvitError("--paste-condition does not apply to --ultrawide, which keeps the input "
                          "strip's pixels already; drop --paste-condition")
    overrides = decoder_overrides(args)
    pipe = Pipeline.from_checkpoint(args.checkpoint, device=args.device, decoder=args.decoder,
                                    precision=args.precision, compile=args.compile,
                                    refine_steps=args.refine_steps, class_search=args.class_search,
                                    class_guidance=args.class_guidance, read_classes=args.read_classes,
                                    sample_search=args.sample_search,
                                    **overrides)
    task = pipe.task(args.task)  # an unknown task fails before any video is read
    twin = pipe.class_twin(args.task) if pipe.class_search else None
    tried = (f"per class, of the class reader's {pipe.read_classes} likeliest class(es)" if pipe.read_classes
             else "a class")
    search = f"; class search: the best of {pipe.class_search} {twin} sample(s) {tried}" if twin else ""
    if pipe.samples_searched(args.task) > 1:
        search = f"; sample search: the best of {pipe.sample_search} samples per clip"
    guided = pipe.guided_decoder(args.task, pipe.decoder, label=args.label)
    guidance = f"; class guidance {guided.guidance_scale:g}" if guided is not pipe.decoder else ""
    print(f"decoder {describe(pipe.decoder)}; condition fit {pipe.refine_steps} step(s){search}{guidance}")
    if args.paste_condition and not task.has_condition:
        raise MagvitError(f"task {args.task!r} has no condition video, so there are no pixels to "
                          "paste; drop --paste-condition")
    if args.ultrawide is not None:
        videos = [_ultrawide(pipe, args)]
    else:
        result = pipe.generate(args.task, args.input, label=args.label, seed=args.seed,
                               samples=args.samples, batch_size=args.batch_size, progress=True)
        if args.paste_condition:
            result = result.pasted()
            print("pasted the condition pixels into the output (--paste-condition): the given "
                  "pixels are the input's, the rest the model's")
        videos = list(result.side_by_side() if args.side_by_side else result.video)
        print(f"tokenizer {result.seconds['tokenizer']:.2f} s, "
              f"transformer {result.seconds['transformer']:.2f} s; batch size {result.batch_size} "
              f"(the seed's draws depend on it: --batch-size {result.batch_size} repeats them)")
    for path, video in zip(_output_paths(args.output, len(videos)), videos):
        write_video(path, video.cpu(), fps=args.fps, pixel_format=_pixel_format(args, path, video))
        print(f"wrote {path}")
    return 0


def _count(args) -> int:
    """How many videos the command writes (known before the model runs)."""
    return 1 if args.ultrawide is not None else args.samples


def _pixel_format(args, path: Path, video: torch.Tensor) -> str:
    if args.pixel_format == "yuv420p" and path.suffix.lower() != ".gif" and any(n % 2 for n in video.shape[-2:]):
        print(f"note: {path}: odd frame size {video.shape[-2]}x{video.shape[-1]}, written as yuv444p")
        return "yuv444p"
    return args.pixel_format


def _output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


def _ultrawide(pipe, args) -> torch.Tensor:
    from magvit.core.video_io import read_video
    from magvit.pipeline import outpaint_ultrawide

    if args.input is None:
        raise MagvitError("--ultrawide needs --input, a video of the vertical strip to widen")
    frames, height, _ = pipe.clip_shape
    strip = read_video(args.input, frames=frames)
    if strip.shape[1] < frames:
        raise MagvitError(f"{args.input} has {strip.shape[1]} frames; the model needs {frames}")
    if strip.shape[2] != height:  # scale to the model's height, keeping the aspect ratio
        width = max(1, round(strip.shape[3] * height / strip.shape[2]))
        strip = torch.nn.functional.interpolate(strip, size=(height, width), mode="bilinear",
                                                antialias=True, align_corners=False).clamp(0, 1)
    return outpaint_ultrawide(pipe, strip, args.ultrawide, task=args.task, seed=args.seed,
                              label=args.label, progress=True)
