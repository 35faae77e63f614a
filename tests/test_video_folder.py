import shutil
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

import magvit
from magvit.core.data import clips
from magvit.core.data.folder import VideoFolder
from magvit.core.data.unreadable import UnreadableVideoWarning
from magvit.core.video_io import UnreadableVideoError, write_video
from magvit.errors import MagvitError

FRAMES, HEIGHT, WIDTH = 12, 16, 24


def coded_clip(frames: int = FRAMES) -> torch.Tensor:
    """Red = frame index, green = column, blue = row: a clip tells where it was cut from."""
    t = (torch.arange(frames) + 0.5)[:, None, None] / frames
    x = (torch.arange(WIDTH) + 0.5)[None, None, :] / WIDTH
    y = (torch.arange(HEIGHT) + 0.5)[None, :, None] / HEIGHT
    zeros = torch.zeros(frames, HEIGHT, WIDTH)
    return torch.stack([t + zeros, x + zeros, y + zeros])


@pytest.fixture
def folder(tmp_path):
    """Two classes (b has 3 videos, a has 1, one of them short) and one unlabelled video."""
    for name in ("b/b0.mp4", "b/b1.mp4", "a/a0.mp4", "top.mp4"):
        write_video(tmp_path / name, coded_clip())
    write_video(tmp_path / "b/short.mp4", coded_clip(3))
    (tmp_path / "b/notes.txt").write_text("not a video")
    return tmp_path


def frame_of(clip: torch.Tensor) -> list[int]:
    """Source frame index of each frame, read off the red channel."""
    return [round(v * FRAMES - 0.5) for v in clip[0].mean(dim=(1, 2)).tolist()]


def test_labels_come_from_sorted_sub_folders(folder):
    config = VideoFolder(path=str(folder), frames=4, resolution=8)
    data = config.make("eval")
    assert config.num_classes == 2
    labels = {entry.path.name: entry.label for entry in data.entries}
    assert labels == {"a0.mp4": 0, "b0.mp4": 1, "b1.mp4": 1, "short.mp4": 1, "top.mp4": -1}
    assert [data[i]["label"] for i in range(len(data))] == [0, 1, 1, 1, -1]


def test_train_clip_is_a_random_window_and_crop(folder):
    data = VideoFolder(path=str(folder), frames=4, resolution=8, stride=2).make("train", seed=0)
    starts, lefts = set(), set()
    for epoch in range(6):
        data.set_epoch(epoch)
        clip = data[1]["video"]  # b0: 12 frames, 8x12 after resizing
        assert clip.shape == (3, 4, 8, 8)
        frames = frame_of(clip)
        assert [b - a for a, b in zip(frames, frames[1:])] == [2, 2, 2]
        starts.add(frames[0])
        lefts.add(round(clip[1, 0, :, 0].mean().item() * 12 - 0.5))  # first column after resize
    assert starts <= {0, 1, 2, 3, 4, 5} and len(starts) > 1
    assert lefts <= {0, 1, 2, 3, 4} and len(lefts) > 1


