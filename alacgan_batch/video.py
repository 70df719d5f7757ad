"""Video I/O on PyAV: probe, a streaming reader, an atomic writer that keeps the source's metadata and
audio, and a shot-cut detector made for line art.

Everything libav can throw is turned into `InputError` (what we read), `OutputError` (what we write) or
`ConfigError` (codec/container choices), each with a one-line message; other exceptions are bugs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

import av
import cv2
import numpy as np

from .errors import ConfigError, InputError, OutputError
from .writer import discard, publish, temp_beside

log = logging.getLogger(__name__)

__all__ = [
    "CODECS",
    "CodecSpec",
    "CutDetector",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "detect_cuts",
    "frame_time",
    "probe",
    "variable_frame_times",
]


# --------------------------------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class VideoInfo:
    """What we need to know about a video stream to read it and to write a matching one.

    `frame_count` is the container's own count, None where it keeps none (Matroska, AVI).
    `announced_frames` is that count, or else the one the stream's duration tag gives (Matroska writes one per
    stream): what a complete file should decode to, to tell a truncated file.
    `rotation` is the clockwise turn a player applies for display (the legacy `rotate` tag's convention:
    a phone's portrait clip reads 90), taken from the display matrix; one of 0, 90, 180, 270.
    `frame_times`: for a variable-frame-rate stream (a phone's pencil test), when each frame is shown, in seconds
    from the first, in presentation order (variable_frame_times; probe leaves it None, as it reads one frame).
    """

    width: int
    height: int
    frame_count: int | None
    fps: Fraction
    time_base: Fraction
    pixel_aspect: Fraction
    rotation: int
    has_alpha: bool
    has_audio: bool
    codec: str
    pix_fmt: str
    announced_frames: int | None = None
    frame_times: tuple[Fraction, ...] | None = None


def _av_reason(exc: BaseException) -> str:
    # FFmpegError's str() repeats errno and file name; strerror alone reads well inside our one-liners.
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    try:
        # Odd bytes in a title tag are no reason to refuse a video.
        return av.open(str(path), mode="r", metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{path} is not a readable video ({_av_reason(exc)})") from exc


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    # Cover art in audio files shows up as a one-picture "video" stream; it is not a video.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise InputError(f"{path} has no video stream")
    return streams[0]


# WebM keeps a VP8/VP9 alpha plane beside the colour stream (Matroska BlockAdditional, flagged by the track's
# alpha_mode); libav's own VP8/VP9 decoders drop it, libvpx's decode both into yuva420p
_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def _own_decode(packet: av.Packet) -> list[av.VideoFrame]:
    return packet.decode()


def _decoder(stream: av.video.stream.VideoStream) -> Callable[[av.Packet], list[av.VideoFrame]]:
    """What decodes the stream's packets: its own codec context, or libvpx's where a WebM track carries alpha."""
    name = _ALPHA_DECODERS.get(stream.codec_context.name)
    if name is None or stream.metadata.get("alpha_mode") != "1":
        return _own_decode
    if not _codec_available(name, "r"):
        log.warning("this PyAV build has no %s decoder: the alpha of the %s track is not read", name,
                    stream.codec_context.name)
        return _own_decode
    context = av.CodecContext.create(name, "r")
    context.extradata = stream.codec_context.extradata
    context.width, context.height = stream.codec_context.width, stream.codec_context.height
    context.thread_type = "AUTO"
    return context.decode


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> tuple[av.VideoFrame | None, float]:
    """Decode up to the first frame: alpha, true pixel format and the display matrix live on frames.

    Returns the frame and its display rotation (counter-clockwise degrees). Where libvpx decodes the alpha of a
    WebM, the rotation is read from the stream's own decoder: the display matrix is the stream's side data,
    which only its own codec context hands on to the frames.
    """
    decode = _decoder(stream)
    rotation: float | None = None
    try:
        for packet in container.demux(stream):
            if decode is not _own_decode and rotation is None:
                own = packet.decode()
                rotation = own[0].rotation if own else None
            for frame in decode(packet):
                return frame, frame.rotation if rotation is None else rotation
    except av.FFmpegError as exc:
        raise InputError(f"{path}: cannot decode the video stream ({_av_reason(exc)})") from exc
    return None, 0.0


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    # average_rate is the honest one; guessed/base rates can be the time base itself (e.g. 12288 fps
    # for an empty MP4 track), so anything implausible is skipped. 0 means "unknown".
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= 1000:
            return Fraction(rate)
    return Fraction(0)


def _announced_frames(stream: av.video.stream.VideoStream, fps: Fraction) -> int | None:
    """Frames the header promises: the container's count, else the stream's DURATION tag (HH:MM:SS.fraction)."""
    if stream.frames:
        return int(stream.frames)
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", str(stream.metadata.get("DURATION", "")))
    if match is None or not fps:
        return None
    hours, minutes, seconds = match.groups()
    return round((Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)) * fps)


# a frame lasting a quarter frame more or less than the typical one makes the rate variable: Matroska's 1/1000
# time base rounds a constant 24 fps to 41 and 42 ms (2%), a phone's pencil test holds frames 1.5-3 times as long
VARIABLE_RATE_TOLERANCE = 0.25


def variable_frame_times(path: Path) -> tuple[Fraction, ...] | None:
    """Each frame's presentation time (seconds from the first) where the spacing varies, else None.

    From the video packets' timestamps (demuxed, not decoded: one read of the file), sorted into presentation
    order. None too where a packet has no timestamp or two share one (then there is nothing to keep, and frames
    given one time could not be written).
    """
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        try:
            # a packet an edit list discards is decoded but shows no frame
            stamps = [p.pts for p in container.demux(stream) if p.size and not p.is_discard]
        except av.FFmpegError as exc:
            raise InputError(f"{path}: cannot read the video stream ({_av_reason(exc)})") from exc
        time_base = Fraction(stream.time_base) if stream.time_base else None
    if len(stamps) < 3 or time_base is None or any(pts is None for pts in stamps):
        return None
    stamps.sort()
    steps = np.diff(stamps)
    typical = float(np.median(steps))
    if steps.min() <= 0 or np.all(np.abs(steps - typical) <= VARIABLE_RATE_TOLERANCE * typical):
        return None
    return tuple((pts - stamps[0]) * time_base for pts in stamps)


def frame_time(times: Sequence[Fraction] | None, index: int, frame_duration: Fraction) -> Fraction:
    """When frame `index` is shown, in seconds from the first: its own time at a variable rate (`times`, from
    variable_frame_times), else `index` frame durations. A frame past the times, should the decoder give more
    frames than there were packets, follows the last at `frame_duration` (1 / the average rate)."""
    if times is None:
        return index * frame_duration
    if index < len(times):
        return times[index]
    return times[-1] + (index - len(times) + 1) * frame_duration


def _has_alpha(pix_fmt: str) -> bool:
    try:
        return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return False


def probe(path: Path) -> VideoInfo:
    """Describe the first video stream of `path` (decodes one frame; a zero-frame video gives frame_count 0).

    Raises InputError when the file is missing, not a media file, has no video stream or cannot be decoded.
    """
    path = Path(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        first, rotation_ccw = _first_frame(container, stream, path)
        ctx = stream.codec_context
        width = first.width if first is not None else stream.width
        height = first.height if first is not None else stream.height
        if width <= 0 or height <= 0:
            raise InputError(f"{path}: the video stream has no frame size")
        pix_fmt = first.format.name if first is not None else (ctx.pix_fmt or "unknown")
        # av_display_rotation_get() (frame.rotation) is counter-clockwise; store the clockwise turn.
        rotation = (-round(rotation_ccw / 90) * 90) % 360
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        return VideoInfo(
            width=width,
            height=height,
            frame_count=0 if first is None else (stream.frames or None),
            fps=_frame_rate(stream),
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
            pixel_aspect=Fraction(sar) if sar else Fraction(1),  # 0/1 is libav's "unknown"
            rotation=rotation,
            has_alpha=_has_alpha(pix_fmt),
            has_audio=bool(container.streams.audio),
            codec=ctx.name,
            pix_fmt=pix_fmt,
            announced_frames=0 if first is None else _announced_frames(stream, _frame_rate(stream)),
        )


# -------------------------------------------------------------------------------------------------- reader


class VideoReader:
    """Decode a video one frame at a time: HxWx3 uint8 RGB, or HxWx4 RGBA when the stream has alpha.

    Only the frame being handed out (plus the decoder's few frames of delay) is ever in memory.
    `packets_read` and `frames_read` count demuxed packets and yielded frames, for progress and tests.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        # probe consumed packets; a fresh open is simpler and more reliable than seeking back to 0.
        self._container = _open_input(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
        except BaseException:
            self._container.close()
            raise
        self._stream.thread_type = "AUTO"  # frame + slice threads: decoding is the reader's whole cost
        self._decode = _decoder(self._stream)
        self._iterated = False
        self.packets_read = 0
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated only once; open a new one to start over")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[np.ndarray]:
        fmt = "rgba" if self.info.has_alpha else "rgb24"
        size = {"width": self.info.width, "height": self.info.height}
        try:
            for packet in self._container.demux(self._stream):
                self.packets_read += 1
                for frame in self._decode(packet):  # the final empty packet flushes the decoder
                    self.frames_read += 1
                    # width/height: a mid-stream size change is scaled back so every array has info's shape.
                    yield np.ascontiguousarray(frame.to_ndarray(format=fmt, **size))
        except av.FFmpegError as exc:
            raise InputError(
                f"{self.path}: decoding failed after {self.frames_read} frames ({_av_reason(exc)})"
            ) from exc
        if self.frames_read == 0:
            raise InputError(f"{self.path} has no video frames")
        announced = self.info.announced_frames
        # a truncated file simply ends early; a few frames' slack for edit lists and rounded durations
        if announced and self.frames_read < announced - max(2, announced // 50):
            raise InputError(f"{self.path} ends after {self.frames_read} of the {announced} frames its header "
                             "announces (truncated?)")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -------------------------------------------------------------------------------------------------- writer


class CodecSpec(NamedTuple):
    encoder: str  # libav encoder name
    pix_fmt: str  # pixel format written when the output keeps alpha (the only one for h264)
    supports_alpha: bool


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("libx264", "yuv420p", False),
    "prores4444": CodecSpec("prores_ks", "yuva444p10le", True),
    "png": CodecSpec("png", "rgba", True),
    "ffv1": CodecSpec("ffv1", "bgra", True),
}

# Same codec without the alpha plane, used when `like` has no alpha: no dead 255 plane in the file, and
# reading the result back gives RGB like the source did.
_OPAQUE_PIX_FMT = {"yuva444p10le": "yuv444p10le", "rgba": "rgb24", "bgra": "bgr0"}

# Containers each codec is conventionally stored in (and that libav muxes it into at normal compliance).
_CONTAINERS: dict[str, tuple[str, ...]] = {
    "h264": (".mp4", ".mov", ".mkv"),
    "prores4444": (".mov", ".mkv"),
    "png": (".mov",),
    "ffv1": (".mkv", ".avi"),
}

def containers_for(codec: str) -> tuple[str, ...]:
    """The file extensions `codec` can be written to (none for a codec we do not write)."""
    return _CONTAINERS.get(codec, ())


_ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "h264": {"preset": "medium"},
    # profile 4444 keeps full chroma (and alpha); apl0 is the vendor tag Apple's own encoder writes.
    "prores4444": {"profile": "4444", "vendor": "apl0"},
    "png": {},
    # level 3 with per-slice CRCs is the archival setting; g=1 keeps every frame seekable.
    "ffv1": {"level": "3", "slicecrc": "1", "g": "1"},
}


def _codec_available(name: str, mode: Literal["r", "w"] = "w") -> bool:
    """Whether this libav build has codec `name` for mode "w" (encoding) or "r" (decoding)."""
    try:
        av.codec.Codec(name, mode)
    except (av.FFmpegError, ValueError):
        return False
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class VideoWriter:
    """Encode frames into `path`, atomically: frames stream into a temp file beside `path`
    (`.name.XXXX.partial.ext`) that replaces `path` only when close() succeeds; on failure, or when the
    `with` block raises, the temp file is removed and `path` is left as it was.

    The output keeps `like`'s frame rate, time base (where the container allows it), frame size, pixel aspect
    and rotation; for a variable-rate source (`like.frame_times`), each frame's own time, so the audio stays in
    sync (AVI, which holds one constant rate, is refused then). Alpha is written when `like.has_alpha` and the
    codec supports it: RGB frames then get an opaque alpha, RGBA frames written to an opaque output lose theirs.
    Audio streams of `audio_from` are remuxed packet for packet (no re-encode), interleaved with the video as it
    is written.
    YUV outputs are converted and tagged as BT.709, limited range (VideoReader honours those tags).
    """

    def __init__(
        self,
        path: Path,
        like: VideoInfo,
        codec: str = "h264",
        crf: int = 18,
        audio_from: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = like
        self.codec = codec
        self.frames_written = 0
        self._closed = False
        self._out: av.container.OutputContainer | None = None
        self._audio_in: av.container.InputContainer | None = None
        self._tmp: Path | None = None

        spec = CODECS.get(codec)
        if spec is None:
            raise ConfigError(f"unknown video codec {codec!r}; valid codecs: {', '.join(CODECS)}")
        if not _codec_available(spec.encoder):
            raise ConfigError(f"codec {codec} is not available in this PyAV build (no {spec.encoder} encoder)")
        ext = self.path.suffix.lower()
        if ext not in _CONTAINERS[codec]:
            raise ConfigError(
                f"codec {codec} cannot be written to a {ext or 'extension-less'} file; "
                f"use {' or '.join(_CONTAINERS[codec])}"
            )
        if like.frame_times is not None and ext == ".avi":
            raise ConfigError(f"{self.path}: an AVI file holds one constant frame rate and the source's varies; "
                              "write .mkv (ffv1 keeps the frame times) or convert the source to a constant rate")
        if codec == "h264" and not 0 <= crf <= 51:
            raise ConfigError(f"crf must be between 0 and 51, got {crf}")
        if like.fps <= 0:
            raise ConfigError("the frame rate is unknown; set one explicitly")
        if like.width <= 0 or like.height <= 0:
            raise ConfigError(f"invalid frame size {like.width}x{like.height}")
        if spec.pix_fmt == "yuv420p" and (like.width % 2 or like.height % 2):
            # 4:2:0 chroma needs even sizes; x264 would fail later with a cryptic message.
            raise ConfigError(
                f"{codec} needs an even frame size, got {like.width}x{like.height}; use prores4444, png or ffv1"
            )
        if self.path.is_dir():
            raise OutputError(f"{self.path} is a folder")
        if audio_from is not None and _same_file(Path(audio_from), self.path):
            raise OutputError(f"{self.path} would overwrite the video its audio is taken from")

        self._alpha = spec.supports_alpha and like.has_alpha
        if like.has_alpha and not spec.supports_alpha:
            log.warning("%s: codec %s has no alpha channel; the alpha of the frames is dropped", self.path, codec)
        self._pix_fmt = spec.pix_fmt if self._alpha else _OPAQUE_PIX_FMT.get(spec.pix_fmt, spec.pix_fmt)
        self._yuv = self._pix_fmt.startswith("yuv")
        self._frame_tb = Fraction(1) / like.fps

        try:
            if audio_from is not None:
                self._audio_in = _open_input(Path(audio_from))
            self._open_output(spec, crf, ext)
        except BaseException:
            self.abort()
            raise

    # -- setup

    def _open_output(self, spec: CodecSpec, crf: int, ext: str) -> None:
        self._tmp = temp_beside(self.path)
        # The temp name ends in the real extension, but say the format outright rather than rely on it.
        container_format = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}[ext]
        try:
            self._out = av.open(str(self._tmp), mode="w", format=container_format)
        except av.FFmpegError as exc:
            raise OutputError(f"cannot create {self._tmp} ({_av_reason(exc)})") from exc

        options = dict(_ENCODER_OPTIONS[self.codec])
        if self.codec == "h264":
            options["crf"] = str(crf)
        like = self.info
        video = self._out.add_stream(spec.encoder, rate=like.fps, options=options)
        video.width, video.height, video.pix_fmt = like.width, like.height, self._pix_fmt
        # Keep the source's time base when it can count whole frames (a request: Matroska always uses
        # 1/1000); one that cannot, like Matroska's for 24 fps, would make MP4 frame durations jitter.
        # AVI has no timestamps of its own: its time base is the frame duration, whatever the source's
        exact = like.time_base > 0 and (self._frame_tb / like.time_base).denominator == 1 and ext != ".avi"
        video.time_base = like.time_base if exact else self._frame_tb
        # frames are stamped in the codec's time base: whole frames at a constant rate, the source's own ticks
        # (in which its frame times are whole numbers) at a variable one
        self._codec_tb = self._frame_tb
        if like.frame_times is not None:
            video.time_base = self._codec_tb = like.time_base
        video.codec_context.time_base = self._codec_tb
        if like.pixel_aspect not in (0, 1):
            video.codec_context.sample_aspect_ratio = like.pixel_aspect
        if like.rotation % 360:
            video.set_display_rotation(-like.rotation)  # PyAV takes counter-clockwise degrees
        if self._yuv:
            ctx = video.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # AVCOL_*_BT709
            ctx.color_range = 1  # AVCOL_RANGE_MPEG (limited)
        self._video = video

        self._audio_map: dict[int, av.stream.Stream] = {}
        self._audio_packets: Iterator[av.Packet] | None = None
        self._audio_next: av.Packet | None = None
        self._audio_shift: dict[int, int] = {}
        if self._audio_in is not None and self._audio_in.streams.audio:
            self._add_audio_streams(ext)

        try:
            self._out.start_encoding()  # fail now (encoder options, muxer) rather than at the first frame
        except av.FFmpegError as exc:
            if self._audio_map:  # some muxers (.mov with Opus) refuse an audio codec only when they start
                codecs = " and ".join(sorted({s.codec_context.name for s in self._audio_map.values()}))
                raise ConfigError(f"cannot start writing {self.path} ({_av_reason(exc)}): the {codecs} audio of "
                                  f"{self._audio_in.name} may not go into a {ext} file; write .mkv") from exc
            raise OutputError(f"cannot start writing {self.path} ({_av_reason(exc)})") from exc

    def _add_audio_streams(self, ext: str) -> None:
        assert self._audio_in is not None and self._out is not None
        src = self._audio_in
        # Audio is kept in step with the source's first video frame, which our frame 0 stands for (MPEG-TS
        # files, for example, start both streams well after 0).
        src_video = [s for s in src.streams.video if s.start_time is not None]
        video_start = src_video[0].start_time * src_video[0].time_base if src_video else Fraction(0)
        for stream in src.streams.audio:
            try:
                out = self._out.add_stream_from_template(stream)
            except ValueError as exc:
                raise ConfigError(
                    f"the {stream.codec_context.name} audio of {src.name} cannot be stored in a {ext} file"
                ) from exc
            if stream.language:
                out.metadata["language"] = stream.language
            self._audio_map[stream.index] = out
            self._audio_shift[stream.index] = round(video_start / stream.time_base) if stream.time_base else 0
        self._audio_packets = iter(src.demux(*src.streams.audio))

    # -- writing

    def write(self, frame: np.ndarray) -> None:
        """Append one HxWx3 RGB or HxWx4 RGBA uint8 frame of `like`'s size."""
        if self._closed or self._out is None:
            raise RuntimeError("write() on a closed VideoWriter")
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] not in (3, 4)
            or frame.shape[:2] != (self.info.height, self.info.width)
        ):
            # Frames come from our own pipeline, so a wrong shape is a bug, not a user error.
            got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"expected a {self.info.height}x{self.info.width}x3/4 uint8 frame, got {got}")
        if self._alpha and frame.shape[2] == 3:
            frame = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
        elif not self._alpha and frame.shape[2] == 4:
            frame = frame[..., :3]
        vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgba" if self._alpha else "rgb24")
        if self._yuv:
            vframe = vframe.reformat(format=self._pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        vframe.pts = round(self._frame_time(self.frames_written) / self._codec_tb)
        vframe.time_base = self._codec_tb
        try:
            self._out.mux(self._video.encode(vframe))
            self.frames_written += 1
            self._mux_audio_until(self._frame_time(self.frames_written))
        except av.FFmpegError as exc:
            self.abort()
            raise OutputError(f"writing {self.path} failed at frame {self.frames_written} ({_av_reason(exc)})") from exc
        except BaseException:
            self.abort()  # the temp file must not outlive a failed write, context manager or not
            raise

    def _frame_time(self, index: int) -> Fraction:
        return frame_time(self.info.frame_times, index, self._frame_tb)

    def _mux_audio_until(self, seconds: Fraction | None) -> None:
        """Remux source audio packets that start before `seconds` (all that remain if None)."""
        if self._audio_packets is None:
            return
        assert self._out is not None
        while True:
            packet = self._audio_next
            if packet is None:
                try:
                    packet = next(self._audio_packets)
                except StopIteration:
                    self._audio_packets = None
                    return
                except av.FFmpegError as exc:
                    raise InputError(f"reading the audio failed ({_av_reason(exc)})") from exc
                if packet.size == 0:
                    continue  # demux() ends each stream with an empty flush packet
                shift = self._audio_shift[packet.stream.index]
                if packet.pts is not None:
                    packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = self._audio_map[packet.stream.index]
            stamp = packet.dts if packet.dts is not None else packet.pts
            if seconds is not None and stamp is not None and stamp * packet.time_base >= seconds:
                self._audio_next = packet  # not due yet: keep it for the next frame
                return
            self._audio_next = None
            self._out.mux(packet)

    # -- finishing

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, and move the finished file onto `path`."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path}")
        times = self.info.frame_times
        if times is not None and self.frames_written != len(times):
            log.warning("%s: %d frames for the source's %d frame times: the frames may be shown off their own "
                        "times from where a packet decoded to no frame or to several", self.path,
                        self.frames_written, len(times))
        assert self._out is not None and self._tmp is not None
        try:
            self._out.mux(self._video.encode(None))
            self._mux_audio_until(None)
            self._out.close()
        except av.FFmpegError as exc:
            self.abort()
            raise OutputError(f"finishing {self.path} failed ({_av_reason(exc)})") from exc
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._audio_in is not None:
            self._audio_in.close()
        try:
            publish(self._tmp, self.path)
        except OSError as exc:
            discard(self._tmp)
            raise OutputError(f"cannot move the finished video onto {self.path} ({exc.strerror or exc})") from exc

    def abort(self) -> None:
        """Stop writing and delete the temp file; `path` is not touched. Safe to call more than once."""
        self._closed = True
        for container in (self._out, self._audio_in):
            if container is not None:
                try:
                    container.close()
                except (av.FFmpegError, OSError):
                    pass  # the file is being thrown away; a failed trailer write is expected here
        self._out = self._audio_in = None
        if self._tmp is not None:
            discard(self._tmp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


# ---------------------------------------------------------------------------------------------- shot cuts


class _Drawing(NamedTuple):
    mask: np.ndarray  # uint8 0/1 line pixels at the working size
    soft: np.ndarray  # float32 blurred mask, for phase correlation
    lines: int  # number of line pixels


class CutDetector:
    """Streaming shot-cut detector for line art: push frames in order, get True where a cut precedes one.

    Histograms say nothing on line art (every frame is mostly white), so each frame is reduced to a mask
    of its dark lines at about `work_width` pixels wide. Consecutive masks are aligned by phase correlation
    (camera pans, characters sliding across the frame) and compared by how many lines of one fall within
    `radius` pixels of the other's lines, with the hit rate expected by chance subtracted out so that dense
    drawings do not look similar to everything. The better of the two directions is used, so a character
    entering or leaving the shot is not a cut; unrelated drawings score about 0, the same drawing 1.
    `last_score` keeps the most recent score, for tuning `threshold`.
    """

    def __init__(self, threshold: float = 0.25, work_width: int = 160, radius: int = 2) -> None:
        self.threshold = threshold
        self.work_width = work_width
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        self._prev: _Drawing | None = None
        self.last_score: float | None = None

    def push(self, frame: np.ndarray) -> bool:
        drawing = self._drawing(frame)
        prev, self._prev = self._prev, drawing
        if prev is None:
            self.last_score = None
            return False
        if prev.mask.shape != drawing.mask.shape:
            self.last_score = 0.0  # a change of frame size only happens between different footage
            return True
        self.last_score = self._similarity(prev, drawing)
        return self.last_score < self.threshold

    def reset(self) -> None:
        self._prev = None
        self.last_score = None

    def _drawing(self, frame: np.ndarray) -> _Drawing:
        if frame.ndim == 2:
            gray = frame.astype(np.float32)
        else:
            gray = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
            if frame.shape[2] == 4:  # line art on a transparent layer: composite onto white paper
                alpha = frame[..., 3].astype(np.float32) / 255.0
                gray = gray * alpha + 255.0 * (1.0 - alpha)
        # Threshold against the paper's own brightness (scans and pencil tests are rarely pure white).
        paper = float(np.percentile(gray[::4, ::4], 90))
        lines = (gray < 0.7 * paper).astype(np.uint8) * 255
        h, w = lines.shape
        scale = min(1.0, self.work_width / w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # Area-average then "> 0" is a max-pool: a 1-px line survives a 12x downscale instead of fading out.
        mask = (cv2.resize(lines, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)
        return _Drawing(mask, soft, int(mask.sum()))

    def _similarity(self, a: _Drawing, b: _Drawing) -> float:
        min_lines = max(8, a.mask.size // 2000)  # fewer line pixels than this is a blank frame
        a_blank, b_blank = a.lines < min_lines, b.lines < min_lines
        if a_blank or b_blank:
            return 1.0 if a_blank and b_blank else 0.0
        h, w = a.mask.shape
        window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(a.soft, b.soft, window)
        best = self._aligned_score(a.mask, b.mask, 0.0, 0.0)
        if abs(dx) <= w / 3 and abs(dy) <= h / 3 and (abs(dx) >= 1 or abs(dy) >= 1):
            best = max(best, self._aligned_score(a.mask, b.mask, dx, dy))
        return best

    def _aligned_score(self, a: np.ndarray, b: np.ndarray, dx: float, dy: float) -> float:
        h, w = a.shape
        if dx or dy:
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            a = cv2.warpAffine(a, shift, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
            # Only the region both frames show can be compared.
            valid = cv2.warpAffine(np.ones_like(a), shift, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
            b = b * valid
        forward, backward = self._coverage(a, b), self._coverage(b, a)
        # Unshifted, the better direction counts (a character walking in only adds lines). A shift found by
        # correlation must explain both frames, or it merely lined up one shape of two unrelated drawings.
        return max(forward, backward) if not (dx or dy) else min(forward, backward)

    def _coverage(self, lines: np.ndarray, reference: np.ndarray) -> float:
        """Share of `lines` pixels lying near `reference` lines, corrected for chance: 1 = all of them,
        0 = no more than lines scattered at random over the same areas would hit."""
        n = int(lines.sum())
        if n == 0:
            return 0.0
        near = cv2.dilate(reference, self._kernel)
        hit = float((lines & near).sum()) / n
        # Chance is measured locally (the widened reference's density around each line pixel): drawings
        # bunch up mid-frame, so a global density would make unrelated drawings look related.
        k = max(3, (lines.shape[1] // 6) | 1)
        density = cv2.blur(near.astype(np.float32), (k, k))
        chance = float((density * lines).sum()) / n
        if chance > 0.9:
            return 1.0  # lines everywhere: not line art (a dark frame), nothing to judge, never a cut
        return (hit - chance) / (1.0 - chance)


def detect_cuts(frames: Iterable[np.ndarray], threshold: float = 0.25) -> list[int]:
    """Indices i where a shot cut lies between frame i-1 and frame i (see CutDetector)."""
    detector = CutDetector(threshold=threshold)
    return [i for i, frame in enumerate(frames) if detector.push(frame)]
