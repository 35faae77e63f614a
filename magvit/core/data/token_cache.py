"""Tokenize a dataset once, keep the tokens for stage 2.

A cache is a folder of safetensors shards (`tokens` int16, uint16 or int32 `(n, t, h, w)`, the narrowest that holds the codebook, `labels` int64
`(n,)`) and a `meta.json` written last, holding the tokenizer's fingerprint, the latent shape and
the codebook size. Reading checks the fingerprint, so tokens from another tokenizer (other weights
or config) are refused instead of silently training on the wrong codes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import attrs
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from magvit.core.tokens import token_dtype
from magvit.errors import MagvitError

FORMAT_VERSION = 1
META_FILE = "meta.json"


def tokenizer_fingerprint(tokenizer: torch.nn.Module) -> str:
    """16 hex chars of sha256 over the class name, its config and every state_dict tensor."""
    digest = hashlib.sha256()
    cls = type(tokenizer)
    digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    digest.update(_config_text(getattr(tokenizer, "config", None)).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _config_text(config) -> str:
    if attrs.has(type(config)):
        config = attrs.asdict(config)
    return json.dumps(config, sort_keys=True, default=repr)


def build_token_cache(
    tokenizer: torch.nn.Module,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    shard_size: int = 1024,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Encode every item of `dataset` (in order) with `tokenizer` into a cache at `out_dir`."""
    out = Path(out_dir)
    if (out / META_FILE).exists() and not overwrite:
        raise MagvitError(f"a token cache already exists at {out}; pass overwrite=True or pick another folder")
    if batch_size < 1 or shard_size < 1:
        raise MagvitError(f"batch_size and shard_size must be positive, got {batch_size} and {shard_size}")
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)  # a half-rebuilt cache must not look complete
    for old in out.glob("tokens-*.safetensors"):
        old.unlink()
    codebook_size = int(tokenizer.codebook_size)
    dtype = token_dtype(codebook_size)
    writer = _ShardWriter(out, shard_size, dtype)
    device = next(tokenizer.parameters(), torch.empty(0)).device
    was_training = tokenizer.training
    tokenizer.eval()
    latent_shape = None
    try:
        with torch.inference_mode():
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
            for batch in tqdm(loader, desc="tokenizing", unit="batch", disable=not progress):
                tokens = tokenizer.encode(batch["video"].to(device)).cpu()
                if tokens.min() < 0 or tokens.max() >= codebook_size:
                    raise ValueError(f"tokenizer produced codes outside [0, {codebook_size})")
                latent_shape = list(tokens.shape[1:])
                writer.add(tokens, torch.as_tensor(batch["label"]).long())
    finally:
        tokenizer.train(was_training)
    if latent_shape is None:
        raise MagvitError("cannot build a token cache from an empty dataset")
    writer.close()
    meta = {
        "format": FORMAT_VERSION,
        "fingerprint": tokenizer_fingerprint(tokenizer),
        "tokenizer": type(tokenizer).__qualname__,
        "codebook_size": codebook_size,
        "latent_shape": latent_shape,
        "dtype": str(dtype).removeprefix("torch."),
        "num_items": sum(s["items"] for s in writer.shards),
        "shard_size": shard_size,
        "shards": writer.shards,
    }
    temp = out / (META_FILE + ".tmp")
    temp.write_text(json.dumps(meta, indent=2))
    os.replace(temp, out / META_FILE)
    return out


class TokenCache(Dataset):
    """A token cache as a Dataset of `{"tokens": (t, h, w) int64, "label": int}`.

    With `expected_fingerprint` (`tokenizer_fingerprint(tokenizer)`), a cache made by another
    tokenizer is refused with both fingerprints named.
    """

    def __init__(self, path: str | Path, expected_fingerprint: str | None = None):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise MagvitError(
                f"no token cache at {self.path} ({META_FILE} is missing; an interrupted build "
                f"leaves none): build it with build_token_cache"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise MagvitError(
                f"token cache {self.path} has format {meta.get('format')!r}, this version reads "
                f"{FORMAT_VERSION}; rebuild the cache"
            )
        if expected_fingerprint is not None and meta["fingerprint"] != expected_fingerprint:
            raise MagvitError(
                f"token cache {self.path} was built by tokenizer {meta['fingerprint']} "
                f"({meta['tokenizer']}), but the current tokenizer is {expected_fingerprint}; "
                f"rebuild the cache with this tokenizer (delete {self.path} or build into "
                f"another folder)"
            )
        self.fingerprint: str = meta["fingerprint"]
        self.codebook_size: int = meta["codebook_size"]
        self.latent_shape: tuple[int, int, int] = tuple(meta["latent_shape"])
        self.shard_size: int = meta["shard_size"]
        self.shards: list[dict] = meta["shards"]
        self._num_items: int = meta["num_items"]
        self._loaded: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self._num_items

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for token cache {self.path} of {len(self)}")
        shard, offset = divmod(index, self.shard_size)
        data = self._shard(shard)
        return {"tokens": data["tokens"][offset].long(), "label": int(data["labels"][offset])}

    def _shard(self, shard: int) -> dict[str, torch.Tensor]:
        if shard not in self._loaded:
            file = self.path / self.shards[shard]["file"]
            if not file.is_file():
                raise MagvitError(f"token cache {self.path} is incomplete: {file.name} is missing; rebuild it")
            self._loaded[shard] = load_file(str(file))
        return self._loaded[shard]


class _ShardWriter:
    """Collects encoded batches and writes a shard each time `shard_size` items are pending."""

    def __init__(self, out: Path, shard_size: int, dtype: torch.dtype):
        self.out, self.shard_size, self.dtype = out, shard_size, dtype
        self.shards: list[dict] = []
        self.tokens: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def add(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        self.tokens.append(tokens.to(self.dtype))
        self.labels.append(labels)
        while sum(len(t) for t in self.labels) >= self.shard_size:
            self._write(self.shard_size)

    def close(self) -> None:
        if self.labels:
            self._write(sum(len(t) for t in self.labels))

    def _write(self, count: int) -> None:
        tokens, labels = torch.cat(self.tokens), torch.cat(self.labels)
        name = f"tokens-{len(self.shards):05d}.safetensors"
        save_file({"tokens": tokens[:count].contiguous(), "labels": labels[:count].contiguous()},
                  str(self.out / name))
        self.shards.append({"file": name, "items": count})
        self.tokens, self.labels = [tokens[count:]], [labels[count:]]
        if not len(labels[count:]):
            self.tokens, self.labels = [], []
