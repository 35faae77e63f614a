import json

import attrs
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from magvit.core.data.synthetic import SyntheticShapes
from magvit.core.data.token_cache import TokenCache, build_token_cache, tokenizer_fingerprint
from magvit.errors import MagvitError


@attrs.define
class StandInConfig:
    codebook_size: int = 16
    factors: tuple[int, int, int] = (2, 4, 4)


class StandInTokenizer(nn.Module):
    """Average-pool to the latent grid, then the nearest colour in a random codebook."""

    def __init__(self, config: StandInConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config = config or StandInConfig()
        self.codebook_size = config.codebook_size
        self.factors = config.factors
        g = torch.Generator().manual_seed(seed)
        self.codebook = nn.Parameter(torch.rand(config.codebook_size, 3, generator=g))

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        latent = F.avg_pool3d(video, self.factors).movedim(1, -1)  # (B, t, h, w, 3)
        return torch.cdist(latent.reshape(-1, 3), self.codebook).argmin(1).reshape(latent.shape[:-1])


@pytest.fixture
def dataset():
    return SyntheticShapes(frames=4, resolution=16, eval_clips=10).make("eval", seed=0)


def test_cache_holds_the_tokens_and_labels_in_order(tmp_path, dataset):
    tokenizer = StandInTokenizer()
    path = build_token_cache(tokenizer, dataset, tmp_path / "cache", batch_size=3, shard_size=4,
                             progress=False)
    meta = json.loads((path / "meta.json").read_text())
    assert [s["items"] for s in meta["shards"]] == [4, 4, 2]
    assert (meta["codebook_size"], meta["latent_shape"], meta["dtype"]) == (16, [2, 4, 4], "int16")
    cache = TokenCache(path, expected_fingerprint=tokenizer_fingerprint(tokenizer))
    assert len(cache) == 10 and cache.latent_shape == (2, 4, 4) and cache.codebook_size == 16
    for i in range(10):
        item = dataset[i]
        expected = tokenizer.encode(item["video"][None])[0]
        assert cache[i]["tokens"].dtype == torch.int64
        assert torch.equal(cache[i]["tokens"], expected)
        assert cache[i]["label"] == item["label"]
    assert len({int(cache[i]["tokens"].unique().numel()) for i in range(10)}) > 1
    with pytest.raises(IndexError, match="item 10 out of range"):
        cache[10]


def test_fingerprint_follows_class_config_and_weights():
    a, b = StandInTokenizer(), StandInTokenizer()
    fingerprint = tokenizer_fingerprint(a)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert tokenizer_fingerprint(b) == fingerprint
    assert tokenizer_fingerprint(StandInTokenizer(seed=1)) != fingerprint
    assert tokenizer_fingerprint(StandInTokenizer(StandInConfig(factors=(1, 4, 4)))) != fingerprint
    with torch.no_grad():
        b.codebook[0, 0] += 1e-6
    assert tokenizer_fingerprint(b) != fingerprint


def test_cache_from_another_tokenizer_is_refused(tmp_path, dataset):
    path = build_token_cache(StandInTokenizer(seed=1), dataset, tmp_path / "c", batch_size=5,
                             shard_size=8, progress=False)
    made, current = tokenizer_fingerprint(StandInTokenizer(seed=1)), tokenizer_fingerprint(StandInTokenizer())
    with pytest.raises(MagvitError) as info:
        TokenCache(path, expected_fingerprint=current)
    message = str(info.value)
    assert made in message and current in message and "rebuild the cache" in message


def test_missing_or_partial_caches(tmp_path, dataset):
    with pytest.raises(MagvitError, match=r"no token cache at .*meta\.json is missing"):
        TokenCache(tmp_path / "empty")
    path = build_token_cache(StandInTokenizer(), dataset, tmp_path / "c", batch_size=4,
                             shard_size=4, progress=False)
    (path / "tokens-00001.safetensors").unlink()
    cache = TokenCache(path)
    assert cache[3]["tokens"].shape == (2, 4, 4)
    with pytest.raises(MagvitError, match="incomplete: tokens-00001.safetensors is missing; rebuild it"):
        cache[4]


def test_existing_cache_needs_overwrite(tmp_path, dataset):
    tokenizer = StandInTokenizer()
    tokenizer.train()
    build_token_cache(tokenizer, dataset, tmp_path / "c", batch_size=4, shard_size=3, progress=False)
    assert tokenizer.training  # mode restored
    with pytest.raises(MagvitError, match="already exists .*overwrite=True"):
        build_token_cache(tokenizer, dataset, tmp_path / "c", batch_size=4, shard_size=4, progress=False)
    build_token_cache(tokenizer, dataset, tmp_path / "c", batch_size=4, shard_size=8,
                      progress=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "meta.json", "tokens-00000.safetensors", "tokens-00001.safetensors"]


@pytest.mark.parametrize("codes, dtype", [(40000, "uint16"), (2**18, "int32")])
def test_large_codebooks_use_the_narrowest_wider_type(tmp_path, dataset, codes, dtype):
    tokenizer = StandInTokenizer(StandInConfig(codebook_size=codes))
    path = build_token_cache(tokenizer, dataset, tmp_path / "c", batch_size=10, shard_size=10,
                             progress=False)
    assert json.loads((path / "meta.json").read_text())["dtype"] == dtype
    assert torch.equal(TokenCache(path)[0]["tokens"], tokenizer.encode(dataset[0]["video"][None])[0])
