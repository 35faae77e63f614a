"""Metrics, public: per-clip PSNR / SSIM and the Fréchet distance of feature statistics.

    from magvit.metrics import FeatureStats, frechet_distance
    real, fake = FeatureStats(), FeatureStats()
    for batch in ...: real.update(extractor(batch))     # (N, D) features, streamed
    fvd = frechet_distance(real, fake)
"""

from magvit.core.frechet import FeatureStats, fold_mean_std, frechet_distance
from magvit.core.metrics import masked_psnr, psnr, ssim

__all__ = ["FeatureStats", "fold_mean_std", "frechet_distance", "masked_psnr", "psnr", "ssim"]
