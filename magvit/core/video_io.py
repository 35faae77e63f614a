"""Video files in and out through PyAV (FFmpeg): any container and codec FFmpeg reads.

Tensors follow the project's convention: a clip is float32 `(3, T, H, W)` in `[0, 1]`, an image
`(3, H, W)`. Writing picks the format from the suffix: `.mp4`/`.mov`/`.m4v` (H.264) or `.gif`;
`write_image` writes PNG.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import attrs
import av
import numpy as np
import torch

from magvit.core.files import atomic_output
from magvit.errors import MagvitError

H264_SUFFIXES = (".mp4", ".mov", ".m4v")
WRITABLE_SUFFIXES = H264_SUFFIXES + (".gif",)


class UnreadableVideoError(MagvitError):
    """A file that FFmpeg cannot open or decode (missing, corrupt, truncated, no video stream)."""


@attrs.frozen
class VideoInfo:
    path: str
    frames: int
    height: int
    width: int
    fps: float
    codec: str


def probe_video(path: str | Path, *, count_frames: bool = False) -> VideoInfo:
    """Frame count, size, frame rate and codec, after decoding the first frame.

    The frame count comes from the container header; where the header has none (or
    `count_frames` is set) the video packets are counted, which reads the file without decoding.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            first = next(container.decode(stream), None)
            if first is None:
                raise UnreadableVideoError(f"cannot read video {path}: it has no decodable frames")
            frames = stream.frames
            if count_frames or frames <= 0:
                container.seek(0)
                frames = sum(1 for p in container.demux(stream) if p.size)
        except av.error.FFmpegError as exc:
            raise UnreadableVideoError(f"cannot read video {path}: {_reason(exc)}") from None
        rate = stream.average_rate or stream.guessed_rate or 0
        return VideoInfo(str(path), int(frames), first.height, first.width, float(rate),
                         stream.codec_context.name)


def read_video(
    path: str | Path,
    *,
    frames: int | None = None,
    stride: int = 1,
    start: int = 0,
    resolution: int | None = None,
    crop: bool = True,
) -> torch.Tensor:
    """Decode frames `start, start + stride, ...` into a `(3, T, H, W)` float32 tensor in [0, 1].

    `frames` caps T (None: to the end); a video that ends early gives fewer frames, never an
    error. With `resolution`, each frame is resized (bilinear, in FFmpeg) so its short side is
    `resolution`, then the centre square is cut unless `crop` is False.
    """
    if stride < 1 or start < 0 or (frames is not None and frames < 1):
        raise MagvitError(
            f"read_video({path}): need stride >= 1, start >= 0 and frames >= 1 or None; "
            f"got stride={stride}, start={start}, frames={frames}"
        )
    arrays: list[np.ndarray] = []
    seen = 0
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            for index, frame in enumerate(container.decode(stream)):
                seen = index + 1
                if index < start or (index - start) % stride:
                    continue
                height, width = _resized(frame.height, frame.width, resolution)
                arrays.append(frame.to_ndarray(format="rgb24", width=width, height=height,
                                               interpolation="BILINEAR"))
                if frames is not None and len(arrays) == frames:
                    break
        except av.error.FFmpegError as exc:
            if not arrays:
                raise UnreadableVideoError(f"cannot decode video {path}: {_reason(exc)}") from None
    if seen == 0:
        raise UnreadableVideoError(f"cannot read video {path}: it has no decodable frames")
    if not arrays:  # a header that promised more frames than the file holds, or a bad start
        raise UnreadableVideoError(
            f"video {path} has only {seen} decodable frames; it cannot start at frame {start}"
        )
    video = torch.from_numpy(np.stack(arrays)).permute(3, 0, 1, 2).float().div_(255)
    if resolution is not None and crop:
        video = center_crop(video, resolution)
    return video


def center_crop(video: torch.Tensor, size: int) -> torch.Tensor:
    """The central `size x size` square of a `(..., H, W)` tensor."""
    height, width = video.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return video[..., top:top + size, left:left + size]


