"""Built-in datasets: procedural bouncing shapes and a folder of videos."""

from __future__ import annotations

import magvit
from magvit.core.data.folder import VideoFolder
from magvit.core.data.synthetic import SyntheticShapes


@magvit.hookimpl
def magvit_register_datasets(registry):
    registry.add("synthetic", SyntheticShapes)
    registry.add("video_folder", VideoFolder)
