"""The training clips of stage 2, optionally paired with remembered or cached target tokens.

Both wrappers key items by their dataset index and do not forward `set_epoch`: a dataset that
samples a new random clip per epoch (video_folder) then keeps its epoch-0 clips, so a clip and
its remembered or cached tokens always belong together.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from magvit.core.data.token_cache import META_FILE, TokenCache, build_token_cache
from magvit.core.training import DistContext, barrier
from magvit.errors import MagvitError


class WithIndex(Dataset):
    """Items carry their dataset index (the key of the token memo)."""

    def __init__(self, items: Dataset):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return {**self.items[index], "index": index}


class CachedTargets(Dataset):
    """Clips paired with their cached target tokens (the clips still give the conditions)."""

    def __init__(self, clips: Dataset, cache: TokenCache):
        if len(clips) != len(cache):
            raise MagvitError(
                f"token cache {cache.path} holds {len(cache)} clips but the dataset has "
                f"{len(clips)}; delete the cache to rebuild it for this dataset"
            )
        self.clips, self.cache = clips, cache

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        return {**self.clips[index], "tokens": self.cache[index]["tokens"], "index": index}


def training_clips(
    clips: Dataset, *, memoize: bool, token_cache: str, tokenizer, fingerprint: str,
    ctx: DistContext, batch_size: int,
) -> Dataset:
    """`clips` as stage 2 reads them; a missing `token_cache` is built first (by rank 0)."""
    if not token_cache:
        return WithIndex(clips) if memoize else clips
    if hasattr(clips, "set_epoch"):
        clips.set_epoch(0)
    if ctx.is_main and not (Path(token_cache) / META_FILE).is_file():
        build_token_cache(tokenizer, clips, token_cache, batch_size=batch_size)
    barrier(ctx)
    return CachedTargets(clips, TokenCache(token_cache, expected_fingerprint=fingerprint))