def test_train_items_depend_only_on_seed_epoch_index(folder):
    config = VideoFolder(path=str(folder), frames=4, resolution=8)
    a, b = config.make("train", seed=7), config.make("train", seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    serial = next(iter(DataLoader(a, batch_size=5)))
    parallel = next(iter(DataLoader(b, batch_size=5, num_workers=2)))
    assert torch.equal(serial["video"], parallel["video"])
    b.set_epoch(4)
    assert not torch.equal(serial["video"], torch.stack([b[i]["video"] for i in range(5)]))


def test_eval_uses_fixed_windows_times_fixed_crops(folder):
    config = VideoFolder(path=str(folder), frames=4, resolution=8, eval_windows=3, eval_crops=3)
    data = config.make("eval")
    assert len(data) == 5 * 9
    cuts = []
    for i in range(9, 18):  # b0, the second video
        clip = data[i]["video"]
        left = round(clip[1, 0, :, 0].mean().item() * 12 - 0.5)
        cuts.append((frame_of(clip)[0], left))
    assert cuts == [(0, 0), (0, 2), (0, 4), (4, 0), (4, 2), (4, 4), (8, 0), (8, 2), (8, 4)]
    assert torch.equal(data[10]["video"], config.make("eval")[10]["video"])


def test_short_video_is_padded_with_its_last_frame(folder):
    data = VideoFolder(path=str(folder), frames=5, resolution=8).make("eval")
    short = next(i for i, e in enumerate(data.entries) if e.path.name == "short.mp4")
    assert [round(v * 3 - 0.5) for v in data[short]["video"][0].mean(dim=(1, 2)).tolist()] == [0, 1, 2, 2, 2]


def test_split_lists_pick_videos(folder):
    (folder / "train.txt").write_text("b/b1.mp4 2\na/a0.mp4 1\n\n")
    config = VideoFolder(path=str(folder), frames=2, resolution=8, train_list="train.txt",
                         eval_list=str(folder / "missing.txt"))
    train = config.make("train")
    assert [e.path.name for e in train.entries] == ["b1.mp4", "a0.mp4"]
    assert [train[i]["label"] for i in range(2)] == [1, 0]
    with pytest.raises(MagvitError, match=r"split list .*missing\.txt does not exist"):
        config.make("eval")


def test_corrupt_file_is_an_error_naming_it_and_the_skip_option(folder):
    (folder / "a/broken.mp4").write_bytes(b"\x00" * 500)
    with pytest.raises(UnreadableVideoError,
                       match=r"broken\.mp4.*set skip_unreadable = true in \[data\]"):
        VideoFolder(path=str(folder), frames=2, resolution=8).make("train")


def test_skip_warns_per_file_and_counts_the_rest_intact(folder):
    (folder / "a/broken.mp4").write_bytes(b"\x00" * 500)
    config = VideoFolder(path=str(folder), frames=2, resolution=8, skip_unreadable=True)
    with pytest.warns(UnreadableVideoWarning) as caught:
        data = config.make("eval")
    messages = [str(w.message) for w in caught]
    assert any("broken.mp4" in m for m in messages)
    assert messages[-1] == f"skipped 1 unreadable file(s) of 6 under {folder}"
    assert len(data) == 5 and len(data.unreadable) == 1
    assert all(data[i]["video"].shape == (3, 2, 8, 8) for i in range(5))


def test_file_that_breaks_after_indexing(folder):
    strict = VideoFolder(path=str(folder), frames=2, resolution=8).make("eval")
    lenient = VideoFolder(path=str(folder), frames=2, resolution=8, skip_unreadable=True).make("eval")
    shutil.rmtree(folder / "a")
    with pytest.raises(UnreadableVideoError, match=r"a0\.mp4: no such file; remove or re-encode it"):
        strict[0]
    with pytest.warns(UnreadableVideoWarning, match=r"a0\.mp4"):
        item = lenient[0]
    assert item["label"] == 1  # the next video stands in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lenient[0]  # warned once per file


def test_folder_errors(tmp_path):
    with pytest.raises(MagvitError, match=r"dataset folder .*nowhere does not exist"):
        VideoFolder(path=str(tmp_path / "nowhere")).make("train")
    with pytest.raises(MagvitError, match=r"no video files under .*\.mp4"):
        VideoFolder(path=str(tmp_path)).make("train")
    with pytest.raises(MagvitError, match="unknown split 'val'"):
        VideoFolder(path=str(tmp_path)).make("val")


def test_registered_with_strict_config(folder):
    data = magvit.registries().datasets.create("video_folder", path=str(folder), frames=2, resolution=8)
    assert isinstance(data, VideoFolder) and data.num_classes == 2
    with pytest.raises(MagvitError, match="stride: must be positive, got 0"):
        magvit.registries().datasets.create("video_folder", path=str(folder), stride=0)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_uniform_windows_and_crops_span_the_video(count):
    starts = clips.uniform_windows(30, 16, 1, count)
    assert starts[0] == 0 and starts[-1] == (14 if count > 1 else 0) and starts == sorted(starts)
    corners = clips.uniform_crops(120, 160, 120, count)
    assert {top for top, _ in corners} == {0}
    assert corners[0][1] == (20 if count == 1 else 0) and corners[-1][1] == (20 if count == 1 else 40)
    assert clips.uniform_crops(160, 120, 120, count)[-1] == ((20, 0) if count == 1 else (40, 0))


def test_debiased_bair_protocol_has_15_windows():
    assert clips.uniform_windows(30, 16, 1, 15) == list(range(15))
