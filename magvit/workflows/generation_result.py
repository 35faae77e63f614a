"""What one `Pipeline.generate` call made (`Result`), and the two views of it users ask for:
the condition beside the result, and the result with the given pixels pasted back."""

from __future__ import annotations

import attrs
import torch


@attrs.frozen
class Result:
    """What one `generate` call made: all tensors batched along the first dimension."""

    task: str
    condition: torch.Tensor  # (B, 3, T, H, W): the padded condition video the model was given
    video: torch.Tensor  # (B, 3, T, H, W): the generated clips, in [0, 1]
    tokens: torch.Tensor  # (B, t, h, w): the generated codebook ids
    pixel_mask: torch.Tensor  # (T, H, W) bool: the real condition pixels
    seconds: dict[str, float]  # wall time of "tokenizer" (encode, fit, decode) and "transformer"
    refine_steps: int = 0  # the condition fit's steps (0: the tokens as the decoder generated them)
    class_search: int = 0  # candidates per class the result was picked from (0: no search)
    classes: torch.Tensor | None = None  # (B,) with a search: the class each kept candidate had
    guidance_scale: float = 0.0  # the decoder's classifier-free guidance for this task (0: none)
    read_classes: int = 0  # with a search: the class reader's most likely classes tried (0: every class)
    sample_search: int = 1  # samples per clip the result was picked from by the given pixels (1: none)
    batch_size: int = 0  # clips generated at once: the seed's draws depend on it (0: not recorded)

    def side_by_side(self) -> torch.Tensor:
        """(B, 3, T, H, 2W): the condition on the left, the result on the right."""
        return torch.cat([self.condition, self.video], dim=-1)

    def pasted(self) -> Result:
        """This result with the given condition pixels (`pixel_mask`) pasted back into `video`
        from `condition`: the model may refine the pixels it was given, and this keeps them
        exactly for showing. Only `video` changes, so `tokens` no longer decode to it; score
        the model on the unpasted result. A task without a condition (CG) is returned as is."""
        mask = self.pixel_mask.to(self.video.device)
        return attrs.evolve(self, video=torch.where(mask, self.condition.to(self.video), self.video))
