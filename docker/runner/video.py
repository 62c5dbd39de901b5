"""Frames → `video.mp4` with pinned encoder settings, a poster, and the frames digest.

`frames_digest` is sha256 over the uint8 RGB frames exactly as fed to the encoder (each
frame H×W×3, row-major, in order). The MP4 bytes depend on the x264/ffmpeg build (x264
writes its version into the stream); the frames do not, so replays compare the digest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

CRF = 18
PRESET = "medium"
#: Single-threaded x264 and bit-exact muxing: same frames + same ffmpeg build → same bytes.
OUTPUT_PARAMS = [
    "-crf",
    str(CRF),
    "-preset",
    PRESET,
    "-threads",
    "1",
    "-x264-params",
    "threads=1",
    "-fflags",
    "+bitexact",
    "-flags:v",
    "+bitexact",
    "-map_metadata",
    "-1",
]
POSTER_QUALITY = 90


def encoder_description() -> str:
    """The pinned settings and the ffmpeg build, recorded in the receipt."""
    return (
        f"ffmpeg {imageio_ffmpeg.get_ffmpeg_version()} libx264 yuv420p crf={CRF} "
        f"preset={PRESET} threads=1 bitexact"
    )


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] → uint8, the same rounding diffusers uses for PIL output."""
    return np.ascontiguousarray((np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8))


def frames_digest(frames: np.ndarray) -> str:
    """sha256 over the raw uint8 RGB frames in order."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames F×H×W×3, got {frames.dtype} {frames.shape}")
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def write_video(frames: np.ndarray, path: Path, fps: int) -> str:
    """Encode uint8 frames to H.264 MP4 with the pinned settings; return its sha256."""
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=OUTPUT_PARAMS,
    )
    writer.send(None)  # start the generator: ffmpeg launches here
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_video(path: Path) -> np.ndarray:
    """Decode a video to uint8 RGB frames F×H×W×3 (control maps, source videos).

    Raises `ValueError` when ffmpeg cannot decode it.
    """
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        raise ValueError(f"not a decodable video: {exc}") from exc
    if not frames:
        raise ValueError("the video has no frames")
    return np.stack(frames)


def write_poster(frames: np.ndarray, path: Path) -> None:
    """The first frame as a JPEG without metadata."""
    Image.fromarray(frames[0]).save(path, format="JPEG", quality=POSTER_QUALITY)
