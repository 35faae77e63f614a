"""Loading tokenizer weights: a trained checkpoint, or a 2D-VQ checkpoint inflated to 3D."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from magvit.errors import MagvitError


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise MagvitError(
            f"tokenizer weights in {source} do not fit this model (missing "
            f"{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]}); set the "
            "[tokenizer] preset and overrides the checkpoint was trained with"
        )


def load_tokenizer_weights(model: nn.Module, checkpoint: str) -> None:
    """Load a run's weights into `model`, the EMA weights when the checkpoint has them; from a
    stage-2 checkpoint (a bundle), the tokenizer it holds."""
    try:
        load_state(model, tokenizer_state(checkpoint), checkpoint)
    except RuntimeError as exc:  # shape mismatch
        raise MagvitError(
            f"tokenizer weights in {checkpoint} do not fit this model: {str(exc).splitlines()[-1]}; "
            "set the [tokenizer] preset and overrides the checkpoint was trained with"
        ) from None


def tokenizer_state(checkpoint: str) -> dict[str, torch.Tensor]:
    """The tokenizer weights of a stage-1 run (its EMA weights when it has them) or of a stage-2
    checkpoint or bundle (the tokenizer it holds; its "model" is the transformer)."""
    from magvit.core.training.checkpoint import checkpoint_manifest, load_weights

    bundle = "tokenizer" in checkpoint_manifest(checkpoint)["groups"]
    group, fallback = ("tokenizer", None) if bundle else ("ema", "model")
    return load_weights(checkpoint, group=group, fallback=fallback)


@torch.no_grad()
def inflate_state(model: nn.Module, state_2d: dict[str, torch.Tensor],
                  inflate: Callable[[torch.Tensor, int], torch.Tensor], source: str) -> None:
    """Copy a 2D-VQ state into a 3D model; conv kernels `(O, I, 1, k, k)` become `(O, I, kT, k, k)`.

    `inflate(weight_2d (O, I, kH, kW), kT)` is an `inflations` plugin (central or average).
    """
    target = model.state_dict()
    state = {}
    for name, value in state_2d.items():
        want = target.get(name)
        if want is not None and value.dim() == 5 and want.shape != value.shape:
            if value.shape[2] != 1 or want.shape[:2] + want.shape[3:] != value.shape[:2] + value.shape[3:]:
                raise MagvitError(
                    f"cannot inflate {name} from {source}: its kernel {tuple(value.shape)} is not "
                    f"the 2D form (O, I, 1, k, k) of {tuple(want.shape)}; train the vq2d model "
                    "with the same preset and overrides"
                )
            value = inflate(value[:, :, 0], want.shape[2])
        state[name] = value
    load_state(model, state, source)


# The parts that turn pixels into tokens; the decoder may change without changing a token.
CODE_PARTS = ("encoder", "quantizer")
# [tokenizer] settings that leave its tokens alone: where weights come from, the decoder's shape.
DECODER_ONLY_FIELDS = ("checkpoint", "init", "codes_from", "keep_decoder", "decoder_channels",
                       "decoder_res_blocks", "decoder_local", "decoder_context", "decoder_local_time")


def code_settings_differ(a: dict, b: dict) -> list[str]:
    """The [tokenizer] settings (as saved dicts) in which `a` and `b` would encode other tokens;
    a setting missing from one (saved before it existed) counts as None, its default."""
    return sorted(k for k in (a.keys() | b.keys()) - set(DECODER_ONLY_FIELDS) if a.get(k) != b.get(k))


def code_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder and quantizer entries of a tokenizer state (what decides its tokens)."""
    return {k: v for k, v in state.items() if k.split(".")[0] in CODE_PARTS}


def _code_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{part}.{k}": v for part in CODE_PARTS for k, v in getattr(model, part).state_dict().items()}


@torch.no_grad()
def take_codes(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy the encoder and quantizer of a trained tokenizer's `state` into `model` and freeze
    them, so `model` encodes exactly the tokens `source` does and only its decoder trains."""
    want = _code_state(model)
    # ... and nothing more: a learned downsample this model lacks would encode other tokens
    missing, wrong, extra = _misfits(want, state, CODE_PARTS)
    if missing or wrong or extra:
        raise MagvitError(
            f"tokenizer.codes_from: the encoder and quantizer in {source} do not fit this model "
            f"(missing {missing[:4]}, other shapes {wrong[:4]}, not in this model {extra[:4]}); "
            "keep every [tokenizer] setting it was trained with and change only the decoder's "
            "(decoder_channels, decoder_res_blocks, decoder_local, decoder_context, decoder_local_time)"
        )
    _copy(want, state)
    freeze_codes(model)


@torch.no_grad()
def take_decoder(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy the decoder of a trained tokenizer's `state` into `model` (`keep_decoder`), to train
    it further on that tokenizer's codes."""
    want = {f"decoder.{k}": v for k, v in model.decoder.state_dict().items()}
    missing, wrong, extra = _misfits(want, state, ("decoder",))
    if missing or wrong or extra:
        raise MagvitError(
            f"tokenizer.keep_decoder: the decoder in {source} does not fit this model (missing "
            f"{missing[:4]}, other shapes {wrong[:4]}, not in this model {extra[:4]}); keep its "
            "decoder settings (decoder_channels, decoder_res_blocks, decoder_local, decoder_context, "
            "decoder_local_time), or set keep_decoder = false to train a new decoder"
        )
    _copy(want, state)


def _misfits(want: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
             parts: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """The keys of `want` that `state` lacks, those it holds in another shape, and its keys of
    `parts` that `want` lacks."""
    missing = sorted(k for k in want if k not in state)
    wrong = sorted(k for k in want if k in state and state[k].shape != want[k].shape)
    extra = sorted(k for k in state if k.split(".")[0] in parts and k not in want)
    return missing, wrong, extra


def _copy(want: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    for key, value in want.items():
        value.copy_(state[key])


def freeze_codes(model: nn.Module) -> None:
    for part in CODE_PARTS:
        getattr(model, part).requires_grad_(False)


def code_differences(a: nn.Module, b: nn.Module) -> list[str]:
    """The names of the encoder and quantizer parameters in which `a` and `b` differ: [] when they
    encode alike (given equal encoder settings)."""
    pa = {f"{part}.{k}": v for part in CODE_PARTS for k, v in getattr(a, part).named_parameters()}
    pb = {f"{part}.{k}": v for part in CODE_PARTS for k, v in getattr(b, part).named_parameters()}
    return sorted(k for k in pa.keys() | pb.keys()
                  if k not in pa or k not in pb or pa[k].shape != pb[k].shape or not torch.equal(pa[k], pb[k]))
