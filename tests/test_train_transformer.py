"""`magvit train transformer`: a run from TOML alone, its bundle, exact resume, errors, DDP,
and a run started from another run's transformer (`train.init_from`)."""

import json
import math

import pytest
import torch

import magvit
from magvit.core.training import DistContext, save_checkpoint
from magvit.errors import ConfigError, MagvitError
from magvit.registry.experiment import validate_experiment
from magvit.workflows import train_transformer
from magvit.workflows.bundle import load_bundle
from magvit.workflows.preflight import experiment_problems
from magvit.workflows.transformer_stage import TransformerStage

ALL_TASKS = ("fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp")
TOKENIZER = dict(kind="vq3d", preset="tiny", codebook_size=64, embedding_dim=8)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A (random) tiny tokenizer saved as a stage-1 run would save it."""
    torch.manual_seed(0)
    config = {k: v for k, v in TOKENIZER.items() if k != "kind"}
    tokenizer = magvit.registries().tokenizers.create("vq3d", **config)
    run = tmp_path_factory.mktemp("tokenizer")
    save_checkpoint(run, 1, weights={"model": tokenizer.state_dict()}, state={})
    return run


def raw_experiment(tokenizer_dir, tasks=ALL_TASKS, **train):
    return {
        "run": {"name": "t", "seed": 3, "device": "cpu"},
        "data": {"kind": "synthetic", "frames": 4, "resolution": 16, "num_classes": 4,
                 "train_clips": 16, "eval_clips": 4},
        "tokenizer": {**TOKENIZER, "checkpoint": str(tokenizer_dir)},
        "transformer": {"kind": "bert", "preset": "tiny", "num_layers": 1, "hidden": 32,
                        "heads": 2, "mlp": 64},
        "tasks": {name: {} for name in tasks},
        "commit": {"memoize_tokens": True},
        "train": {"steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1, "grad_clip": 1.0,
                  "weight_decay": 0.045, "log_every": 1, "checkpoint_every": 2, **train},
    }


def experiment(tokenizer_dir, tasks=ALL_TASKS, **train):
    return validate_experiment(raw_experiment(tokenizer_dir, tasks, **train))


def test_multi_task_run_writes_eval_and_a_self_contained_bundle(tokenizer_dir, tmp_path):
    exp = experiment(tokenizer_dir, eval_every=4, eval_batches=1)
    last = train_transformer.train(exp, tmp_path, resume=False)
    assert last.name == "step-00000004"

    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["masked_token_ce"]) == set(ALL_TASKS)
    assert report["uniform_ce"] == pytest.approx(math.log(64))
    assert all(0 < ce < 2 * math.log(64) for ce in report["masked_token_ce"].values())
    # the context-free reference: the entropy of each task's held-out masked codes
    assert set(report["frequency_ce"]) == set(ALL_TASKS)
    assert all(0 < h <= math.log(64) + 1e-9 for h in report["frequency_ce"].values())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert {f"loss_{t}" for t in ALL_TASKS} <= set(train_rows[-1])

    bundle = load_bundle(tmp_path)  # needs nothing but the checkpoint
    assert bundle.task_names == ALL_TASKS
    assert bundle.vocab.task_names == ALL_TASKS and bundle.vocab.num_classes == 4
    assert bundle.meta["prompt_ids"]["fp"] == bundle.vocab.prompt_id("fp") == 64 + 4 + 2
    assert bundle.meta["latent_shape"] == [2, 4, 4] and bundle.meta["step"] == 4
    assert bundle.meta["tokenizer"]["checkpoint"] == ""  # weights are embedded, not referenced
    assert bundle.transformer.config.num_positions == 2 + 32
    assert bundle.transformer.config.vocab_size == 64 + 4 + 1 + 1 + 10
    saved = torch.load(last / "state.pt", weights_only=True)
    assert saved["stage"]["optimizer"]["param_groups"][0]["weight_decay"] == 0.045
    ids = torch.randint(0, 64, (1, 34))
    assert bundle.transformer(ids).shape == (1, 34, 64)
    assert not bundle.tokenizer.training and bundle.experiment.run.name == "t"


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tokenizer_dir, tmp_path, monkeypatch):
    exp = experiment(tokenizer_dir, tasks=("fp", "cg"))
    straight = train_transformer.train(exp, tmp_path / "straight", resume=False)

    original = TransformerStage.train_step

    def crash_at_step_two(self, step):
        if step == 2:
            raise KeyboardInterrupt("simulated crash")
        return original(self, step)

    monkeypatch.setattr(TransformerStage, "train_step", crash_at_step_two)
    with pytest.raises(KeyboardInterrupt):
        train_transformer.train(exp, tmp_path / "resumed", resume=False)
    monkeypatch.setattr(TransformerStage, "train_step", original)
    with pytest.raises(MagvitError, match="already has a checkpoint.*--resume"):
        train_transformer.train(exp, tmp_path / "resumed", resume=False)
    resumed = train_transformer.train(exp, tmp_path / "resumed", resume=True)

    a, b = load_bundle(straight), load_bundle(resumed)
    for name, tensor in a.transformer.state_dict().items():
        assert torch.equal(tensor, b.transformer.state_dict()[name]), name


def test_single_task_fp_in_bf16_from_a_token_cache_has_no_prompt_and_no_classes(tokenizer_dir, tmp_path):
    exp = experiment(tokenizer_dir, tasks=("fp",), steps=2)
    exp.run.precision = "bf16"
    exp.commit.token_cache = str(tmp_path / "cache")
    train_transformer.train(exp, tmp_path / "run", resume=False)
    bundle = load_bundle(tmp_path / "run")
    cache = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert cache["num_items"] == 16 and cache["fingerprint"] == bundle.meta["tokenizer_fingerprint"]
    assert bundle.task_names == ("fp",) and bundle.vocab.task_names == ()
    assert bundle.vocab.num_classes == 0 and bundle.vocab.prefix_length == 1
    assert bundle.transformer.config.num_positions == 1 + 32
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x) for x in losses)


def test_user_errors_name_the_problem_and_the_fix(tokenizer_dir, tmp_path):
    exp = experiment(tokenizer_dir)
    exp.tokenizer = type(exp.tokenizer)("vq3d", exp.tokenizer.config.__class__(preset="tiny"))
    with pytest.raises(MagvitError, match="tokenizer.checkpoint is empty.*magvit train tokenizer"):
        train_transformer.train(exp, tmp_path, resume=False)

    unlabelled = experiment(tokenizer_dir, tasks=("fp", "cg"))
    unlabelled.data.config.num_classes = 0
    with pytest.raises(MagvitError, match=r"task\(s\) cg need class labels.*num_classes = 0"):
        train_transformer.train(unlabelled, tmp_path, resume=False)

    headless = experiment(tokenizer_dir)
    headless.transformer = None
    with pytest.raises(MagvitError, match=r"\[transformer\]: t has no \[transformer\] section, so it is a "
                                          r"stage-1 experiment; train it with `magvit train tokenizer t`"):
        train_transformer.train(headless, tmp_path, resume=False)
    with pytest.raises(MagvitError, match="not a stage-2 .transformer. checkpoint"):
        load_bundle(tokenizer_dir)


@pytest.fixture(scope="module")
def source_run(tokenizer_dir, tmp_path_factory):
    """A two-step stage-2 run of FP and CG: what `train.init_from` starts from."""
    run = tmp_path_factory.mktemp("source")
    train_transformer.train(experiment(tokenizer_dir, tasks=("fp", "cg"), steps=2), run, resume=False)
    return run


def _fine_tune(source_run, tokenizer_dir, tasks=("fp", "cg"), **changes):
    raw = raw_experiment(tokenizer_dir, tasks=tasks, steps=2, init_from=str(source_run))
    raw["tokenizer"]["checkpoint"] = str(source_run)  # a bundle lends its tokenizer too
    raw["tasks"]["fp"] = {"weight": 3.0}  # task weights may differ from the source's
    for key, value in changes.items():
        raw[key] = {**raw[key], **value}
    return validate_experiment(raw)


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_init_from_starts_with_the_source_transformer_and_a_fresh_optimiser(source_run, tokenizer_dir, tmp_path):
    source = load_bundle(source_run)
    stage = TransformerStage(_fine_tune(source_run, tokenizer_dir), tmp_path / "ft", DistContext(torch.device("cpu")))
    _assert_same_weights(stage.model.state_dict(), source.transformer.state_dict())
    _assert_same_weights(stage.tokenizer.state_dict(), source.tokenizer.state_dict())
    assert stage.optimizer.state_dict()["state"] == {}  # no moments carried over
    assert stage.record["init_from"] == {"source": str(source_run), "path": str(source_run / "checkpoints" / "step-00000002"),
                                         "step": 2}

    # a from-scratch run of the same experiment starts elsewhere
    scratch = experiment(tokenizer_dir, tasks=("fp", "cg"))
    fresh = TransformerStage(scratch, tmp_path / "scratch", DistContext(torch.device("cpu")))
    differs = [n for n, t in fresh.model.state_dict().items() if not torch.equal(t, source.transformer.state_dict()[n])]
    assert differs

    last = train_transformer.train(_fine_tune(source_run, tokenizer_dir), tmp_path / "ft", resume=False)
    tuned = load_bundle(last)
    assert tuned.meta["step"] == 2 and tuned.meta["init_from"]["step"] == 2
    _assert_same_weights(tuned.tokenizer.state_dict(), source.tokenizer.state_dict())
    moved = [n for n, t in tuned.transformer.state_dict().items() if not torch.equal(t, source.transformer.state_dict()[n])]
    assert moved  # it trained from there


def test_a_resumed_fine_tune_keeps_the_init_from_record_of_its_checkpoint(source_run, tokenizer_dir, tmp_path):
    """The weights a resumed run goes on with came from its checkpoint; train.init_from, resolved
    again at the resume, may name a source that has moved on since (here: trained 2 more steps)."""
    import shutil

    source = tmp_path / "source"
    shutil.copytree(source_run, source)
    train_transformer.train(_fine_tune(source, tokenizer_dir), tmp_path / "ft", resume=False)
    first = {"source": str(source), "path": str(source / "checkpoints" / "step-00000002"), "step": 2}
    assert load_bundle(tmp_path / "ft").meta["init_from"] == first
    train_transformer.train(experiment(tokenizer_dir, tasks=("fp", "cg"), steps=4), source, resume=True)
    assert load_bundle(source).meta["step"] == 4  # what train.init_from names now

    last = train_transformer.train(_fine_tune(source, tokenizer_dir, train={"steps": 3}), tmp_path / "ft", resume=True)
    assert last.name == "step-00000003"
    assert load_bundle(last).meta["init_from"] == first
    assert json.loads((last / "bundle.json").read_text())["init_from"] == first


def test_a_resume_neither_loads_nor_checks_train_init_from(source_run, tokenizer_dir, tmp_path):
    """A resume's weights come from its checkpoint, so a source that has since become unusable
    (here: a stage-1 run in its place) stops a new run but not the resume; `--resume` in an empty
    folder is a new run and starts from the source."""
    import shutil

    source = tmp_path / "source"
    shutil.copytree(source_run, source)
    fine_tune = experiment(tokenizer_dir, tasks=("fp", "cg"), steps=2, init_from=str(source))
    train_transformer.train(fine_tune, tmp_path / "ft", resume=False)
    first = {"source": str(source), "path": str(source / "checkpoints" / "step-00000002"), "step": 2}
    fresh = train_transformer.train(fine_tune, tmp_path / "empty", resume=True)
    assert load_bundle(fresh).meta["init_from"] == first
    _assert_same_weights(load_bundle(fresh).transformer.state_dict(), load_bundle(tmp_path / "ft").transformer.state_dict())

    shutil.rmtree(source)
    shutil.copytree(tokenizer_dir, source)
    with pytest.raises(MagvitError, match=r"not a stage-2 .transformer. checkpoint"):
        train_transformer.train(fine_tune, tmp_path / "new", resume=True)
    last = train_transformer.train(experiment(tokenizer_dir, tasks=("fp", "cg"), steps=3, init_from=str(source)),
                                   tmp_path / "ft", resume=True)
    assert last.name == "step-00000003" and load_bundle(last).meta["init_from"] == first

    shutil.rmtree(source)  # gone altogether: only a new run needs it
    gone = experiment(tokenizer_dir, tasks=("fp", "cg"), steps=4, init_from=str(source))
    assert experiment_problems(gone) == [f"train.init_from: {str(source)!r} does not exist; give a stage-2 run, "
                                         "checkpoint or bundle (or `default`)"]
    assert experiment_problems(gone, resuming=True) == []
    with pytest.raises(ConfigError, match="train.init_from: .* does not exist"):
        train_transformer.train(gone, tmp_path / "empty-too", resume=True)
    last = train_transformer.train(gone, tmp_path / "ft", resume=True)
    assert last.name == "step-00000004" and load_bundle(last).meta["init_from"] == first


def test_init_from_refuses_a_source_with_other_tasks_tokens_or_stage(source_run, tokenizer_dir, tmp_path):
    cpu = DistContext(torch.device("cpu"))
    with pytest.raises(MagvitError, match=r"train.init_from: .* differs from this run in the vocabulary "
                                          r"\(codebook size, classes, tasks\); the tasks \(keep \[tasks\] as it "
                                          r"was trained; only weights may change\)\. Start from"):
        TransformerStage(_fine_tune(source_run, tokenizer_dir, tasks=("fp", "cg", "fi")), tmp_path / "a", cpu)

    torch.manual_seed(1)  # same config, other weights: other tokens
    config = {k: v for k, v in TOKENIZER.items() if k != "kind"}
    other = magvit.registries().tokenizers.create("vq3d", **config)
    save_checkpoint(tmp_path / "other", 1, weights={"model": other.state_dict()}, state={})
    with pytest.raises(MagvitError, match=r"differs from this run in the tokenizer weights \(set tokenizer.checkpoint to the tokenizer it "
                                          r"was trained with; its bundle works too\)"):
        TransformerStage(_fine_tune(source_run, tokenizer_dir, tokenizer={"checkpoint": str(tmp_path / "other")}),
                         tmp_path / "b", cpu)

    with pytest.raises(MagvitError, match=r"not a stage-2 .transformer. checkpoint"):
        TransformerStage(experiment(tokenizer_dir, tasks=("fp", "cg"), init_from=str(tokenizer_dir)), tmp_path / "c", cpu)


def test_init_from_accepts_a_tokenizer_whose_decoder_alone_differs(source_run, tokenizer_dir, tmp_path):
    """A decoder swapped in (`export --tokenizer`, e.g. a local one) leaves the tokens alone, so
    the transformer still applies; an encoder setting that changes the tokens is refused."""
    from magvit.core.tokenizer.loading import take_codes, tokenizer_state

    config = {k: v for k, v in TOKENIZER.items() if k != "kind"}
    local = magvit.registries().tokenizers.create("vq3d", **config, decoder_local=True)
    take_codes(local, tokenizer_state(str(source_run)), "the source's tokenizer")
    save_checkpoint(tmp_path / "local", 1, weights={"model": local.state_dict()}, state={})
    cpu = DistContext(torch.device("cpu"))
    swapped = _fine_tune(source_run, tokenizer_dir, tokenizer={"checkpoint": str(tmp_path / "local"),
                                                               "decoder_local": True})
    stage = TransformerStage(swapped, tmp_path / "ft", cpu)
    _assert_same_weights(stage.model.state_dict(), load_bundle(source_run).transformer.state_dict())
    assert stage.tokenizer.arch.decoder_local and stage.record["init_from"]["step"] == 2

    with pytest.raises(MagvitError, match=r"differs from this run in the tokenizer config \(set tokenizer.checkpoint"):
        TransformerStage(_fine_tune(source_run, tokenizer_dir, tokenizer={"padding": "zero"}), tmp_path / "z", cpu)


def test_init_from_problems_are_reported_before_training(tokenizer_dir, tmp_path):
    missing = experiment(tokenizer_dir, init_from=str(tmp_path / "nowhere"))
    assert experiment_problems(missing) == [
        f"train.init_from: {str(tmp_path / 'nowhere')!r} does not exist; give a stage-2 run, checkpoint "
        "or bundle (or `default`)"]
    stage1 = validate_experiment({**{k: v for k, v in raw_experiment(tokenizer_dir).items() if k not in ("transformer", "tasks", "commit")},
                                  "train": {"steps": 2, "init_from": "default"}})
    problems = experiment_problems(stage1)
    assert problems[0].startswith("train.init_from: 'default' starts a stage-2 run from a transformer; a tokenizer")
    assert "tokenizer.init" in problems[0] and "tokenizer.codes_from" in problems[0]


@pytest.mark.parametrize(("name", "tasks", "schedule"), [
    ("tiny", ALL_TASKS, "cosine"),
    ("tiny-fp", ("fp",), "cosine"),
    ("bair-mt8", ALL_TASKS[:8], "exp"),
    ("ucf101-cg", ("cg",), "cosine"),
    ("k600-fp", ("fp",), "linear"),
])
def test_shipped_stage2_experiments_follow_the_paper(name, tasks, schedule):
    from magvit.registry.experiment import load_experiment

    exp = load_experiment(name)
    assert tuple(exp.tasks) == tasks and exp.decoder.config.schedule.kind == schedule
    assert exp.transformer.kind == "bert" and exp.commit.label_smoothing == 1e-4
    assert exp.train.betas == (0.9, 0.96) and exp.train.weight_decay == 0.045
    assert exp.train.grad_clip == 1.0


def _train_in_process_group(raw, run_dir):
    train_transformer.train(validate_experiment(raw), run_dir)


@pytest.mark.slow
def test_two_ddp_ranks_train_like_one_process_on_the_global_batch(tokenizer_dir, tmp_path):
    from magvit.core.training.testing import run_ddp

    raw = raw_experiment(tokenizer_dir, tasks=("opc", "cg"), steps=3, checkpoint_every=1)
    raw["transformer"].update(dropout=0.0, attention_dropout=0.0)  # per-rank RNG streams differ
    train_transformer.train(validate_experiment(raw), tmp_path / "one")
    run_ddp(_train_in_process_group, 2, args=(raw, tmp_path / "two"))
    one, two = load_bundle(tmp_path / "one"), load_bundle(tmp_path / "two")
    earlier = load_bundle(tmp_path / "one" / "checkpoints" / "step-00000001")
    assert one.meta["step"] == two.meta["step"] == 3
    moved = 0.0
    for name, tensor in one.transformer.state_dict().items():
        torch.testing.assert_close(two.transformer.state_dict()[name], tensor, atol=2e-5, rtol=1e-4)
        moved = max(moved, (tensor - earlier.transformer.state_dict()[name]).abs().max().item())
    assert moved > 1e-3  # steps 2-3 changed the weights, so agreeing after them means something


def _dropout_free(tokenizer_dir, **train):
    raw = raw_experiment(tokenizer_dir, tasks=("fp", "cg", "opc"), steps=3, checkpoint_every=3,
                         grad_clip=0.0, **train)
    raw["transformer"].update(dropout=0.0, attention_dropout=0.0)
    raw["commit"]["memoize_tokens"] = False
    return validate_experiment(raw)


def test_four_accumulated_batches_of_two_give_the_update_of_one_batch_of_eight(tokenizer_dir, tmp_path):
    whole = train_transformer.train(_dropout_free(tokenizer_dir, batch_size=8), tmp_path / "b8", resume=False)
    parts = train_transformer.train(_dropout_free(tokenizer_dir, batch_size=2, accumulate=4), tmp_path / "b2x4",
                                    resume=False)
    smaller = train_transformer.train(_dropout_free(tokenizer_dir, batch_size=2), tmp_path / "b2", resume=False)
    a, b = load_bundle(whole).transformer.state_dict(), load_bundle(parts).transformer.state_dict()
    c = load_bundle(smaller).transformer.state_dict()
    worst = max((a[n] - b[n]).abs().max().item() for n in a)
    assert worst < 1e-6, f"weights differ by {worst:.2e} after 3 steps"
    assert max((a[n] - c[n]).abs().max().item() for n in a) > 1e-4  # the comparison can tell batches apart
    lines = [json.loads(line) for line in (tmp_path / "b2x4" / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "b8" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in lines] == pytest.approx([r["loss"] for r in reference], rel=1e-5)
    assert all(r["grad_norm"] > 0 for r in lines)
    resolved = (tmp_path / "b2x4" / "config.resolved.toml").read_text()
    assert "accumulate = 4" in resolved and "batch_size = 2" in resolved and "effective_batch = 8" in resolved


def _count_all_reduces(raw, run_dir):
    """Train under DDP and return how many gradient all-reduces ran (DDP's comm hook count)."""
    import torch.distributed as dist

    from magvit.core.training import distributed

    calls = []
    original = distributed.wrap_ddp

    def counting(model, ctx, **kwargs):
        wrapped = original(model, ctx, **kwargs)

        def hook(state, bucket):
            calls.append(1)
            work = dist.all_reduce(bucket.buffer().div_(ctx.world_size), async_op=True)
            return work.get_future().then(lambda fut: fut.value()[0])

        wrapped.register_comm_hook(None, hook)
        return wrapped

    import magvit.workflows.transformer_stage as stage

    stage.wrap_ddp = counting
    try:
        train_transformer.train(validate_experiment(raw), run_dir)
    finally:
        stage.wrap_ddp = original
    return len(calls)


@pytest.mark.slow
def test_ddp_accumulation_syncs_once_per_step_and_matches_one_process(tokenizer_dir, tmp_path):
    from magvit.core.training.testing import run_ddp

    raw = raw_experiment(tokenizer_dir, tasks=("opc", "cg"), steps=2, checkpoint_every=2, batch_size=2,
                         accumulate=4)
    raw["transformer"].update(dropout=0.0, attention_dropout=0.0)
    one = dict(raw, train={**raw["train"], "batch_size": 8, "accumulate": 1})
    train_transformer.train(validate_experiment(one), tmp_path / "one")
    counts = run_ddp(_count_all_reduces, 2, args=(raw, tmp_path / "two"))
    plain = run_ddp(_count_all_reduces, 2, args=(one, tmp_path / "plain"))
    a, b = load_bundle(tmp_path / "one"), load_bundle(tmp_path / "two")
    for name, tensor in a.transformer.state_dict().items():
        torch.testing.assert_close(b.transformer.state_dict()[name], tensor, atol=2e-5, rtol=1e-4)
    # 4 micro-batches per step, yet as many gradient all-reduces as without accumulation
    assert counts == plain and plain[0] >= 2


def test_warm_tokens_encode_every_clip_first_and_train_the_same_weights(tokenizer_dir, tmp_path, monkeypatch):
    cold = train_transformer.train(experiment(tokenizer_dir, tasks=("fp", "opc", "cg")), tmp_path / "cold",
                                   resume=False)
    raw = raw_experiment(tokenizer_dir, tasks=("fp", "opc", "cg"))
    raw["commit"]["warm_tokens"] = True
    encodes = []
    original_begin, original_step = TransformerStage.begin, TransformerStage.train_step

    def begin(self, start_step):
        original_begin(self, start_step)
        # the target and the two tasks with a condition, for each of the 16 training clips
        assert len(self.inputs.memo) == 16 * 3
        encode = self.tokenizer.encode
        monkeypatch.setattr(self.tokenizer, "encode", lambda v: encodes.append(len(v)) or encode(v))

    monkeypatch.setattr(TransformerStage, "begin", begin)
    monkeypatch.setattr(TransformerStage, "train_step", lambda self, step: original_step(self, step))
    warm = train_transformer.train(validate_experiment(raw), tmp_path / "warm", resume=False)
    assert encodes == []  # no training step had to wait on the tokenizer
    a, b = load_bundle(cold), load_bundle(warm)
    for name, tensor in a.transformer.state_dict().items():
        assert torch.equal(tensor, b.transformer.state_dict()[name]), name

    raw["commit"]["token_cache"] = str(tmp_path / "cache")  # the cache gives the targets: warm the conditions
    monkeypatch.setattr(TransformerStage, "begin", lambda self, start: (
        original_begin(self, start), memo_kinds.update(kind for kind, _ in self.inputs.memo._store)))
    memo_kinds = set()
    train_transformer.train(validate_experiment(raw), tmp_path / "cached", resume=False)
    assert memo_kinds == {"fp", "opc"}

    raw["commit"]["memoize_tokens"] = False
    with pytest.raises(MagvitError, match=r"commit.warm_tokens: warms the token memo, which is off; "
                                          r"set commit.memoize_tokens = true"):
        validate_experiment(raw)


def test_eval_ce_gives_the_runs_own_held_out_numbers(tokenizer_dir, tmp_path, capsys):
    from magvit.cli.main import main

    run = tmp_path / "run"
    exp = experiment(tokenizer_dir, eval_every=3, eval_batches=2, batch_size=2, steps=3)  # 4 eval clips, 2 batches
    train_transformer.train(exp, run, resume=False)
    expected = json.loads((run / "eval.json").read_text())

    def ce(*extra):
        out = tmp_path / f"eval{len(list(tmp_path.glob('eval*')))}"
        assert main(["eval", str(run), "--metrics", "ce", "--samples", "4", "--precision", "fp32",
                     "--output", str(out), *extra]) == 0
        return json.loads((out / "eval.json").read_text())

    report = ce("--seed", "3")  # the experiment's run.seed: its clips and its masks
    got = {task: row["ce"] for task, row in report["rows"].items()}
    assert got == pytest.approx(expected["masked_token_ce"], rel=1e-6)
    assert report["ce_mean"] == pytest.approx(expected["mean"], rel=1e-6)
    assert all(row["psnr"] is None and row["samples"] == 4 for row in report["rows"].values())
    table = capsys.readouterr().out
    assert f"{got['fp']:.3f}" in table and f"mean CE over the 10 task(s): {expected['mean']:.4f}" in table
    # a subset of the tasks keeps each task's own masks, so its numbers are the same
    subset = ce("--seed", "3", "--tasks", "cg,fp")
    assert list(subset["rows"]) == ["cg", "fp"]
    assert {t: r["ce"] for t, r in subset["rows"].items()} == pytest.approx({t: got[t] for t in ("cg", "fp")}, rel=1e-6)
    other = ce("--seed", "4")  # other clips and masks: other numbers
    assert all(other["rows"][t]["ce"] != pytest.approx(got[t], rel=1e-6) for t in ("fp", "opc", "cg"))


def test_eval_ce_refuses_a_protocol_and_a_tokenizer_run(tokenizer_dir, tmp_path, capsys):
    from magvit.cli.main import main

    videos = tmp_path / "videos"
    videos.mkdir()
    assert main(["eval", str(tokenizer_dir), "--metrics", "ce"]) == 2
    assert "CE scores a transformer" in capsys.readouterr().err
    run = tmp_path / "run"
    train_transformer.train(experiment(tokenizer_dir, steps=2), run, resume=False)
    assert main(["eval", str(run), "--metrics", "psnr,ce", "--protocol", "ucf101", "--data", str(videos)]) == 2
    err = capsys.readouterr().err
    assert "CE scores the model's tokens on the clips: drop ce from --metrics, or --protocol" in err
    assert "Traceback" not in err
