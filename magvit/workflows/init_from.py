"""`train.init_from`: a stage-2 run that starts from another run's transformer (fine-tuning).

Only the weights carry over; the optimiser, schedule and step start afresh. The source must
have been trained on the same tokens (the same encoder and quantizer, in settings and weights,
wherever this run loads them from; the decoder may differ, e.g. one swapped in by `export
--tokenizer`) with the same vocabulary, tasks and latent grid, or its weights would mean
something else here. A resumed run neither loads nor checks the source, and keeps the record in
its checkpoint (`train_transformer`): its weights came from there, whatever the source is now.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from magvit.core.tokenizer.loading import code_settings_differ, code_tensors
from magvit.core.training.checkpoint import checkpoint_manifest, load_weights
from magvit.errors import MagvitError
from magvit.workflows.bundle import read_bundle_record

# bundle.json keys that must agree between the source and this run.
TOKENIZER_FIX = "set tokenizer.checkpoint to the tokenizer it was trained with; its bundle works too"
MUST_MATCH = {
    "tokenizer": f"the tokenizer config ({TOKENIZER_FIX})",
    "vocabulary": "the vocabulary (codebook size, classes, tasks)",
    "task_names": "the tasks (keep [tasks] as it was trained; only weights may change)",
    "latent_shape": "the latent grid (clip size and tokenizer)",
}


def init_transformer(model: nn.Module, tokenizer: nn.Module, source: str,
                     record: dict[str, Any]) -> dict[str, Any]:
    """Load the transformer weights of the stage-2 checkpoint `source` into `model`, after
    checking it against this run's `tokenizer` and bundle `record`; returns where they came from."""
    path, saved = read_bundle_record(source)
    differ = [why for key, why in MUST_MATCH.items() if _differs(key, saved.get(key), record.get(key))]
    if not differ and not _same_codes(load_weights(path, "tokenizer", fallback=None), tokenizer.state_dict()):
        differ.append(f"the tokenizer weights ({TOKENIZER_FIX})")
    if differ:
        raise MagvitError(
            f"train.init_from: {source!r} differs from this run in {'; '.join(differ)}. Start from a "
            "run of this experiment, or clear train.init_from to train from scratch"
        )
    try:
        model.load_state_dict(load_weights(path, "model", fallback=None))
    except RuntimeError as exc:
        raise MagvitError(
            f"train.init_from: the transformer in {path} does not fit this one "
            f"({str(exc).splitlines()[-1].strip()}); keep [transformer] as it was trained"
        ) from None
    return {"source": source, "path": str(path), "step": int(checkpoint_manifest(path)["step"])}


def _differs(key: str, saved: Any, mine: Any) -> bool:
    if key == "tokenizer" and isinstance(saved, dict) and isinstance(mine, dict):
        return bool(code_settings_differ(saved, mine))  # the decoder may differ: same tokens
    return saved != mine


def _same_codes(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two tokenizer states hold the same encoder and quantizer (the tokens' makers)."""
    a, b = code_tensors(a), code_tensors(b)
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
