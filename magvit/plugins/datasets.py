"""Built-in datasets: procedural bouncing shapes and a folder of videos."""

from __future__ import annotations

from magvit.api import hookimpl
from magvit.core.data.folder import VideoFolder
from magvit.core.data.synthetic import SyntheticShapes


@hookimpl
def magvit_register_datasets(registry):
    registry.add("synthetic", SyntheticShapes)
    registry.add("video_folder", VideoFolder)