def _resized(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    if short_side is None:
        return height, width
    if height <= width:
        return short_side, max(short_side, round(width * short_side / height))
    return max(short_side, round(height * short_side / width)), short_side


def _open(path: str | Path):
    try:
        return av.open(str(path))
    except FileNotFoundError:
        raise UnreadableVideoError(f"cannot read video {path}: no such file") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise UnreadableVideoError(f"cannot read video {path}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """FFmpeg's message without the errno and the repeated file name."""
    return getattr(exc, "strerror", None) or str(exc)


def _video_stream(container, path):
    if not container.streams.video:
        raise UnreadableVideoError(f"cannot read video {path}: it has no video stream")
    return container.streams.video[0]


# -- writing ------------------------------------------------------------------------------------

def write_video(
    path: str | Path,
    video: torch.Tensor,
    fps: float = 8,
    quality: int = 85,
    pixel_format: str = "yuv444p",
) -> Path:
    """Write a `(3, T, H, W)` clip in [0, 1] as H.264 (`.mp4`, `.mov`, `.m4v`) or `.gif`.

    `quality` runs from 1 to 100. For H.264 it sets the constant rate factor,
    `crf = round(51 * (100 - quality) / 100)` (85 gives crf 8, 100 is lossless in YUV). The
    default pixel format yuv444p keeps full colour resolution, which small clips with sharp
    coloured edges need (4:2:0 costs them about 5 dB PSNR); pass "yuv420p" (even sizes only)
    for players that show nothing else, such as browsers. For GIF, `quality` sets the palette
    size, `max(2, round(256 * quality / 100))` colours chosen for this clip, and the frame
    delay is rounded to GIF's 1/100 s. The same frames give the same bytes (`X264_PARAMS`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise MagvitError(
            f"cannot write video {path}: unknown suffix {path.suffix!r}; use one of "
            f"{', '.join(WRITABLE_SUFFIXES)}"
        )
    if not 1 <= quality <= 100:
        raise MagvitError(f"write_video quality must be in 1..100, got {quality}")
    if fps <= 0:
        raise MagvitError(f"write_video fps must be positive, got {fps}")
    frames = _to_uint8(video, "(3, T, H, W)", 4).permute(1, 2, 3, 0).numpy()  # (T, H, W, 3)
    if pixel_format not in ("yuv444p", "yuv420p"):
        raise MagvitError(f"write_video pixel_format must be 'yuv444p' or 'yuv420p', got {pixel_format!r}")
    if pixel_format == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise MagvitError(
            f"cannot write {path} as yuv420p: height and width must be even, got "
            f"{frames.shape[1]}x{frames.shape[2]}; use pixel_format='yuv444p'"
        )
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(path) as tmp:  # a failed write leaves no half file and no new folder
        if suffix == ".gif":
            _write_gif(tmp, frames, rate, colours=max(2, round(256 * quality / 100)))
        else:
            _write_h264(tmp, frames, rate, round(51 * (100 - quality) / 100), pixel_format)
    return path


# x264's macroblock-tree rate control (mbtree) reads memory it has not written on small frames:
# in a process that had decoded video before, the same frames came out as other bytes in a few
# writes in a thousand at 16x16 and 64x64 and in a third of them at 32x32 (yuv420p), up to
# 8/255 apart in the first frames; with MALLOC_PERTURB_ set they never did. With mbtree off,
# none of more than 10,000 such writes differed (`benchmarks/h264_determinism.py`). Round trips
# at quality 85 without it, measured on three clips: 16x16 ones -2.1 and -1.8 dB in yuv444p,
# -0.4 and 0.0 dB in yuv420p; a 64x64 one +1.1 dB in yuv444p, 0.0 dB in yuv420p.
X264_PARAMS = "mbtree=0"


def _write_h264(path: Path, frames: np.ndarray, rate: Fraction, crf: int, pixel_format: str) -> None:
    _, height, width, _ = frames.shape
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pixel_format
        stream.options = {"crf": str(crf), "x264-params": X264_PARAMS}
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))


def _write_gif(path: Path, frames: np.ndarray, rate: Fraction, colours: int) -> None:
    _, height, width, _ = frames.shape
    palette, indices = _palette(torch.from_numpy(frames).reshape(-1, 3), colours)
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255
    argb[: len(palette), 1:] = palette.numpy()
    indices = indices.reshape(frames.shape[:3]).numpy()
    with av.open(str(path), "w", format="gif") as container:
        stream = container.add_stream("gif", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        for image in indices:
            frame = av.VideoFrame.from_ndarray((image, argb), format="pal8")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _palette(pixels: torch.Tensor, colours: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Median-cut palette of at most `colours` entries (uint8 RGB) and each pixel's index."""
    unique = torch.unique(pixels, dim=0)
    if len(unique) <= colours:
        palette = unique
    else:
        boxes = [_ColourBox(unique.float())]
        while len(boxes) < colours:
            widest = max(range(len(boxes)), key=lambda i: boxes[i].extent)
            if boxes[widest].extent <= 0:
                break
            boxes += boxes.pop(widest).split()
        palette = torch.stack([b.pixels.mean(0) for b in boxes]).round().to(torch.uint8)
    indices = torch.cat([
        torch.cdist(chunk.float(), palette.float()).argmin(1)
        for chunk in pixels.split(65536)
    ])
    return palette, indices.to(torch.uint8)


class _ColourBox:
    """A set of distinct colours; median cut splits it across its widest channel."""

    def __init__(self, pixels: torch.Tensor):
        self.pixels = pixels
        spans = pixels.amax(0) - pixels.amin(0)
        self.channel = int(spans.argmax())
        self.extent = float(spans[self.channel]) if len(pixels) > 1 else -1.0

    def split(self) -> list[_ColourBox]:
        ordered = self.pixels[self.pixels[:, self.channel].argsort()]
        half = len(ordered) // 2
        return [_ColourBox(ordered[:half]), _ColourBox(ordered[half:])]


def write_image(path: str | Path, image: torch.Tensor) -> Path:
    """Write a `(3, H, W)` image in [0, 1] as PNG (PyAV's png encoder)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MagvitError(f"cannot write image {path}: only .png is supported")
    array = _to_uint8(image, "(3, H, W)", 3).permute(1, 2, 0).contiguous().numpy()
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = array.shape[1], array.shape[0], "rgb24"
    packets = encoder.encode(av.VideoFrame.from_ndarray(array, format="rgb24")) + encoder.encode(None)
    with atomic_output(path) as tmp:
        tmp.write_bytes(b"".join(bytes(p) for p in packets))
    return path


# How far a float pixel may stray outside [0, 1] (one 8-bit level: resampling overshoot) before
# it is taken for a mistake, such as 0-255 values in a float tensor; those within it are clamped.
PIXEL_SLACK = 1 / 255


def pixels_in_unit_range(video: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """`video` as a new float32 tensor of pixels in [0, 1] (on `device`, where the checks then
    run: uint8 moves at a quarter of the bytes): uint8 is read as 0-255; another integer type, a
    NaN or an infinity, or a float beyond [0, 1] by more than `PIXEL_SLACK` is refused, naming it."""
    if not isinstance(video, torch.Tensor):
        raise MagvitError(f"expected a video file or a tensor of pixels, got {type(video).__name__}")
    if video.dtype != torch.uint8 and not video.is_floating_point():
        raise MagvitError(f"expected float pixels in [0, 1] (or uint8 in 0-255), got a {video.dtype} tensor")
    video = video.to(device) if device is not None else video
    if video.dtype == torch.uint8:
        return video.float() / 255
    video = video.float()
    if video.numel():
        low, high = (float(v) for v in torch.aminmax(video))  # one pass; NaN and inf show here
        if not (math.isfinite(low) and math.isfinite(high)):
            bad = int((~torch.isfinite(video)).sum())
            raise MagvitError(f"the clips hold {bad} NaN or infinite pixel value(s); give finite pixels in [0, 1]")
        if low < -PIXEL_SLACK or high > 1 + PIXEL_SLACK:
            hint = "; 0-255 values: divide by 255" if high > 2 else ""
            raise MagvitError(f"expected pixels in [0, 1], got values from {low:.4g} to {high:.4g}{hint}")
    return video.clamp(0, 1)  # a copy, also where nothing is clamped: the caller's tensor stays theirs


def _to_uint8(tensor: torch.Tensor, layout: str, ndim: int) -> torch.Tensor:
    if tensor.ndim != ndim or tensor.shape[0] != 3:
        raise MagvitError(f"expected a tensor of shape {layout} in [0, 1], got {tuple(tensor.shape)}")
    tensor = tensor.detach().float().cpu()
    if not torch.isfinite(tensor).all():
        raise MagvitError(f"cannot write a tensor {layout} that holds NaN or inf values")
    return tensor.clamp(0, 1).mul(255).round().to(torch.uint8)
