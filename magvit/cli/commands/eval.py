"""`magvit eval CHECKPOINT [--tasks fp,fi] [--metrics psnr,ssim,fvd] ...`: a row per task."""

from __future__ import annotations

from pathlib import Path

from magvit.cli.arguments import device, integer, number, output_folder
from magvit.errors import MagvitError
from magvit.workflows.eval_protocols import PROTOCOLS

PROTOCOL_NAMES = {name: p.summary for name, p in PROTOCOLS.items()}


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise MagvitError(f"expected a comma-separated list, got {text!r}")
    return names


def register(sub) -> None:
    p = sub.add_parser("eval", help="generate for every task and score it (PSNR, SSIM, FVD); for a "
                                    "tokenizer run, its reconstructions")
    p.add_argument("checkpoint", help="a stage-2 run or checkpoint, an exported folder, `default`, a "
                                      "tokenizer (stage-1) run, or an experiment (its run folder)")
    p.add_argument("--data", type=Path, help="a folder of videos to evaluate on (default: the held-out "
                                             "clips of the model's own training data)")
    p.add_argument("--tasks", type=_names, help="comma-separated tasks (default: every task the model knows)")
    p.add_argument("--metrics", type=_names, default=["psnr", "ssim"],
                   help="psnr, ssim, lpips, fvd, is; class: the share of CG and CFP samples that the shape "
                        "classifier puts in their class; ce: the masked-token cross-entropy of a training "
                        "run's held-out evaluation (no generation)")
    p.add_argument("--protocol", choices=sorted(PROTOCOL_NAMES),
                   help="a paper protocol on the --data folder (samples, folds, resolution, real clips, "
                        "decoding): " + "; ".join(PROTOCOL_NAMES))
    p.add_argument("--samples", type=integer(1), help="clips per task and fold (default 16, or the protocol's)")
    p.add_argument("--folds", type=integer(1),
                   help="generations per task for FVD's mean ± std (default 1, or the protocol's 4)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds which clips are drawn, their generations and CE's masks (default 0)")
    p.add_argument("--batch-size", type=integer(1), default=8,
                   help="clips generated at once (default 8); CE scores in batches of the experiment's "
                        "train.batch_size, so that its masks are the training run's")
    p.add_argument("--i3d-weights", default="", help="the I3D file FVD needs (docs/evaluation.md)")
    p.add_argument("--c3d-weights", default="", help="the C3D file IS needs (docs/evaluation.md)")
    p.add_argument("--lpips-vgg", default="", help="torchvision VGG16 weights for LPIPS")
    p.add_argument("--lpips-heads", default="", help="the LPIPS linear heads (the lpips package's vgg.pth)")
    p.add_argument("--shape-classifier", type=Path, metavar="FILE",
                   help="the shape classifier that scores class (default: the bundled one when it fits the "
                        "model's data; make one with python -m magvit.workflows.shape_classifier)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="accept a weights file whose checksum is not known (results are marked)")
    p.add_argument("--output", type=output_folder, help="folder for eval.json (and the partial results "
                                                          "that --resume continues from)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted evaluation from the partial results in --output")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="generation precision (default auto: bf16 on CUDA and on CPUs with bf16 "
                        "instructions, else fp32; or MAGVIT_PRECISION)")
    p.add_argument("--refine-steps", type=integer(0), metavar="N",
                   help="steps that fit the generated tokens to the given pixels (default: the pipeline's "
                        "10, but 0 with --protocol, whose published numbers come without it)")
    p.add_argument("--class-search", type=integer(0), metavar="N",
                   help="candidates per class for FP and other tasks with a class-conditional twin, keeping "
                        "the one that best redraws the given pixels (default: the pipeline's 4 for a model with "
                        "a class reader, 2 for one with classes and none; 0 with --protocol)")
    p.add_argument("--read-classes", type=integer(0), metavar="K",
                   help="with --class-search, try only the K classes the model's class reader finds most likely in "
                        "the given pixels (default 1 for a model with a class reader; 0 = every class)")
    p.add_argument("--sample-search", type=integer(1), metavar="N",
                   help="tasks with given pixels that run no class search: N samples per clip, keeping the one "
                        "that best redraws the given pixels (default 1: one sample, no search)")
    p.add_argument("--class-guidance", type=number(0), metavar="S",
                   help="classifier-free guidance toward the class for CG (default: the pipeline's 3, but 0 "
                        "with --protocol)")
    p.set_defaults(func=run)


