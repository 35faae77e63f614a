"""Where `Pipeline.from_pretrained` finds a model: a local folder (an export, a run, `default`)
or a hub id (`owner/name`) fetched by `huggingface_hub` into its cache (extra `magvit[hub]`;
with `HF_HUB_OFFLINE=1` only the local cache is read)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from magvit.errors import MagvitError
from magvit.weights import is_default, resolve_model_path

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def pretrained_path(name: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The local folder of `name`: the path itself when it exists, else the hub snapshot."""
    if is_default(name) or Path(name).exists():
        return Path(resolve_model_path(name))
    text = str(name)
    if not HUB_ID.match(text):
        raise MagvitError(f"{text!r} is neither a folder nor a hub id like 'owner/model-name'")
    if importlib.util.find_spec("huggingface_hub") is None:
        raise MagvitError(f"{text!r} is not a folder here; to fetch it from the hub install "
                          "huggingface_hub: pip install 'magvit[hub]'")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=text, revision=revision,
                                      cache_dir=str(cache_dir) if cache_dir else None))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo and cache misses alike
        raise MagvitError(
            f"cannot get {text!r} from the hub ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check the id, your network or login, or use a local folder (HF_HUB_OFFLINE=1 reads "
            "only the local cache)"
        ) from None
