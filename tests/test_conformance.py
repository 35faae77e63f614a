"""Every registered component of every kind passes magvit.testing's check for its kind, and
the checks catch components that break the rules."""

from __future__ import annotations

import importlib.util

import attrs
import pytest
import torch
from torch import nn

import magvit
from magvit.core.video_io import write_video
from magvit.errors import ConfigError
from magvit.plugins.tasks import FramePrediction
from magvit.registry import KINDS
from magvit.testing import (
    CHECKS,
    check_attention,
    check_config,
    check_dataset,
    check_decoder,
    check_padding,
    check_perceptual_loss,
    check_registered,
    check_schedule,
    check_task,
    check_tokenizer,
    check_transformer,
)

REGISTERED = [(kind, name) for kind in KINDS for name in magvit.registries()[kind].names()]

# Small configs for the components whose defaults are paper-sized or need files.
SMALL = {
    "tokenizers": {"preset": "tiny"},
    "transformers": {"preset": "tiny", "vocab_size": 40, "num_positions": 18, "codebook_size": 32},
    ("datasets", "synthetic"): {"frames": 4, "resolution": 16},
    ("datasets", "video_folder"): {"frames": 4, "resolution": 16},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A two-class folder of videos and a VGG16 weights file of random values."""
    from safetensors.torch import save_file

    from magvit.core.losses.perceptual import VGG16_LAYERS

    root = tmp_path_factory.mktemp("conformance")
    clip = torch.rand(3, 6, 20, 24, generator=torch.Generator().manual_seed(0))
    for name in ("a/a0.mp4", "b/b0.mp4", "b/b1.mp4"):
        write_video(root / "videos" / name, clip)
    torch.manual_seed(0)
    state = {}
    for index, (c_in, c_out) in VGG16_LAYERS.items():
        conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = conv.weight.data, conv.bias.data
    save_file(state, root / "vgg16.safetensors")
    return {("datasets", "video_folder"): {"path": str(root / "videos")},
            ("perceptual_losses", "vgg16"): {"weights": str(root / "vgg16.safetensors")}}


def test_every_kind_has_a_check_and_every_builtin_is_checked():
    assert set(CHECKS) == set(KINDS)
    names = {kind: {n for k, n in REGISTERED if k == kind} for kind in KINDS}
    assert names["tasks"] >= {"fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp"}
    assert names["schedules"] >= {"cosine", "linear", "pow", "log", "exp"}
    assert names["paddings"] >= {"edge", "interpolate", "zero"}
    assert names["inflations"] >= {"central", "average"}
    assert names["tokenizers"] >= {"vq3d", "vq2d"} and names["transformers"] >= {"bert"}
    assert names["quantizers"] >= {"vq", "lfq", "fsq"}
    assert names["decoders"] >= {"commit", "maskgit", "autoregressive"}
    assert names["attentions"] >= {"sdpa", "math", "xformers"}
    assert names["datasets"] >= {"synthetic", "video_folder"} and names["perceptual_losses"] >= {"vgg16"}
    assert names["loggers"] >= {"jsonl", "tensorboard", "wandb"} and names["feature_extractors"] >= {"i3d"}


@pytest.mark.parametrize("kind,name", REGISTERED, ids=[f"{k}.{n}" for k, n in REGISTERED])
def test_registered_plugin_conforms(kind, name, files):
    if (kind, name) == ("attentions", "xformers") and importlib.util.find_spec("xformers") is None:
        pytest.skip("xformers is not installed (CUDA only)")
    package = {("loggers", "tensorboard"): "tensorboard", ("loggers", "wandb"): "wandb"}.get((kind, name))
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (extra magvit[{package}])")
    config = {**SMALL.get(kind, {}), **SMALL.get((kind, name), {}), **files.get((kind, name), {})}
    check_registered(kind, name, **config)


def test_every_number_a_builtin_config_takes_is_checked():
    """A number no built-in component can use (a negative width, dropout 1.5, a NaN weight)
    fails validation under its dotted path, not later inside torch: check_config passes on
    every built-in schema (check_registered runs it too; this walk counts what it covered)."""
    checked, problems = 0, []
    for kind in KINDS:
        for entry in magvit.registries()[kind].entries():
            factory = entry.factory
            if entry.plugin.distribution != "magvit" or entry.name == "xformers":  # needs CUDA
                continue
            if not (attrs.has(factory) or attrs.has(getattr(factory, "Config", None) or object)):
                continue  # vgg16: its config is a weights path read from the signature
            required = {"path": "videos"} if entry.name == "video_folder" else {}
            try:
                checked += len(check_config(factory, who=f"{kind}.{entry.name}", **required))
            except AssertionError as exc:
                problems.append(str(exc))
    assert problems == [] and checked > 90


@attrs.define(kw_only=True)
class _Sizes:
    width: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    depth: int = 2
    rate: float = attrs.field(default=0.5, validator=attrs.validators.instance_of(float))


def test_check_config_names_unchecked_numbers_and_a_nan_that_passes():
    with pytest.raises(AssertionError, match=r"^sizes: number fields without a validator: depth \(a negative"):
        check_config(_Sizes, who="sizes")
    nan_passes = attrs.make_class("NanPasses", {
        "depth": attrs.field(default=2, validator=attrs.validators.ge(1), type=int),
        "rate": attrs.field(default=0.5, validator=attrs.validators.instance_of(float), type=float)})
    with pytest.raises(AssertionError, match=r"^sizes: rate = nan passed its validator$"):
        check_config(nan_passes, who="sizes")
    checked = attrs.make_class("Checked", {
        "depth": attrs.field(default=2, validator=attrs.validators.ge(1), type=int),
        "rate": attrs.field(default=0.5, validator=magvit.api.finite, type="float | None"),
        "label": attrs.field(default="x", type=str)})
    assert check_config(checked, who="sizes") == ["depth", "rate"]


def test_check_config_wants_a_declared_schema_and_a_valid_given_config():
    def signature_only(sharpness: float = 1.0):
        return sharpness

    with pytest.raises(AssertionError, match="sigmoid: declare the config as an attrs class"):
        check_config(signature_only, who="sigmoid")
    required = attrs.make_class("Required", {"path": attrs.field(type=str)})
    with pytest.raises(ConfigError, match=r"data\.path: required key is missing$"):
        check_config(required, who="data")
    assert check_config(required, who="data", path="videos") == []


@pytest.mark.parametrize("padding", ["edge", "interpolate", "zero"])
@pytest.mark.parametrize("task", ["fp", "fi", "opc", "ipc", "ipd"])
def test_every_padding_fits_every_kind_of_region(task, padding):
    check_task(magvit.registries().tasks.create(task, padding=padding))


def test_check_schedule_catches_a_schedule_that_never_reaches_zero():
    with pytest.raises(AssertionError, match=r"schedule: gamma\(1\) must be 1e-6 \(zero\), got 0.5"):
        check_schedule(lambda r: 1.0 - 0.5 * r if isinstance(r, float) else 1.0 - 0.5 * r.float())


def test_check_schedule_catches_a_rising_schedule():
    def rising(r):
        r = torch.as_tensor(r, dtype=torch.float32)
        out = torch.where(r < 0.5, 1 - r, torch.where(r < 0.9, 0.9 - r + 0.2, 1e-6 + 0 * r)).clamp(1e-6, 1)
        return out if r.dim() else float(out)

    with pytest.raises(AssertionError, match="must not increase; it does after r="):
        check_schedule(rising)


def test_check_padding_catches_a_padding_that_blurs_condition_pixels():
    with pytest.raises(AssertionError, match="padding: random mask: changed a condition pixel"):
        check_padding(lambda video, mask: video * 0.99)


@attrs.define
class LeakyTask(FramePrediction):
    name = "leaky"

    def condition(self, video):
        padded, mask = super().condition(video)
        return padded + 1e-3, mask


def test_check_task_catches_a_task_that_changes_its_condition():
    with pytest.raises(AssertionError, match="task leaky: condition\\(\\) changed a condition pixel"):
        check_task(LeakyTask())


def test_check_tokenizer_catches_a_bf16_loss_and_out_of_range_ids():
    tokenizer = magvit.registries().tokenizers.create("vq3d", preset="tiny")
    original = tokenizer.forward

    def low_precision(video):
        recon, aux = original(video)
        return recon, {**aux, "quantizer_loss": aux["quantizer_loss"].bfloat16()}

    tokenizer.forward = low_precision
    with pytest.raises(AssertionError, match=r"aux\['quantizer_loss'\] must be a finite float32 under bf16"):
        check_tokenizer(tokenizer)
    tokenizer = magvit.registries().tokenizers.create("vq3d", preset="tiny")
    tokenizer.encode = lambda video: torch.full((2, 2, 2, 2), 10_000)
    with pytest.raises(AssertionError, match=r"ids must lie in \[0, 512\)"):
        check_tokenizer(tokenizer)


class PeekingTransformer(nn.Module):
    """Logits of a position depend on the next token, even when asked to be causal."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(40, 32)

    def forward(self, ids, *, causal=False):
        h = self.embed(ids)
        peek = h + h.roll(-1, dims=1)  # the leak: position i reads token i + 1
        return peek if causal else peek + h.mean(dim=1, keepdim=True)


def test_check_transformer_catches_a_causal_leak():
    with pytest.raises(AssertionError, match="causal=True: a position saw a later token"):
        check_transformer(PeekingTransformer(), vocab_size=40, num_positions=6, codebook_size=32)
    with pytest.raises(AssertionError, match=r"logits must be \(2, 6, 16\)"):
        check_transformer(PeekingTransformer(), vocab_size=40, num_positions=6, codebook_size=16)


def test_check_decoder_catches_a_decoder_that_ignores_the_model():
    @attrs.define
    class Lazy:
        codebook_size: int = 16

        def decode(self, logits_fn, cond_tokens, cond_mask, generator=None, uncond_logits_fn=None):
            logits_fn(cond_tokens)
            return cond_tokens.clone()

    with pytest.raises(AssertionError, match="a model certain of every token must get those tokens"):
        check_decoder(Lazy())


def test_check_attention_catches_a_wrong_scale_and_a_top_left_causal_mask():
    with pytest.raises(AssertionError, match="differs from softmax attention \\(q_len=6, k_len=6, causal=False\\)"):
        check_attention(lambda q, k, v, causal, dropout: torch.softmax(q @ k.transpose(-2, -1), -1) @ v)

    def top_left(q, k, v, causal, dropout):
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril() if causal else None
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    with pytest.raises(AssertionError, match="q_len=2, k_len=6, causal=True"):
        check_attention(top_left)


def test_check_dataset_catches_values_out_of_range():
    synthetic = magvit.registries().datasets.create("synthetic", frames=4, resolution=16)

    @attrs.define
    class Bright:
        num_classes: int = synthetic.num_classes
        frames: int = 4
        resolution: int = 16

        def make(self, split, seed=0):
            return [{"video": item["video"] * 2, "label": item["label"]} for item in synthetic.make(split, seed)]

    check_dataset(synthetic)
    with pytest.raises(AssertionError, match="train video values must lie in \\[0, 1\\]"):
        check_dataset(Bright())


def test_check_perceptual_loss_catches_a_loss_without_gradients():
    def detached(video, target):
        return (video.detach().float() - target.float()).abs().mean()

    with pytest.raises(AssertionError, match="must pass finite, non-zero gradients"):
        check_perceptual_loss(detached)
