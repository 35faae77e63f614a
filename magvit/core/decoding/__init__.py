"""Token decoders as pure functions of a `logits_fn` (SPEC §3, §4): COMMIT, MaskGIT and
autoregressive. The registry plugins in `magvit.plugins.decoders` wrap them with configs."""

from magvit.core.decoding.autoregressive import AutoregressiveSteps, autoregressive_decode
from magvit.core.decoding.commit import commit_decode
from magvit.core.decoding.maskgit import maskgit_decode
from magvit.core.decoding.protocols import IncrementalLogitsFn, LogitsFn, is_incremental

__all__ = [
    "AutoregressiveSteps",
    "IncrementalLogitsFn",
    "LogitsFn",
    "autoregressive_decode",
    "commit_decode",
    "is_incremental",
    "maskgit_decode",
]
