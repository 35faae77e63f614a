import math

import av
import pytest
import torch

from magvit.core.data.synthetic import SyntheticShapes
from magvit.core.video_io import (
    UnreadableVideoError,
    probe_video,
    read_video,
    write_image,
    write_video,
)
from magvit.errors import MagvitError


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / ((a - b) ** 2).mean().item())


def ramp_clip(frames=10, height=16, width=24) -> torch.Tensor:
    """Frame k is a flat grey of brightness (k + 1) / (frames + 2): the frame index is readable."""
    levels = (torch.arange(frames) + 1.0) / (frames + 2)
    return levels[None, :, None, None].expand(3, frames, height, width).contiguous()


@pytest.fixture(scope="module")
def ramp_mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("ramp") / "ramp.mp4", ramp_clip(), fps=10)


def test_synthetic_clip_survives_mp4_round_trip_above_35_db(tmp_path):
    clip = SyntheticShapes().make("eval", seed=0)[0]["video"]
    path = write_video(tmp_path / "clip.mp4", clip)
    back = read_video(path)
    assert back.shape == clip.shape and back.dtype == torch.float32
    assert psnr(back, clip) >= 35.0


def test_x264_runs_without_its_macroblock_tree(tmp_path):
    # x264 writes the options it ran with into the stream; mbtree reads memory it has not
    # written on small frames (magvit.core.video_io.X264_PARAMS)
    clip = SyntheticShapes(resolution=16).make("eval", seed=0)[0]["video"]
    data = write_video(tmp_path / "clip.mp4", clip, pixel_format="yuv420p").read_bytes()
    assert b"x264 - core" in data and b" mbtree=0 " in data and b"mbtree=1" not in data
    assert b" crf=8.0 " in data  # quality 85, as documented


@pytest.mark.parametrize("size", [16, 32])
def test_the_same_frames_give_the_same_bytes_after_decoding(tmp_path, size):
    # Property check: with mbtree on, from a few in a thousand (16x16) to a third (32x32) of such
    # writes came out as other bytes (benchmarks/h264_determinism.py; how many depends on the
    # process's heap); a generated clip written twice must match.
    clip = SyntheticShapes(resolution=size).make("eval", seed=0)[0]["video"]
    decoded = write_video(tmp_path / "decoded.mp4", clip, pixel_format="yuv420p")
    digests = set()
    for i in range(150):
        with av.open(str(decoded)) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert len(frames) == 8
        digests.add(write_video(tmp_path / f"w{i % 2}.mp4", clip, pixel_format="yuv420p").read_bytes())
    assert len(digests) == 1


def test_yuv420p_is_playable_and_close_on_smooth_content(tmp_path):
    y = torch.linspace(0, 1, 32)[:, None]
    x = torch.linspace(0, 1, 32)[None, :]
    clip = torch.stack([0.2 + 0.6 * x + 0 * y, 0.3 + 0.4 * y + 0 * x, 0.5 + 0.2 * x * y])
    clip = clip[:, None].expand(3, 4, 32, 32)
    path = write_video(tmp_path / "smooth.mp4", clip, pixel_format="yuv420p")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert psnr(read_video(path), clip) >= 35.0


def test_gif_round_trip_keeps_frames_and_colours(tmp_path):
    clip = SyntheticShapes(frames=4).make("eval", seed=1)[2]["video"]
    path = write_video(tmp_path / "clip.gif", clip, fps=10)
    back = read_video(path)
    assert back.shape == clip.shape
    assert psnr(back, clip) >= 35.0
    assert probe_video(path).fps == pytest.approx(10.0)


def test_fewer_gif_colours_at_low_quality(tmp_path):
    clip = torch.rand(3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    fine = read_video(write_video(tmp_path / "fine.gif", clip, quality=100))
    coarse = read_video(write_video(tmp_path / "coarse.gif", clip, quality=2))
    assert len(torch.unique(coarse.reshape(3, -1), dim=1)) <= 5
    assert psnr(fine, clip) > psnr(coarse, clip) + 5


def test_png_is_lossless(tmp_path):
    image = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0))
    back = read_video(write_image(tmp_path / "image.png", image))
    assert back.shape == (3, 1, 7, 9)
    assert torch.equal(back[:, 0], image.mul(255).round().div(255))


def test_probe_reports_header_values(ramp_mp4):
    info = probe_video(ramp_mp4)
    assert (info.frames, info.height, info.width, info.codec) == (10, 16, 24, "h264")
    assert info.fps == pytest.approx(10.0)
    assert probe_video(ramp_mp4, count_frames=True).frames == 10


