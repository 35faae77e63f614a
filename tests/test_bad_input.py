"""Bad input through the CLI, as a new user would type it: every case exits with its status (2
for an error) and a `magvit: error:` line naming the problem, never a traceback, and no input
file is ever overwritten.

Each case is `(id, argv, words)`: `argv` may use `{clip}` (a readable 8x32x32 video), `{notes}`
(a text file), `{folder}` (an empty folder), `{tmp}` (the case's own folder), `{run}` (a trained
stage-1 run) and `{toml:NAME}` (a TOML file of `TOML_FILES`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from magvit.cli.main import main
from magvit.core.video_io import write_video

V = "config validate"
TOK = "tiny-tokenizer"


def validate(*sets: str, exp: str = TOK) -> list[str]:
    return [*V.split(), exp, *[a for s in sets for a in ("--set", s)]]


TOML_FILES = {
    "not_utf8": b'[run]\nname = "\xff\xfe"\n',
    "syntax": b"[run\nname = 1\n",
    "unknown_section": b'extends = ["tiny-tokenizer"]\n[trian]\nsteps = 3\n',
    "missing_extends": b'extends = ["nope-nothing"]\n',
    "extends_number": b"extends = 3\n",
    "cycle_a": b'extends = ["cycle_b.toml"]\n',
    "cycle_b": b'extends = ["cycle_a.toml"]\n',
    "no_sections": b'[run]\nname = "x"\n',
    "data_no_kind": b'extends = ["tiny-tokenizer"]\n[data]\nkind = "synthetic"\n[data.extra]\nx = 1\n',
}

CASES: list[tuple[str, list[str], list[str]]] = [
    # -- experiments: TOML files ------------------------------------------------------------
    ("toml-not-utf8", [*V.split(), "{toml:not_utf8}"], ["is not UTF-8 text"]),
    ("toml-syntax", [*V.split(), "{toml:syntax}"], ["is not valid TOML"]),
    ("toml-unknown-section", [*V.split(), "{toml:unknown_section}"], ["trian: unknown key", "did you mean 'train'"]),
    ("toml-missing-extends", [*V.split(), "{toml:missing_extends}"], ["experiment 'nope-nothing' not found"]),
    ("toml-extends-number", [*V.split(), "{toml:extends_number}"], ["extends: expected an array of file names"]),
    ("toml-extends-cycle", [*V.split(), "{toml:cycle_a}"], ["`extends` forms a cycle"]),
    ("toml-no-sections", [*V.split(), "{toml:no_sections}"], ["no [tokenizer] section", "no [data] section"]),
    ("toml-data-extra", [*V.split(), "{toml:data_no_kind}"], ["data.extra: unknown key"]),
    ("toml-missing-file", [*V.split(), "{tmp}/absent.toml"], ["not found"]),
    ("toml-a-folder", [*V.split(), "{folder}"], ["not found"]),
    ("show-missing", ["config", "show", "nope-nothing"], ["experiment 'nope-nothing' not found", "magvit experiments list"]),
    # -- experiments: [train] ranges --------------------------------------------------------
    ("train-steps-negative", validate("train.steps=-1"), ["train.steps: must be >= 1, got -1"]),
    ("train-steps-zero", validate("train.steps=0"), ["train.steps: must be >= 1, got 0"]),
    ("train-steps-float", validate("train.steps=12.5"), ["train.steps: expected int, got float 12.5"]),
    ("train-steps-string", validate('train.steps="10"'), ["train.steps: expected int, got string '10'"]),
    ("train-batch-zero", validate("train.batch_size=0"), ["train.batch_size: must be >= 1, got 0"]),
    ("train-lr-negative", validate("train.lr=-1e-4"), ["train.lr: must be > 0, got -0.0001"]),
    ("train-lr-zero", validate("train.lr=0.0"), ["train.lr: must be > 0, got 0.0"]),
    ("train-lr-nan", validate("train.lr=nan"), ["train.lr: must be a finite number"]),
    ("train-lr-inf", validate("train.lr=inf"), ["train.lr: must be a finite number"]),
    ("train-ema-above-one", validate("train.ema_decay=1.5"), ["train.ema_decay: must be in [0.0, 1.0), got 1.5"]),
    ("train-ema-one", validate("train.ema_decay=1.0"), ["train.ema_decay: must be in [0.0, 1.0)"]),
    ("train-ema-negative", validate("train.ema_decay=-0.1"), ["train.ema_decay: must be in [0.0, 1.0)"]),
    ("train-checkpoint-every-zero", validate("train.checkpoint_every=0"), ["train.checkpoint_every: must be >= 1, got 0"]),
    ("train-log-every-zero", validate("train.log_every=0"), ["train.log_every: must be >= 1, got 0"]),
    ("train-warmup-above-steps", validate("train.steps=20"),
     ["train.warmup_steps: must be between 0 and train.steps (20), got 50",
      "set train.warmup_steps to at most 20 (0 = no warm-up) (from --set train.steps)", "with its --set overrides:"]),
    ("train-warmup-negative", validate("train.warmup_steps=-1"), ["train.warmup_steps: must be between 0 and train.steps"]),
    ("train-betas-one", validate("train.betas=[0.9, 1.0]"), ["train.betas: must both be in [0, 1)"]),
    ("train-betas-short", validate("train.betas=[0.9]"), ["train.betas"]),
    ("train-betas-string", validate('train.betas="0.9"'), ["train.betas"]),
    ("train-min-lr-ratio", validate("train.min_lr_ratio=2.0"), ["train.min_lr_ratio: must be in [0.0, 1.0], got 2.0"]),
    ("train-weight-decay", validate("train.weight_decay=-1.0"), ["train.weight_decay: must be >= 0.0"]),
    ("train-grad-clip", validate("train.grad_clip=-1.0"), ["train.grad_clip: must be >= 0.0"]),
    ("train-workers", validate("train.num_workers=-1"), ["train.num_workers: must be >= 0, got -1"]),
    ("train-eval-every", validate("train.eval_every=-1"), ["train.eval_every: must be >= 0, got -1"]),
    ("train-eval-batches", validate("train.eval_batches=0"), ["train.eval_batches: must be >= 1, got 0"]),
    ("train-typo", validate("train.stpes=10"), ["train.stpes: unknown key; did you mean 'steps'? (from --set train.stpes)"]),
    ("train-not-a-table", validate("train=3"), ["train: expected a table, got int 3 (from --set train)"]),
    ("run-array", validate("run=[1]"), ["run: expected a table, got array [1] (from --set run)"]),
    ("eval-section-not-a-table", validate('eval="x"'), ["eval: expected a table, got string 'x' (from --set eval)"]),
    # -- experiments: [run], [data], [tokenizer], [losses] -------------------------------------
    ("run-device", validate('run.device="tpu"'), ["run.device"]),
    ("run-precision", validate('run.precision="fp8"'), ["run.precision"]),
    ("run-seed-float", validate("run.seed=1.5"), ["run.seed: expected int, got float 1.5"]),
    ("run-name-int", validate("run.name=3"), ["run.name: expected string, got int 3"]),
    ("data-resolution-30", validate("data.resolution=30"),
     ["data.resolution: 30 is not divisible by the tokenizer's spatial downsampling 4x4", "multiple of 4"]),
    ("data-frames-7", validate("data.frames=7"), ["data.frames: 7 is not divisible by the tokenizer's temporal"]),
    ("data-frames-zero", validate("data.frames=0"), ["data.frames: must be positive, got 0"]),
    ("data-kind-typo", validate('data.kind="synthetc"'), ["data.kind: unknown dataset 'synthetc'", "Did you mean 'synthetic'"]),
    ("data-unknown-key", validate("data.framez=8"), ["data.framez: unknown key; did you mean 'frames'?"]),
    ("data-folder-missing", validate('data={kind="video_folder", path="no/such/dir", frames=8, resolution=32}'),
     ["data.path: 'no/such/dir' does not exist"]),
    ("data-folder-is-file", validate('data={kind="video_folder", path="{notes}", frames=8, resolution=32}'),
     ["is a file, not a folder"]),
    ("data-classes-negative", validate("data.num_classes=7"), ["data.num_classes: must be in 0..4, got 7"]),
    ("tokenizer-preset", validate('tokenizer.preset="XL"'), ["tokenizer", "unknown preset 'XL'"]),
    ("tokenizer-kind", validate('tokenizer.kind="vq4d"'), ["tokenizer.kind: unknown tokenizer 'vq4d'", "vq3d"]),
    ("tokenizer-codebook-string", validate('tokenizer.codebook_size="big"'), ["tokenizer.codebook_size: expected int"]),
    ("tokenizer-unknown-key", validate("tokenizer.codebok_size=4"), ["tokenizer.codebok_size: unknown key; did you mean 'codebook_size'?"]),
    ("tokenizer-width-negative", validate("tokenizer.base_channels=-4"), ["tokenizer.base_channels: must be >= 1, got -4"]),
    ("tokenizer-embedding-zero", validate("tokenizer.embedding_dim=0"), ["tokenizer.embedding_dim: must be >= 1, got 0"]),
    ("tokenizer-res-blocks", validate("tokenizer.num_res_blocks=-1"), ["tokenizer.num_res_blocks: must be >= 0, got -1"]),
    ("tokenizer-entropy-temperature", validate("tokenizer.entropy_temperature=0.0"),
     ["tokenizer.entropy_temperature: must be > 0, got 0.0"]),
    ("tokenizer-loss-weight-nan", validate("tokenizer.commitment_cost=nan"),
     ["tokenizer.commitment_cost: must be a finite number, got nan"]),
    ("tokenizer-init-kind", validate('tokenizer.init={kind="bogus"}'), ["tokenizer.init.kind: unknown inflation 'bogus'"]),
    ("tokenizer-init-checkpoint", validate('tokenizer.init={checkpoint="runs/no-such-run"}'),
     ["tokenizer.init.checkpoint: 'runs/no-such-run' does not exist"]),
    ("tokenizer-checkpoint-missing", validate('tokenizer.checkpoint="runs/no-such-run"'),
     ["tokenizer.checkpoint: 'runs/no-such-run' does not exist"]),
    ("losses-typo", validate("losses.gann=1.0"), ["losses.gann: unknown key; did you mean 'gan'? (from --set losses.gann)",
                                                  "with its --set overrides:"]),
    ("losses-negative", validate("losses.gan=-1.0"), ["losses.gan: must be >= 0.0, got -1.0"]),
    ("losses-perceptual-kind", validate('losses.perceptual_model={kind="vgx"}'),
     ["losses.perceptual_model.kind: unknown perceptual loss 'vgx'"]),
    ("losses-perceptual-weights", validate('losses.perceptual_model={kind="vgg16", weights="no.pt"}'),
     ["losses.perceptual_model.weights: 'no.pt' does not exist"]),
    ("losses-not-number", validate('losses.l2="one"'), ["losses.l2: expected float, got string 'one'"]),
    # -- experiments: stage 2 ------------------------------------------------------------------
    ("stage2-cond-frames", validate("tasks.fp.cond_frames=0", exp="tiny"), ["tasks.fp.cond_frames: must be >= 1, got 0"]),
    ("stage2-unknown-task", validate("tasks.zz={}", exp="tiny"), ["tasks.zz.kind: unknown task 'zz'"]),
    ("stage2-task-weight", validate("tasks.fp.weight=-1.0", exp="tiny"), ["tasks.fp.weight: expected a positive number"]),
    ("stage2-task-weight-typo", validate("tasks.cfp.wieght=3", exp="tiny"), ["tasks.cfp.wieght: unknown key; did you mean 'weight'?"]),
    ("stage2-task-key-unknown", validate("tasks.fp.zzz=3", exp="tiny"), ["tasks.fp.zzz: unknown key; known keys: weight, kind, cond_frames, padding (from --set tasks.fp.zzz)", "tiny.toml with its --set overrides:"]),
    ("stage2-padding-key-unknown", validate('tasks.fp.padding.kind="edge"', "tasks.fp.padding.wieght=3", exp="tiny"), ["tasks.fp.padding.wieght: unknown key; known keys: kind"]),
    ("stage2-task-fraction", validate("tasks.opc.height=1.5", exp="tiny"), ["tasks.opc.height: is a fraction of the frame"]),
    ("stage2-padding", validate('tasks.fp.padding="edgy"', exp="tiny"), ["tasks.fp.padding.kind: unknown padding 'edgy'"]),
    ("stage2-layers-zero", validate("transformer.num_layers=0", exp="tiny"), ["transformer.num_layers: must be >= 1, got 0"]),
    ("stage2-heads-negative", validate("transformer.heads=-2", exp="tiny"), ["transformer.heads: must be >= 1, got -2"]),
    ("stage2-dropout", validate("transformer.dropout=1.5", exp="tiny"), ["transformer.dropout: must be in [0.0, 1.0), got 1.5"]),
    ("stage2-guidance-nan", validate("decoder.guidance_scale=nan", exp="tiny"),
     ["decoder.guidance_scale: must be a finite number, got nan"]),
    ("stage2-decoder-steps", validate("decoder.steps=0", exp="tiny"), ["decoder.steps: must be >= 1, got 0"]),
    ("stage2-decoder-temperature", validate("decoder.temperature=-1.0", exp="tiny"), ["decoder.temperature: must be >= 0"]),
    ("stage2-decoder-temperature-nan", validate("decoder.temperature=nan", exp="tiny"), ["decoder.temperature: must be >= 0, got nan"]),
    ("stage2-decoder-schedule", validate('decoder.schedule="cosin"', exp="tiny"), ["unknown schedule 'cosin'"]),
    ("stage2-decoder-kind", validate('decoder.kind="commitx"', exp="tiny"), ["decoder.kind: unknown decoder 'commitx'"]),
    ("stage2-transformer-preset", validate('transformer.preset="XXL"', exp="tiny"), ["transformer.preset"]),
    ("stage2-attention", validate('transformer.attention="flash"', exp="tiny"), ["unknown attention backend 'flash'"]),
    ("stage2-tokenizer-empty", validate('tokenizer.checkpoint=""', exp="tiny"), ["tokenizer.checkpoint is empty"]),
    ("stage2-tokenizer-missing", validate(exp="tiny"),
     ["tokenizer.checkpoint: 'runs/tiny-tokenizer' does not exist", "magvit train tokenizer tiny-tokenizer"]),
    ("stage2-unlabelled-cg", validate("data.num_classes=0", 'tokenizer.checkpoint="{run}"', exp="tiny"),
     ["task(s) cg, cfp need class labels"]),
    ("stage2-data-resolution", validate("data.resolution=30", 'tokenizer.checkpoint="{run}"', exp="tiny"),
     ["data.resolution: 30 is not divisible"]),
    ("stage2-init-from-missing", validate('train.init_from="runs/no-such-run"', 'tokenizer.checkpoint="default"', exp="tiny-flat-local"),
     ["train.init_from: 'runs/no-such-run' does not exist; give a stage-2 run, checkpoint or bundle"]),
    ("stage1-init-from", validate('train.init_from="default"'),
     ["train.init_from: 'default' starts a stage-2 run from a transformer", "tokenizer.codes_from"]),
    ("stage2-commit-unknown", validate("commit.weight_mod=1", exp="tiny"), ["commit.weight_mod: unknown key"]),
    ("stage-tokenizer-for-tiny", [*V.split(), "--stage", "tokenizer", "tiny"], ["tiny is a stage-2 experiment", "magvit train transformer tiny"]),
    ("stage-transformer-for-tok", [*V.split(), "--stage", "transformer", TOK], ["has no [transformer] section", "magvit train tokenizer"]),
    ("stage-bad-choice", [*V.split(), "--stage", "decoder", TOK], ["argument --stage: invalid choice"]),
    # -- --set values ------------------------------------------------------------------------
    ("set-no-equals", validate("train.steps"), ["--set 'train.steps': expected KEY.PATH=VALUE"]),
    ("set-empty-key", validate("=3"), ["expected KEY.PATH=VALUE"]),
    ("set-bad-toml", validate("train.lr=[1,"), ["--set train.lr", "is not a TOML value"]),
    ("set-through-value", validate("train.steps.x=1"), ["train.steps is a value, not a table"]),
    ("set-empty-part", validate("train..steps=1"), ["expected KEY.PATH=VALUE"]),
    # -- train ---------------------------------------------------------------------------------
    ("train-stage2-as-tokenizer", ["train", "tokenizer", "tiny"], ["tiny is a stage-2 experiment; train it with `magvit train transformer tiny`"]),
    ("train-stage1-as-transformer", ["train", "transformer", TOK], ["has no [transformer] section", "magvit train tokenizer"]),
    ("train-output-dir-file", ["train", "tokenizer", TOK, "--output-dir", "{notes}"], ["argument --output-dir", "is a file; give a folder"]),
    ("train-cli-steps-zero", ["train", "tokenizer", TOK, "--set", "train.steps=0"], ["train.steps: must be >= 1, got 0"]),
    ("train-cli-lr-negative", ["train", "tokenizer", TOK, "--set", "train.lr=-1.0"], ["train.lr: must be > 0"]),
    ("train-existing-run", ["train", "tokenizer", TOK, "--output-dir", "{run}"], ["already has a checkpoint", "pass --resume"]),
    ("train-resume-codebook", ["train", "tokenizer", TOK, "--output-dir", "{run}", "--resume", "--set",
                               "tokenizer.codebook_size=256", "--set", "train.steps=9", "--set", "train.warmup_steps=0"],
     ["the model changed since", "tokenizer.codebook_size", "256 now"]),
    ("train-resume-base-channels", ["train", "tokenizer", TOK, "--output-dir", "{run}", "--resume", "--set",
                                    "tokenizer.base_channels=8", "--set", "train.steps=9", "--set", "train.warmup_steps=0"],
     ["tokenizer.base_channels"]),
    ("train-resume-other-stage", ["train", "transformer", "tiny", "--output-dir", "{run}", "--resume", "--set",
                                  'tokenizer.checkpoint="{run}"', "--set", "train.steps=9", "--set", "train.warmup_steps=0"],
     ["is a tokenizer (stage 1) run; it cannot be resumed as transformer training"]),
    ("train-resume-steps-below", ["train", "tokenizer", TOK, "--output-dir", "{run}", "--resume", "--set",
                                  "train.steps=1", "--set", "train.warmup_steps=0"], ["past train.steps = 1: nothing to do"]),
    ("train-resume-all-damaged", ["train", "tokenizer", TOK, "--output-dir", "{damaged}", "--resume", "--set",
                                  "train.steps=9", "--set", "train.warmup_steps=0"], ["can be read", "damaged"]),
    ("train-unknown-stage", ["train", "decoder", TOK], ["argument STAGE: invalid choice: 'decoder'"]),
    ("train-no-experiment", ["train", "tokenizer"], ["the following arguments are required: experiment"]),
    # -- generate ------------------------------------------------------------------------------
    *[(f"generate-{name}", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                            "--output", "{tmp}/o.mp4", *extra], words) for name, extra, words in [
        ("steps-zero", ["--steps", "0"], ["argument --steps: must be at least 1, got 0"]),
        ("steps-negative", ["--steps", "-3"], ["argument --steps: must be at least 1, got -3"]),
        ("steps-word", ["--steps", "abc"], ["argument --steps: expected an integer, got 'abc'"]),
        ("temperature-nan", ["--temperature", "nan"], ["argument --temperature: must be a finite number"]),
        ("temperature-inf", ["--temperature", "inf"], ["argument --temperature: must be a finite number"]),
        ("temperature-negative", ["--temperature", "-1"], ["argument --temperature: must be >= 0"]),
        ("top-k-negative", ["--top-k", "-1"], ["argument --top-k: must be at least 0"]),
        ("guidance-nan", ["--guidance-scale", "nan"], ["argument --guidance-scale: must be a finite number"]),
        ("samples-zero", ["--samples", "0"], ["argument --samples: must be at least 1, got 0"]),
        ("batch-zero", ["--batch-size", "0"], ["argument --batch-size: must be at least 1, got 0"]),
        ("fps-zero", ["--fps", "0"], ["argument --fps: must be > 0, got 0"]),
        ("fps-negative", ["--fps", "-5"], ["argument --fps: must be > 0"]),
        ("fps-nan", ["--fps", "nan"], ["argument --fps: must be a finite number"]),
        ("device-tpu", ["--device", "tpu"], ["argument --device: must be auto, cpu, cuda or cuda:N, got 'tpu'"]),
        ("device-cuda-word", ["--device", "cuda:x"], ["argument --device: must be auto, cpu, cuda or cuda:N"]),
        ("schedule-typo", ["--schedule", "cosin"], ["unknown schedule 'cosin'"]),
        ("decoder-unknown", ["--decoder", "nope"], ["unknown decoder 'nope'"]),
        ("kv-cache-commit", ["--no-kv-cache"], ["decoders.commit.kv_cache: unknown key"]),
        ("ultrawide-zero", ["--ultrawide", "0"], ["argument --ultrawide: must be at least 1, got 0"]),
        ("ultrawide-fp", ["--ultrawide", "3"], ["task 'fp' does not give a vertical strip", "such as opv"]),
        ("class-negative", ["--class", "-2"], ["argument --class: must be at least -1, got -2"]),
    ]],
    ("generate-output-suffix", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                                "--output", "{tmp}/o.txt"], ["cannot write a video with suffix '.txt'", ".mp4"]),
    ("generate-output-no-suffix", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                                   "--output", "{tmp}/o"], ["cannot write a video with suffix '(none)'"]),
    ("generate-output-folder", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                                "--output", "{dir_mp4}"], ["is a folder; give a file name"]),
    ("generate-input-missing", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{tmp}/none.mp4",
                                "--output", "{tmp}/o.mp4"], ["video", "none.mp4 does not exist"]),
    ("generate-input-folder", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{folder}",
                               "--output", "{tmp}/o.mp4"], ["is a folder, not a video file"]),
    ("generate-input-text", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{notes}",
                             "--output", "{tmp}/o.mp4"], ["notes.txt"]),
    ("generate-overwrites-input", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                                   "--output", "{clip}"], ["is also an input; writing it would destroy the input"]),
    ("generate-task-unknown", ["generate", "--checkpoint", "default", "--task", "nope", "--input", "{clip}",
                               "--output", "{tmp}/o.mp4"], ["'nope'"]),
    ("generate-no-input", ["generate", "--checkpoint", "default", "--task", "fp", "--output", "{tmp}/o.mp4"],
     ["task 'fp' needs a condition video; pass one (--input)"]),
    ("generate-cg-no-class", ["generate", "--checkpoint", "default", "--task", "cg", "--output", "{tmp}/o.mp4"],
     ["task 'cg' needs a class label; pass one (--class N)"]),
    ("generate-class-too-big", ["generate", "--checkpoint", "default", "--task", "cg", "--class", "99",
                                "--output", "{tmp}/o.mp4"], ["99"]),
    ("generate-ultrawide-no-input", ["generate", "--checkpoint", "default", "--task", "opv", "--ultrawide", "1",
                                     "--output", "{tmp}/o.mp4"], ["--ultrawide needs --input"]),
    ("generate-checkpoint-missing", ["generate", "--checkpoint", "{tmp}/nope", "--task", "fp", "--input", "{clip}",
                                     "--output", "{tmp}/o.mp4"], ["does not exist"]),
    ("generate-checkpoint-file", ["generate", "--checkpoint", "{notes}", "--task", "fp", "--input", "{clip}",
                                  "--output", "{tmp}/o.mp4"], ["is a file"]),
    ("generate-checkpoint-stage1", ["generate", "--checkpoint", "{run}", "--task", "fp", "--input", "{clip}",
                                    "--output", "{tmp}/o.mp4"], ["not a stage-2"]),
    ("generate-no-checkpoint", ["generate", "--task", "fp", "--output", "{tmp}/o.mp4"],
     ["the following arguments are required: --checkpoint"]),
    ("generate-pixel-format", ["generate", "--checkpoint", "default", "--task", "fp", "--input", "{clip}",
                               "--output", "{tmp}/o.mp4", "--pixel-format", "rgb"], ["argument --pixel-format: invalid choice"]),
    # -- reconstruct ---------------------------------------------------------------------------
    ("reconstruct-overwrites-input", ["reconstruct", "{clip}", "{clip}", "--checkpoint", "default"],
     ["is also an input; writing it would destroy the input"]),
    ("reconstruct-source-missing", ["reconstruct", "{tmp}/none.mp4", "{tmp}/o.mp4", "--checkpoint", "default"], ["does not exist"]),
    ("reconstruct-source-folder", ["reconstruct", "{folder}", "{tmp}/o.mp4", "--checkpoint", "default"],
     ["is a folder, not a video file"]),
    ("reconstruct-source-text", ["reconstruct", "{notes}", "{tmp}/o.mp4", "--checkpoint", "default"], ["notes.txt"]),
    ("reconstruct-frames-zero", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "default", "--frames", "0"],
     ["argument --frames: must be at least 1, got 0"]),
    ("reconstruct-frames-odd", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "default", "--frames", "3"],
     ["must be divisible by the downsampling factors"]),
    ("reconstruct-frames-long", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "default", "--frames", "64"],
     ["the video has 8 frames; the tokenizer works on clips of 64"]),
    ("reconstruct-resolution-zero", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "default", "--resolution", "0"],
     ["argument --resolution: must be at least 1, got 0"]),
    ("reconstruct-resolution-word", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "default", "--resolution", "big"],
     ["argument --resolution: expected an integer, got 'big'"]),
    ("reconstruct-target-suffix", ["reconstruct", "{clip}", "{tmp}/o.avi", "--checkpoint", "default"],
     ["cannot write a video with suffix '.avi'"]),
    ("reconstruct-checkpoint-missing", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "{tmp}/nope"], ["does not exist"]),
    ("reconstruct-checkpoint-incomplete", ["reconstruct", "{clip}", "{tmp}/o.mp4", "--checkpoint", "{incomplete}"],
     ["incomplete", "checkpoint.json"]),
    # -- demo ----------------------------------------------------------------------------------
    ("demo-clips-zero", ["demo", "--clips", "0", "--output", "{tmp}/demo"], ["argument --clips: must be at least 1, got 0"]),
    ("demo-clips-negative", ["demo", "--clips", "-1", "--output", "{tmp}/demo"], ["argument --clips: must be at least 1"]),
    ("demo-clips-word", ["demo", "--clips", "x", "--output", "{tmp}/demo"], ["argument --clips: expected an integer"]),
    ("demo-output-file", ["demo", "--output", "{notes}"], ["argument --output", "is a file; give a folder"]),
    ("demo-input-missing", ["demo", "--input", "{tmp}/none.mp4", "--output", "{tmp}/demo"], ["does not exist"]),
    ("demo-input-folder", ["demo", "--input", "{folder}", "--output", "{tmp}/demo"], ["is a folder, not a video file"]),
    ("demo-device", ["demo", "--device", "tpu", "--output", "{tmp}/demo"], ["argument --device"]),
    ("demo-class-negative", ["demo", "--class", "-2", "--output", "{tmp}/demo"], ["argument --class: must be at least -1"]),
    ("demo-checkpoint-missing", ["demo", "--checkpoint", "{tmp}/nope", "--output", "{tmp}/demo"], ["does not exist"]),
    ("demo-overwrites-input", ["demo", "--input", "{demo_out}/fp.mp4", "--output", "{demo_out}"],
     ["is also a demo output; writing it would destroy the input"]),
    # -- tasks ---------------------------------------------------------------------------------
    ("tasks-factors-two", ["tasks", "list", "--factors", "4,8"], ["argument --factors: must be three positive integers"]),
    ("tasks-factors-zero", ["tasks", "list", "--factors", "0,8,8"], ["argument --factors: must be three positive integers"]),
    ("tasks-factors-words", ["tasks", "list", "--factors", "a,b,c"], ["argument --factors"]),
    ("tasks-resolution-30", ["tasks", "list", "--resolution", "30"], ["16x30x30 is not divisible by the tokenizer factors 4,8,8"]),
    ("tasks-frames-zero", ["tasks", "list", "--frames", "0"], ["argument --frames: must be at least 1, got 0"]),
    ("tasks-frames-6", ["tasks", "list", "--frames", "6"], ["6x128x128 is not divisible"]),
    ("tasks-preview-unknown", ["tasks", "preview", "--task", "nope", "--synthetic", "{tmp}/p.png"], ["unknown task 'nope'"]),
    ("tasks-preview-missing-input", ["tasks", "preview", "--task", "fp", "{tmp}/none.mp4", "{tmp}/p.png"], ["none.mp4"]),
    ("tasks-preview-resolution", ["tasks", "preview", "--task", "fp", "--resolution", "0", "--synthetic", "{tmp}/p.png"],
     ["argument --resolution: must be at least 1"]),
    # -- other commands ------------------------------------------------------------------------
    ("registry-unknown", ["registry", "list", "nosuch"], ["no registry 'nosuch'; registries are: tokenizers"]),
    ("data-missing", ["data", "inspect", "{tmp}/none"], ["does not exist"]),
    ("model-summary-missing", ["model", "summary", "nope-nothing"], ["experiment 'nope-nothing' not found"]),
    ("model-summary-bad-set", ["model", "summary", TOK, "--set", "tokenizer.preset=\"XL\""], ["unknown preset 'XL'"]),
    ("export-missing", ["export", "{tmp}/nope", "{tmp}/out"], ["does not exist"]),
    ("export-stage1", ["export", "{run}", "{tmp}/out"], ["not a stage-2"]),
    ("export-into-itself", ["export", "{bundle}", "{bundle}", "--overwrite"], ["holds the checkpoint being exported"]),
    ("export-target-file", ["export", "default", "{notes}"], ["is a file; give the folder to write"]),
    ("export-target-exists", ["export", "default", "{folder}"], ["exists; choose another folder or pass --overwrite"]),
    ("experiments-unknown-action", ["experiments", "show"], ["argument ACTION: invalid choice: 'show'"]),
    ("command-unknown", ["nosuch"], ["argument COMMAND: invalid choice: 'nosuch'"]),
    ("option-unknown", ["demo", "--nope"], ["unrecognized arguments: --nope"]),
]

# Cases that need a fresh process: environment switches read when plugins load.
ENV_CASES = [
    ("env-load-unknown", ["registry", "list", "tasks"], {"MAGVIT_LOAD_PLUGINS": "nope"}, 0,
     ["magvit: warning: MAGVIT_LOAD_PLUGINS names 'nope', which no plugin has"]),
    ("env-block-unknown", ["registry", "list", "tasks"], {"MAGVIT_BLOCK_PLUGINS": "nosuch"}, 0,
     ["magvit: warning: MAGVIT_BLOCK_PLUGINS names 'nosuch'"]),
    ("env-block-tasks", ["tasks", "list"], {"MAGVIT_BLOCK_PLUGINS": "magvit.plugins.tasks"}, 2,
     ["no task is registered (blocked plugins: magvit.plugins.tasks)"]),
    ("env-block-paddings-strict", ["tasks", "list"],
     {"MAGVIT_BLOCK_PLUGINS": "magvit.plugins.paddings", "MAGVIT_STRICT_PLUGINS": "1"}, 2,
     ["needs padding", "blocked: magvit.plugins.paddings"]),
    ("env-block-paddings", ["plugins"], {"MAGVIT_BLOCK_PLUGINS": "magvit.plugins.paddings"}, 0,
     ["task 'fp' needs padding 'edge', which no loaded plugin registers"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the cases refer to, and a 2-step stage-1 run (plus a damaged and an incomplete copy)."""
    root = tmp_path_factory.mktemp("bad-input")
    t = torch.linspace(0, 1, 8)[None, :, None, None]
    clip = write_video(root / "clip.mp4", (t * torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))))
    (root / "notes.txt").write_text("not a video\n")
    (root / "folder").mkdir()
    (root / "outdir.mp4").mkdir()
    (root / "demo-out").mkdir()
    shutil.copy(clip, root / "demo-out" / "fp.mp4")
    for name, content in TOML_FILES.items():
        (root / f"{name}.toml").write_bytes(content)
    run = root / "run"
    args = ["train", "tokenizer", TOK, "--output-dir", str(run), "--set", "train.steps=2", "--set",
            "train.warmup_steps=0", "--set", "train.checkpoint_every=1", "--set", "data.train_clips=4",
            "--set", "data.eval_clips=2"]
    assert main(args) == 0
    damaged = root / "damaged"
    shutil.copytree(run, damaged)
    for state in damaged.glob("checkpoints/step-*/state.pt"):
        state.write_bytes(b"\0" * 8)
    incomplete = root / "incomplete"
    shutil.copytree(run, incomplete)
    for manifest in incomplete.glob("checkpoints/step-*/checkpoint.json"):
        manifest.unlink()
    (incomplete / "checkpoints" / "last").unlink()
    bundle = root / "bundle"
    assert main(["export", "default", str(bundle)]) == 0
    return {"clip": str(clip), "notes": str(root / "notes.txt"), "folder": str(root / "folder"),
            "dir_mp4": str(root / "outdir.mp4"), "demo_out": str(root / "demo-out"),
            "run": str(run), "damaged": str(damaged), "incomplete": str(incomplete), "bundle": str(bundle),
            **{f"toml:{name}": str(root / f"{name}.toml") for name in TOML_FILES}}


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_suite_is_large_enough_and_ids_are_unique():
    ids = [c[0] for c in CASES] + [c[0] for c in ENV_CASES]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case,argv,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_its_fix(case, argv, words, world, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [_fill_one(a, world, tmp_path) for a in argv]
    before = {p: digest(p) for p in (world["clip"], world["notes"], world["demo_out"] + "/fp.mp4")}
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    assert "magvit: error:" in err and "Traceback" not in err + out, err[-2000:]
    for word in words:
        assert _fill_one(word, world, tmp_path) in err, f"{word!r} not in:\n{err[-2000:]}"
    assert {p: digest(p) for p in before} == before, "an input file changed"
    assert not (tmp_path / "demo").exists() or any((tmp_path / "demo").iterdir()), "left an empty folder"
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*partial*")), "wrote an output"


@pytest.mark.parametrize("case,argv,env,code,words", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_environment_switches_are_reported(case, argv, env, code, words, tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAGVIT_")}
    out = subprocess.run([sys.executable, "-m", "magvit", *argv], env={**clean, **env}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == code, out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    for word in words:
        assert word in out.stderr + out.stdout, f"{word!r} not in:\n{out.stderr[-2000:]}"


def test_debug_shows_the_traceback_that_is_otherwise_hidden(capsys):
    assert main(["--debug", "config", "show", "nope-nothing"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "magvit: error: experiment 'nope-nothing'" in err


def test_a_bug_is_reported_as_one_line_naming_debug(monkeypatch, capsys):
    import magvit.cli.commands.experiments as command

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(command, "run_list", broken)
    assert main(["experiments", "list"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("magvit: error: unexpected ZeroDivisionError: division by zero")
    assert "rerun with --debug" in err and "Traceback" not in err


def _fill_one(arg: str, world: dict, tmp: Path) -> str:
    for key, value in {**world, "tmp": str(tmp)}.items():
        arg = arg.replace(f"{{{key}}}", value)
    return arg
