"""Small drawing and file helpers shared by the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def draw_frame(size: tuple[int, int], shift: int = 0) -> np.ndarray:
    """White paper with a black-outlined rectangle and circle (uint8 grey)."""
    height, width = size
    image = np.full((height, width), 255, np.uint8)
    cv2.rectangle(image, (width // 8 + shift, height // 8), (width // 2 + shift, height * 3 // 4), 0, 2)
    cv2.circle(image, (width * 3 // 4, height // 2), min(height, width) // 6, 0, 2, lineType=cv2.LINE_AA)
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write RGB/RGBA/grey (numpy RGB order) with cv2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)
    return path


def stroke_image(size: tuple[int, int], center: tuple[int, int], color: tuple[int, int, int], radius: int = 4):
    rgba = np.zeros((*size, 4), np.uint8)
    cv2.circle(rgba, center, radius, (*color, 255), -1)
    return rgba


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `alacgan ARGS` in-process as a user would; returns (exit code, stdout, stderr)."""
    import sys

    from alacgan_batch import cli

    old_argv = sys.argv
    sys.argv = ["alacgan", *map(str, args)]
    cli._state["debug"] = False
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def has_encoder(name: str) -> bool:
    """Whether this PyAV build can encode with `name` (asked of libav directly, not of the code under test)."""
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def add_audio(container: av.container.OutputContainer, encoder: str = "aac") -> av.audio.stream.AudioStream:
    # Streams must all exist before the first packet is muxed (that writes the header).
    stream = container.add_stream(encoder, rate=48000)
    stream.layout = "mono"
    return stream


def mux_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A 440 Hz mono sine; the muxer interleaves it with the video muxed before."""
    rate = stream.rate
    # Mono float samples: the same (1, n) array serves the planar (aac) and packed (libopus) layouts.
    fmt = "fltp" if "fltp" in {f.name for f in stream.codec_context.codec.audio_formats} else "flt"
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    step = 1024
    for start in range(0, samples.shape[1], step):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, start : start + step]), format=fmt, layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_video(
    path: Path,
    frames: list[np.ndarray],
    fps: int = 24,
    encoder: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
    rotation_ccw: int = 0,
    sar: Fraction | None = None,
    times_ms: list[int] | None = None,
) -> Path:
    """Write a test video directly with PyAV (independent of VideoWriter).

    `times_ms`: when each frame is shown, in ms (a variable frame rate; the stream then counts in ms); by default
    one frame every 1/fps s.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if times_ms is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation_ccw:
            stream.set_display_rotation(rotation_ccw)
        sound = add_audio(container) if audio else None
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgba" if array.shape[2] == 4 else "rgb24")
            frame.pts = i if times_ms is None else times_ms[i]
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            mux_audio(container, sound, len(frames) / fps if times_ms is None else (times_ms[-1] + 1000 / fps) / 1000)
    return path


def write_webm_with_alpha(path: Path, frames: list[np.ndarray], fps: int = 24, encoder: str = "libvpx-vp9",
                          rotation_ccw: int = 0) -> Path:
    """RGBA frames into a WebM whose alpha rides beside the colour, as libvpx and Matroska keep it."""
    with av.open(str(path), "w") as container:
        # libvpx's VP8 encodes alpha only without alt-ref frames
        stream = container.add_stream(encoder, rate=fps, options={"auto-alt-ref": "0"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuva420p"
        if rotation_ccw:
            stream.set_display_rotation(rotation_ccw)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgba")))
        container.mux(stream.encode())
    return path
