"""Networks that turn videos into features for evaluation: FVD's I3D, IS's C3D."""

from magvit.core.features.c3d import C3D, inception_score
from magvit.core.features.i3d import InceptionI3d

__all__ = ["C3D", "InceptionI3d", "inception_score"]
