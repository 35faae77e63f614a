"""Networks that turn videos into feature vectors for evaluation (FVD's I3D)."""

from magvit.core.features.i3d import InceptionI3d

__all__ = ["InceptionI3d"]