@pytest.mark.parametrize("start,stride,frames", [(0, 1, 4), (1, 2, 3), (3, 3, None), (9, 1, 1)])
def test_start_stride_frames_pick_the_right_frames(ramp_mp4, start, stride, frames):
    clip = read_video(ramp_mp4, start=start, stride=stride, frames=frames)
    expected = list(range(start, 10, stride))[:frames]
    levels = clip.mean(dim=(0, 2, 3))
    assert levels == pytest.approx([(k + 1) / 12 for k in expected], abs=0.01)


def test_random_windows_match_frame_indices(ramp_mp4):
    """Property: for any (start, stride, frames) the brightness ramp gives back the indices."""
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        start, stride, frames = (int(torch.randint(lo, hi, (), generator=g))
                                 for lo, hi in ((0, 9), (1, 4), (1, 5)))
        expected = list(range(start, 10, stride))[:frames]
        levels = read_video(ramp_mp4, start=start, stride=stride, frames=frames).mean(dim=(0, 2, 3))
        assert levels == pytest.approx([(k + 1) / 12 for k in expected], abs=0.01)


def test_short_video_gives_the_frames_it_has(ramp_mp4):
    assert read_video(ramp_mp4, frames=50, start=6).shape[1] == 4


def test_resolution_resizes_short_side_then_centre_crops(ramp_mp4):
    assert read_video(ramp_mp4, resolution=8).shape == (3, 10, 8, 8)
    assert read_video(ramp_mp4, resolution=8, crop=False).shape == (3, 10, 8, 12)
    grey = read_video(ramp_mp4, resolution=8, frames=1)
    assert grey.mean().item() == pytest.approx(1 / 12, abs=0.01)


def test_garbage_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(UnreadableVideoError, match=r"cannot read video .*bad\.mp4: Invalid data"):
        read_video(bad)
    with pytest.raises(UnreadableVideoError, match=r"bad\.mp4"):
        probe_video(bad)


def test_missing_and_truncated_files(tmp_path, ramp_mp4):
    with pytest.raises(UnreadableVideoError, match=r"nothing\.mp4: no such file"):
        read_video(tmp_path / "nothing.mp4")
    data = ramp_mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableVideoError, match=r"cut\.mp4"):
        read_video(cut)


def test_start_past_the_end_is_an_error(ramp_mp4):
    with pytest.raises(UnreadableVideoError, match="has only 10 decodable frames; it cannot start at frame 12"):
        read_video(ramp_mp4, start=12)


def test_bad_read_arguments(ramp_mp4):
    with pytest.raises(MagvitError, match="need stride >= 1"):
        read_video(ramp_mp4, stride=0)


def test_write_refuses_bad_input(tmp_path):
    clip = ramp_clip(2)
    with pytest.raises(MagvitError, match=r"unknown suffix '\.avi'; use one of \.mp4"):
        write_video(tmp_path / "x.avi", clip)
    with pytest.raises(MagvitError, match="quality must be in 1..100, got 0"):
        write_video(tmp_path / "x.mp4", clip, quality=0)
    with pytest.raises(MagvitError, match=r"shape \(3, T, H, W\) in \[0, 1\], got \(2, 16, 24\)"):
        write_video(tmp_path / "x.mp4", clip[0])
    with pytest.raises(MagvitError, match="NaN or inf"):
        write_video(tmp_path / "x.mp4", clip * float("nan"))
    with pytest.raises(MagvitError, match="height and width must be even, got 3x5"):
        write_video(tmp_path / "x.mp4", torch.zeros(3, 1, 3, 5), pixel_format="yuv420p")
    with pytest.raises(MagvitError, match="only .png"):
        write_image(tmp_path / "x.jpg", clip[:, 0])


@pytest.mark.parametrize("suffix,codec", [(".avi", "mpeg4"), (".mkv", "libx264"),
                                          (".webm", "libvpx-vp9"), (".mpg", "mpeg2video")])
def test_reads_other_containers_and_codecs(tmp_path, suffix, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    path = tmp_path / f"ramp{suffix}"
    clip = ramp_clip(frames=6)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "yuv420p"
        for k in range(6):
            array = clip[:, k].mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    assert probe_video(path, count_frames=True).frames == 6
    levels = read_video(path, start=1, stride=2).mean(dim=(0, 2, 3))
    assert levels == pytest.approx([2 / 8, 4 / 8, 6 / 8], abs=0.02)