def run(args) -> int:
    from magvit.registry import registries
    from magvit.workflows.evaluate import METRICS, evaluate_tokenizer, write_report

    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        raise MagvitError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(METRICS)}")
    if args.data is not None and not args.data.is_dir():
        raise MagvitError(f"--data {args.data} is not a folder of videos")
    if args.resume and args.output is None:
        raise MagvitError("--resume continues from the partial results in --output; give --output")
    if args.shape_classifier is not None and not args.shape_classifier.is_file():
        raise MagvitError(f"--shape-classifier {args.shape_classifier} is not a file")
    if args.protocol and args.data is None:
        raise MagvitError(f"--protocol {args.protocol} runs on a folder of videos: give --data DIR")
    args.checkpoint = _run_of(args.checkpoint)
    extractor = None
    if "fvd" in args.metrics and args.i3d_weights:
        extractor = registries().feature_extractors.create(
            "i3d", weights=args.i3d_weights, allow_unverified=args.allow_unverified)
    classifier = None
    if "is" in args.metrics and args.c3d_weights:
        classifier = registries().feature_extractors.create(
            "c3d", weights=args.c3d_weights, allow_unverified=args.allow_unverified)
    perceptual = None
    if "lpips" in args.metrics and (args.lpips_vgg or args.lpips_heads):
        from magvit.core.features.lpips import load_lpips

        perceptual = load_lpips(args.lpips_vgg, args.lpips_heads, allow_unverified=args.allow_unverified)
    if _is_stage_one(args.checkpoint):  # a tokenizer run: reconstruction quality
        if args.tasks:
            raise MagvitError(f"{args.checkpoint} is a tokenizer (stage 1) run: it has no tasks; drop --tasks")
        if args.protocol:
            raise MagvitError(f"{args.checkpoint} is a tokenizer (stage 1) run; protocols score generation: "
                              "drop --protocol")
        report = evaluate_tokenizer(args.checkpoint, metrics=tuple(args.metrics), samples=args.samples or 16,
                                    seed=args.seed, data=args.data, extractor=extractor,
                                    batch_size=args.batch_size)
    else:
        report = _evaluate_models(args, extractor, classifier, perceptual)
        if report is None:
            return 0  # another rank: rank 0 reports
    print(report.table())
    if args.output is not None:
        print(f"wrote {write_report(report, args.output)}")
    return 0


def _evaluate_models(args, extractor, classifier=None, perceptual=None):
    """Under torchrun the ranks share the clips; rank 0 returns the report, the others None."""
    import os
    import shutil

    from magvit.core.training import barrier, cleanup, setup_distributed
    from magvit.workflows.eval_protocols import protocol
    from magvit.workflows.evaluate import evaluate

    settings = {"checkpoint": str(args.checkpoint), "tasks": args.tasks, "metrics": args.metrics,
                "samples": args.samples, "folds": args.folds, "seed": args.seed, "data": str(args.data),
                "protocol": args.protocol, "precision": args.precision, "refine_steps": args.refine_steps,
                "class_search": args.class_search, "class_guidance": args.class_guidance,
                "read_classes": args.read_classes, "sample_search": args.sample_search,
                "world_size": int(os.environ.get("WORLD_SIZE", 1)),
                "batch_size": args.batch_size, "i3d": extractor.sha256 if extractor else None,
                "c3d": classifier.sha256 if classifier else None,
                "lpips": perceptual.sha256 if perceptual else None,
                "shape_classifier": str(args.shape_classifier) if args.shape_classifier else None}
    partial = None if args.output is None else Path(args.output) / ".partial"
    ctx = setup_distributed(args.device)
    try:
        if partial is not None and ctx.is_main:
            _prepare_partial(partial, settings, resume=args.resume)
        barrier(ctx)
        report = evaluate(args.checkpoint, tasks=args.tasks, metrics=tuple(args.metrics), samples=args.samples,
                          folds=args.folds, seed=args.seed, data=args.data, extractor=extractor,
                          protocol=protocol(args.protocol) if args.protocol else None,
                          precision=args.precision, refine_steps=args.refine_steps,
                          class_search=args.class_search, class_guidance=args.class_guidance,
                          read_classes=args.read_classes, sample_search=args.sample_search,
                          batch_size=args.batch_size, device=args.device,
                          ctx=ctx, partial_dir=partial,
                          classifier=classifier, perceptual=perceptual,
                          shape_classifier=args.shape_classifier)
    finally:
        cleanup(ctx)
    if not ctx.is_main:
        return None
    if partial is not None:
        shutil.rmtree(partial, ignore_errors=True)
    return report


def _prepare_partial(partial: Path, settings: dict, *, resume: bool) -> None:
    import json
    import shutil

    record = partial / "settings.json"
    if resume and record.is_file():
        if json.loads(record.read_text()) != settings:
            raise MagvitError(f"the partial results in {partial} were made with other settings; run "
                              "without --resume to start over")
        done = sorted(p.stem for p in partial.glob("*-fold*.json"))
        print(f"resuming: {len(done)} task/fold result(s) kept from the interrupted evaluation")
        return
    if resume:
        print(f"nothing to resume in {partial.parent}: starting the evaluation")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    record.write_text(json.dumps(settings))


def _is_stage_one(checkpoint: str) -> bool:
    from magvit.core.training.checkpoint import resolve_checkpoint
    from magvit.weights import resolve_model_path
    from magvit.workflows.bundle import BUNDLE_FILE

    return not (resolve_checkpoint(resolve_model_path(checkpoint)) / BUNDLE_FILE).is_file()


def _run_of(name: str) -> str:
    """A checkpoint as given, or, for an experiment name or file, the run folder it trains."""
    if name == "default" or Path(name).exists() or "/" in name.rstrip("/") and not name.endswith(".toml"):
        return name
    from magvit.registry.toml_files import find_experiment

    try:
        source = find_experiment(name)
    except MagvitError:
        return name  # not an experiment either: the checkpoint error names the problem
    from magvit.registry.experiment import load_experiment

    exp = load_experiment(str(source))
    run = Path(exp.run.output_dir) / exp.run.name
    if not run.exists():
        stage = "transformer" if exp.transformer is not None else "tokenizer"
        raise MagvitError(f"experiment {name} trains {run}, which does not exist yet; train it first "
                          f"(`magvit train {stage} {name}`) or give a checkpoint")
    return str(run)
