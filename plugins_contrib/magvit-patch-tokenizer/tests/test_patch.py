import json

import torch

import magvit
from magvit.cli.main import main
from magvit.pipeline import Pipeline
from magvit.testing import check_registered, check_tokenizer

SHORT = ["--set", "train.steps=2", "--set", "train.warmup_steps=0", "--set", "train.eval_every=2",
         "--set", "train.eval_batches=1", "--set", "train.checkpoint_every=2"]


def test_conformance_with_each_quantizer():
    check_registered("tokenizers", "patch")
    check_tokenizer(magvit.registries().tokenizers.create("patch", quantizer={"kind": "lfq", "bits": 10}))
    model = magvit.registries().tokenizers.create("patch")
    assert model.codebook_size == 1000 and model.factors == (2, 4, 4)
    assert magvit.registries().tokenizers.entry("patch").plugin.distribution == "magvit-patch-tokenizer"


def test_trains_both_stages_and_generates_the_ten_tasks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tokenizer = ["--set", 'tokenizer={kind="patch"}']
    assert main(["train", "tokenizer", "tiny-tokenizer", "--output-dir", "runs/patch", *SHORT, *tokenizer]) == 0
    stage2 = ["--set", 'tokenizer={kind="patch", checkpoint="runs/patch"}',
              "--set", "data.train_clips=8", "--set", "data.eval_clips=4"]
    assert main(["train", "transformer", "tiny", "--output-dir", "runs/s2", *SHORT, *stage2]) == 0
    assert set(json.loads((tmp_path / "runs/s2/eval.json").read_text())["masked_token_ce"]) == {
        "fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp"}
    pipe = Pipeline.from_checkpoint("runs/s2")
    video = pipe.bundle.experiment.data.build().make("eval", seed=0)[0]["video"]
    for task in pipe.task_names:
        out = pipe.generate(task, video, seed=0, label=0 if task in ("cg", "cfp") else None)
        assert out.video.shape == (1, *video.shape) and torch.isfinite(out.video).all()
