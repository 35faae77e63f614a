"""The paper's evaluation protocols (Appendix B.3 and C) as named settings of `magvit eval`.

A protocol says how many clips each fold scores, how many folds, at which size the model
generates and FVD is measured, which clips form the real distribution (random training clips,
or fixed temporal windows x spatial crops of the evaluation videos) and the COMMIT decoding
settings the paper used. `magvit eval CHECKPOINT --protocol bair --data DIR` runs one on a
folder of videos (one sub-folder per class; `train_list`/`eval_list` files may name the splits).
Folds run through the clips continuously, one data loader, as the paper does: fold f scores
clips f·samples .. (f+1)·samples - 1, cycling a small evaluation set.
"""

from __future__ import annotations

from typing import Any

import attrs

from magvit.errors import MagvitError


@attrs.frozen(kw_only=True)
class Protocol:
    name: str
    summary: str
    samples: int                     # clips per fold
    folds: int = 4
    frames: int = 16
    resolution: int = 128            # the clips the model sees and generates
    eval_resolution: int | None = None  # FVD/IS features at this size (centre crop + bilinear)
    real_split: str = "eval"         # "train": random training clips; "eval": fixed windows x crops
    windows: int = 1                 # temporal windows per evaluation video
    crops: int = 1                   # spatial crops per window (1 = the centre)
    unconditional_split: str | None = None  # real clips for tasks without a condition (SSv2 CG)
    decoder: dict[str, Any] = attrs.field(factory=dict)  # COMMIT settings (else the model's)
    # PSNR/SSIM of each evaluation clip = its best generation in the fold (BAIR: best of 100)
    best_of_generations: bool = False

    def split_for(self, has_condition: bool) -> str:
        return self.real_split if has_condition or self.unconditional_split is None else self.unconditional_split

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol(name="ucf101", summary="UCF-101 (CG/CFP, Table 1): 10,000x4 random 16-frame training clips at 128x128",
             samples=10_000, resolution=128, real_split="train"),
    Protocol(name="bair", summary="BAIR (FP, Table 2): 25,600x4 samples of the first 16-frame clip of each "
             "evaluation video at 64x64; exponential schedule, temperature 400; PSNR/SSIM of the best of "
             "each clip's generations",
             samples=25_600, resolution=64, real_split="eval", windows=1,
             decoder={"schedule": "exp", "temperature": 400.0}, best_of_generations=True),
    Protocol(name="bair-debiased", summary="BAIR debiased (Appendix B.3): 15 uniform 16-frame windows of each "
             "30-frame evaluation video (256x15 = 3,840 clips) at 64x64, default decoding",
             samples=3_840, resolution=64, real_split="eval", windows=15),
    Protocol(name="k600", summary="Kinetics-600 (FP, Table 2): 50,000x4; generate at 128x128, score at 64x64 "
             "(centre crop, bilinear); 2 temporal windows x 3 spatial crops per evaluation video; "
             "uniform (linear) schedule, temperature 7.5",
             samples=50_000, resolution=128, eval_resolution=64, real_split="eval", windows=2, crops=3,
             decoder={"schedule": "linear", "temperature": 7.5}),
    Protocol(name="ssv2", summary="Something-Something-v2 (ten tasks, Table 4): 50,000x4 at 128x128; random "
             "training clips for CG, 2 temporal windows (centre crop) of each evaluation video otherwise",
             samples=50_000, resolution=128, real_split="eval", windows=2, unconditional_split="train"),
)}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise MagvitError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
