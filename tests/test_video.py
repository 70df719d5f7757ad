"""Video backend: probe, streaming reader, atomic writer (codecs, alpha, audio remux), cut detection.

Every input is generated here with PyAV, small (64x48, 12-24 frames), so the suite needs no fixtures.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import add_audio as _add_audio
from helpers import has_encoder as _has_encoder
from helpers import make_video as _make_video
from helpers import mux_audio as _mux_audio
from helpers import write_webm_with_alpha

from alacgan_batch.errors import ConfigError, InputError, OutputError
from alacgan_batch.video import (
    CODECS,
    CutDetector,
    VideoInfo,
    VideoReader,
    VideoWriter,
    detect_cuts,
    probe,
    variable_frame_times,
)

W, H = 64, 48


def _needs(codec: str) -> pytest.MarkDecorator:
    encoder = CODECS[codec].encoder
    return pytest.mark.skipif(
        not _has_encoder(encoder), reason=f"codec {codec} is not available in this PyAV build (no {encoder})"
    )


def _gradient_frames(n: int, width: int = W, height: int = H) -> list[np.ndarray]:
    """Smooth frames (codec-friendly) that differ from one another, each with its own mean brightness."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        r = (x * 255 // max(1, width - 1) + i * 5) % 256
        g = np.full_like(x, 40 + i * 8)
        b = y * 255 // max(1, height - 1)
        frames.append(np.dstack([r, g, b]).astype(np.uint8))
    return frames


def _audio_summary(path: Path) -> list[tuple[str, float]]:
    """(codec, duration in seconds) of each audio stream, measured from its packets."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        packets = [p for p in container.demux(*streams) if p.size]
        result = []
        for stream in streams:
            own = [p for p in packets if p.stream.index == stream.index]
            end = max(p.pts + p.duration for p in own)
            start = min(p.pts for p in own)
            result.append((stream.codec_context.name, float((end - start) * stream.time_base)))
        return result


def _info(width: int = W, height: int = H, has_alpha: bool = False, fps: int = 24) -> VideoInfo:
    return VideoInfo(
        width=width,
        height=height,
        frame_count=None,
        fps=Fraction(fps),
        time_base=Fraction(1, 12288),
        pixel_aspect=Fraction(1),
        rotation=0,
        has_alpha=has_alpha,
        has_audio=False,
        codec="rawvideo",
        pix_fmt="rgba" if has_alpha else "rgb24",
    )


def _read_all(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return list(reader)


# ------------------------------------------------------------------------------------------- probe/read


def test_probe_and_read_h264_with_audio(tmp_path: Path) -> None:
    frames = _gradient_frames(16)
    src = _make_video(tmp_path / "src.mp4", frames, fps=24, audio=True)

    info = probe(src)
    assert (info.width, info.height) == (W, H)
    assert info.fps == 24
    assert info.frame_count == 16
    assert info.has_audio and not info.has_alpha
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.rotation == 0 and info.pixel_aspect == 1

    decoded = _read_all(src)
    assert len(decoded) == 16
    for original, got in zip(frames, decoded, strict=True):
        assert got.shape == (H, W, 3) and got.dtype == np.uint8
        # Lossy, but each frame must be the one written at that position.
        assert abs(float(got.mean()) - float(original.mean())) < 6


def test_probe_reports_rotation_and_pixel_aspect(tmp_path: Path) -> None:
    src = _make_video(tmp_path / "r.mp4", _gradient_frames(12), rotation_ccw=-90, sar=Fraction(4, 3))
    info = probe(src)
    assert info.rotation == 90  # clockwise, like a phone's `rotate=90` tag
    assert info.pixel_aspect == Fraction(4, 3)


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_h264_round_trip_keeps_timing_size_metadata_and_audio(tmp_path: Path, ext: str) -> None:
    src = _make_video(
        tmp_path / "src.mp4", _gradient_frames(20), fps=25, audio=True, rotation_ccw=-90, sar=Fraction(4, 3)
    )
    out = tmp_path / f"out{ext}"
    with VideoReader(src) as reader, VideoWriter(out, reader.info, codec="h264", audio_from=src) as writer:
        for frame in reader:
            writer.write(255 - frame)  # stand-in for the colourised frame

    info = probe(out)
    assert (info.width, info.height) == (W, H)
    assert info.fps == 25
    assert info.frame_count in (20, None)  # Matroska keeps no frame count
    assert len(_read_all(out)) == 20
    assert info.rotation == 90
    assert info.pixel_aspect == Fraction(4, 3)
    assert info.has_audio
    if ext != ".mkv":  # Matroska always uses a 1/1000 time base
        assert info.time_base == probe(src).time_base

    ((src_codec, src_seconds),) = _audio_summary(src)
    ((out_codec, out_seconds),) = _audio_summary(out)
    assert out_codec == src_codec == "aac"
    assert out_seconds == pytest.approx(src_seconds, abs=0.03)
    # Remuxed, not re-encoded: the packets are byte-identical.
    with av.open(str(src)) as a, av.open(str(out)) as b:
        src_bytes = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        out_bytes = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert src_bytes == out_bytes


def test_writer_without_audio_source_has_no_audio(tmp_path: Path) -> None:
    out = tmp_path / "silent.mp4"
    with VideoWriter(out, _info()) as writer:
        for frame in _gradient_frames(12):
            writer.write(frame)
    info = probe(out)
    assert not info.has_audio and info.frame_count == 12 and info.fps == 24


@_needs("ffv1")
def test_matroska_source_to_mp4_keeps_an_exact_frame_rate(tmp_path: Path) -> None:
    # Matroska's 1/1000 time base cannot count 24 fps frames exactly; the writer must not copy it into MP4.
    src = _make_video(tmp_path / "src.mkv", _gradient_frames(24), fps=24, encoder="ffv1", pix_fmt="bgr0")
    assert probe(src).time_base == Fraction(1, 1000) and not probe(src).has_audio
    assert variable_frame_times(src) is None  # 41 and 42 ms are one constant rate, rounded
    out = tmp_path / "out.mp4"
    with VideoReader(src) as reader, VideoWriter(out, reader.info, audio_from=src) as writer:
        for frame in reader:
            writer.write(frame)
    info = probe(out)
    assert info.fps == 24 and info.frame_count == 24
    assert not info.has_audio  # audio_from without audio: nothing to copy, no error
    with av.open(str(out)) as container:
        pts = sorted(p.pts for p in container.demux(video=0) if p.size)
    assert len(set(np.diff(pts))) == 1  # every frame lasts exactly 1/24 s: no rounding jitter


# a phone's pencil test: frames held for one, two or three ticks of 1/30 s
_VFR_TIMES_MS = [0, 33, 67, 100, 167, 200, 233, 333, 367, 400, 467, 500]


def _frame_times(path: Path) -> list[float]:
    """Seconds from the first frame (Matroska shifts a whole file by AAC's priming, so that none is negative)."""
    with av.open(str(path)) as container:
        times = [float(frame.time) for frame in container.decode(video=0)]
    return [t - times[0] for t in times]


def test_a_constant_rate_has_no_frame_times(tmp_path: Path) -> None:
    src = _make_video(tmp_path / "cfr.mp4", _gradient_frames(12), fps=24)
    assert variable_frame_times(src) is None


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_a_variable_frame_rate_keeps_each_frames_time_and_the_audio(tmp_path: Path, ext: str) -> None:
    src = _make_video(tmp_path / "vfr.mp4", _gradient_frames(12), fps=30, audio=True, times_ms=_VFR_TIMES_MS)
    assert probe(src).frame_times is None  # only asked for: it reads every packet
    info = dataclasses.replace(probe(src), frame_times=variable_frame_times(src))
    assert info.frame_times is not None
    assert [float(t) for t in info.frame_times] == pytest.approx([t / 1000 for t in _VFR_TIMES_MS], abs=1e-3)
    out = tmp_path / f"out{ext}"
    with VideoReader(src) as reader, VideoWriter(out, info, audio_from=src) as writer:
        for frame in reader:
            writer.write(frame)
    assert _frame_times(out) == pytest.approx([t / 1000 for t in _VFR_TIMES_MS], abs=1e-3)
    ((_, src_seconds),) = _audio_summary(src)
    ((_, out_seconds),) = _audio_summary(out)
    assert out_seconds == pytest.approx(src_seconds, abs=0.03)


@_needs("ffv1")
def test_two_frames_at_one_time_are_no_variable_rate(tmp_path: Path) -> None:
    # frames given one time could not be written (MP4 refuses equal timestamps): written at the average rate
    times = [0, 33, 67, 67, 100, 133, 167, 200]
    src = _make_video(tmp_path / "dup.mkv", _gradient_frames(8), fps=30, encoder="ffv1", pix_fmt="bgr0",
                      times_ms=times)
    assert variable_frame_times(src) is None


def test_frames_past_the_sources_times_follow_at_the_average_rate(tmp_path: Path, caplog) -> None:
    like = dataclasses.replace(_info(fps=10), time_base=Fraction(1, 1000),
                               frame_times=(Fraction(0), Fraction(1, 10), Fraction(3, 10)))
    out = tmp_path / "out.mp4"
    with VideoWriter(out, like) as writer:
        for frame in _gradient_frames(5):
            writer.write(frame)
    assert _frame_times(out) == pytest.approx([0, 0.1, 0.3, 0.4, 0.5], abs=1e-3)
    assert "5 frames for the source's 3 frame times" in caplog.text


@_needs("ffv1")
def test_a_variable_frame_rate_into_avi_is_a_config_error(tmp_path: Path) -> None:
    src = _make_video(tmp_path / "vfr.mp4", _gradient_frames(12), fps=30, times_ms=_VFR_TIMES_MS)
    with pytest.raises(ConfigError, match="constant frame rate"):
        VideoWriter(tmp_path / "out.avi", dataclasses.replace(probe(src), frame_times=variable_frame_times(src)),
                    codec="ffv1")
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize(("codec", "name"), [("h264", "c.mp4"), ("prores4444", "c.mov")])
def test_colours_survive_yuv_codecs(tmp_path: Path, codec: str, name: str) -> None:
    if not _has_encoder(CODECS[codec].encoder):
        pytest.skip(f"codec {codec} is not available in this PyAV build")
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (200, 150, 90), (90, 160, 220)]
    pattern = np.zeros((H, W, 3), np.uint8)
    for i, colour in enumerate(colours):
        pattern[:, i * 9 : (i + 1) * 9] = colour
    with VideoWriter(tmp_path / name, _info(), codec=codec) as writer:
        for _ in range(3):
            writer.write(pattern)
    got = _read_all(tmp_path / name)[1]
    for i, colour in enumerate(colours):
        # Centre of each 9-px bar: away from chroma bleeding at the edges. A BT.601/709 mismatch is ~20 off.
        assert np.abs(got[H // 2, i * 9 + 4].astype(int) - colour).max() <= 6, colour
    with av.open(str(tmp_path / name)) as container:
        frame = next(container.decode(video=0))
        assert frame.colorspace == 1  # AVCOL_SPC_BT709: players need not guess the matrix


# ---------------------------------------------------------------------------------------- alpha/lossless


def _half_transparent(n: int) -> list[np.ndarray]:
    frames = []
    for rgb in _gradient_frames(n):
        alpha = np.full((H, W, 1), 255, np.uint8)
        alpha[:, : W // 2] = 0
        frames.append(np.concatenate([rgb, alpha], axis=2))
    return frames


@pytest.mark.parametrize("encoder", ["libvpx-vp9", "libvpx"])
def test_the_alpha_of_a_vp8_or_vp9_webm_is_read(tmp_path: Path, encoder: str) -> None:
    if not _has_encoder(encoder):
        pytest.skip(f"this PyAV build has no {encoder}")
    frames = _half_transparent(6)
    out = write_webm_with_alpha(tmp_path / "alpha.webm", frames, encoder=encoder)
    with av.open(str(out)) as container:  # what libav's own decoder gives: the colour alone
        own = next(container.decode(video=0))
    assert own.format.name == "yuv420p"

    info = probe(out)
    assert info.has_alpha and info.pix_fmt == "yuva420p"
    decoded = _read_all(out)
    assert len(decoded) == 6
    for got in decoded:
        assert got.shape == (H, W, 4)
        assert got[:, : W // 2 - 2, 3].max() <= 8 and got[:, W // 2 + 2 :, 3].min() >= 247


def test_a_rotated_alpha_webm_keeps_its_rotation(tmp_path: Path) -> None:
    # libvpx decodes the alpha, but the display matrix reaches only the frames of the stream's own decoder
    if not _has_encoder("libvpx-vp9"):
        pytest.skip("this PyAV build has no libvpx-vp9")
    out = write_webm_with_alpha(tmp_path / "rotated.webm", _half_transparent(4), rotation_ccw=-90)
    info = probe(out)
    assert info.has_alpha and info.rotation == 90
    assert _read_all(out)[0].shape == (H, W, 4)


@_needs("prores4444")
def test_prores4444_keeps_alpha(tmp_path: Path) -> None:
    out = tmp_path / "alpha.mov"
    frames = _half_transparent(12)
    with VideoWriter(out, _info(has_alpha=True), codec="prores4444") as writer:
        for frame in frames:
            writer.write(frame)

    info = probe(out)
    assert info.has_alpha and info.codec == "prores"
    decoded = _read_all(out)
    assert len(decoded) == 12
    for original, got in zip(frames, decoded, strict=True):
        assert got.shape == (H, W, 4)
        assert got[:, : W // 2, 3].max() <= 2
        assert got[:, W // 2 :, 3].min() >= 253
        visible = (slice(None), slice(W // 2, None), slice(0, 3))
        assert np.abs(got[visible].astype(int) - original[visible]).mean() < 3


@_needs("prores4444")
def test_prores4444_of_an_opaque_source_reads_back_as_rgb(tmp_path: Path) -> None:
    out = tmp_path / "opaque.mov"
    with VideoWriter(out, _info(has_alpha=False), codec="prores4444") as writer:
        for frame in _gradient_frames(12):
            writer.write(frame)
    assert not probe(out).has_alpha
    assert _read_all(out)[0].shape == (H, W, 3)


@_needs("png")
def test_png_in_mov_is_lossless_with_alpha(tmp_path: Path) -> None:
    out = tmp_path / "png.mov"
    frames = _half_transparent(12)
    with VideoWriter(out, _info(has_alpha=True), codec="png") as writer:
        for frame in frames:
            writer.write(frame)
    assert probe(out).codec == "png"
    decoded = _read_all(out)
    assert len(decoded) == 12
    for original, got in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(got, original)


@_needs("ffv1")
@pytest.mark.parametrize("has_alpha", [False, True])
def test_ffv1_round_trip_is_lossless(tmp_path: Path, has_alpha: bool) -> None:
    rng = np.random.default_rng(0)
    width, height = 63, 47  # odd sizes too: no chroma subsampling in the way
    frames = [rng.integers(0, 256, (height, width, 4 if has_alpha else 3), np.uint8) for _ in range(12)]
    out = tmp_path / "lossless.mkv"
    with VideoWriter(out, _info(width, height, has_alpha=has_alpha), codec="ffv1") as writer:
        for frame in frames:
            writer.write(frame)
    assert probe(out).has_alpha == has_alpha
    decoded = _read_all(out)
    assert len(decoded) == len(frames)
    for original, got in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(got, original)


# ------------------------------------------------------------------------------------------- bad inputs


def test_text_file_named_mp4_is_an_input_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(InputError, match="not a readable video"):
        probe(fake)
    with pytest.raises(InputError):
        VideoReader(fake)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as container:
        _mux_audio(container, _add_audio(container), 0.5)
    with pytest.raises(InputError, match="no video stream"):
        probe(path)


def _zero_frame_mkv(path: Path) -> Path:
    # A video track with no packets; the audio makes Matroska write a complete file.
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        _mux_audio(container, _add_audio(container), 0.5)
    return path


def _zero_frame_mp4(path: Path) -> Path:
    # Fragmented MP4 keeps an empty track (a plain MP4 would drop it).
    with av.open(str(path), "w", options={"movflags": "+frag_keyframe+empty_moov"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize("make", [_zero_frame_mkv, _zero_frame_mp4])
def test_zero_frame_video_is_an_input_error(tmp_path: Path, make) -> None:
    path = make(tmp_path / f"empty{'.mkv' if make is _zero_frame_mkv else '.mp4'}")
    assert probe(path).frame_count == 0
    with VideoReader(path) as reader, pytest.raises(InputError, match="has no video frames"):
        for _ in reader:
            pass


def test_a_truncated_matroska_is_an_input_error_and_a_whole_one_reads_in_full(tmp_path: Path) -> None:
    whole = _make_video(tmp_path / "whole.mkv", _gradient_frames(30), fps=24, encoder="ffv1", pix_fmt="bgr0")
    assert probe(whole).frame_count is None and probe(whole).announced_frames == 30  # from the DURATION tag
    assert len(_read_all(whole)) == 30
    cut = tmp_path / "cut.mkv"  # a copy that stopped half-way: Matroska keeps no count, so it just ends early
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with VideoReader(cut) as reader, pytest.raises(InputError, match=r"ends after \d+ of the 30 frames .*truncated"):
        for _ in reader:
            pass


# ------------------------------------------------------------------------------------------ writer errors


def test_unknown_codec_is_a_config_error_naming_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="h264, prores4444, png, ffv1"):
        VideoWriter(tmp_path / "x.mp4", _info(), codec="hevc-magic")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("codec", "name"), [("prores4444", "x.mp4"), ("ffv1", "x.mp4"), ("png", "x.mkv")])
def test_container_that_does_not_fit_the_codec_is_a_config_error(tmp_path: Path, codec: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"codec {codec} cannot be written to a"):
        VideoWriter(tmp_path / name, _info(), codec=codec)
    assert list(tmp_path.iterdir()) == []


def test_h264_needs_even_sizes_and_a_sane_crf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even frame size"):
        VideoWriter(tmp_path / "odd.mp4", _info(63, 47))
    with pytest.raises(ConfigError, match="crf"):
        VideoWriter(tmp_path / "x.mp4", _info(), crf=70)


@pytest.mark.skipif(not _has_encoder("libopus"), reason="no Opus encoder in this PyAV build")
def test_audio_that_the_container_cannot_hold_is_a_config_error(tmp_path: Path) -> None:
    src = tmp_path / "src.mkv"
    with av.open(str(src), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        sound = _add_audio(container, "libopus")
        container.mux(stream.encode(av.VideoFrame.from_ndarray(_gradient_frames(1)[0], format="rgb24")))
        container.mux(stream.encode(None))
        _mux_audio(container, sound, 0.2)
    with pytest.raises(ConfigError, match="opus audio of .* cannot be stored in a .avi file"):
        VideoWriter(tmp_path / "out.avi", _info(), codec="ffv1", audio_from=src)
    # .mov refuses Opus only when it starts writing: the same usage error, naming the audio
    with pytest.raises(ConfigError, match=r"the opus audio of .*src.mkv may not go into a .mov file; write .mkv"):
        VideoWriter(tmp_path / "out.mov", _info(), codec="png", audio_from=src)
    assert [p.name for p in tmp_path.iterdir()] == ["src.mkv"]


def test_exception_inside_writer_leaves_no_output_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, _info()) as writer:
        for frame in _gradient_frames(6):
            writer.write(frame)
        # The temp file really is beside the output while writing.
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial.mp4")]
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(KeyboardInterrupt), VideoWriter(out, _info()) as writer:
        writer.write(_gradient_frames(1)[0])
        raise KeyboardInterrupt
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_closing_without_frames_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no frames"), VideoWriter(tmp_path / "none.mp4", _info()):
        pass
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_a_bug_not_a_user_error(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "x.mp4", _info()) as writer:
        with pytest.raises(ValueError, match="expected a 48x64"):
            writer.write(np.zeros((H + 2, W, 3), np.uint8))
        writer.write(np.zeros((H, W, 4), np.uint8))  # RGBA into an opaque codec: alpha is dropped
    assert probe(tmp_path / "x.mp4").frame_count == 1


def test_writer_refuses_to_overwrite_its_audio_source(tmp_path: Path) -> None:
    src = _make_video(tmp_path / "src.mp4", _gradient_frames(12), audio=True)
    with pytest.raises(OutputError, match="overwrite"):
        VideoWriter(src, probe(src), audio_from=src)


# ------------------------------------------------------------------------------------------------ memory


def test_reader_decodes_lazily(tmp_path: Path) -> None:
    frames = _gradient_frames(8)
    src = _make_video(tmp_path / "long.mp4", [frames[i % 8] for i in range(200)])
    with VideoReader(src) as reader:
        frames_iter = iter(reader)
        assert isinstance(frames_iter, Iterator) and inspect.isgenerator(frames_iter)
        assert reader.packets_read == 0  # nothing happens before the first next()
        first = next(frames_iter)
        assert first.shape == (H, W, 3)
        assert reader.frames_read == 1
        # Only the decoder's few frames of delay were demuxed, not the whole file.
        assert reader.packets_read < 40
        rest = sum(1 for _ in frames_iter)
        assert rest == 199 and reader.packets_read >= 200
        with pytest.raises(RuntimeError, match="only once"):
            iter(reader)


# -------------------------------------------------------------------------------------------- shot cuts


def _drawing(kind: int, dx: float = 0.0, angle: float = 0.0, width: int = 96, height: int = 64) -> np.ndarray:
    """Black 1-px line art on white; `kind` picks one of two unrelated drawings."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    centre = (width / 2 + dx, height / 2)
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turn[0, 2] += dx

    def pts(points: list[tuple[float, float]]) -> np.ndarray:
        p = np.array(points, np.float64)
        return np.round(p @ turn[:, :2].T + turn[:, 2]).astype(np.int32)

    if kind == 0:  # a face-ish figure left of centre
        cv2.circle(canvas, (round(centre[0] - 18), round(centre[1])), 14, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.polylines(canvas, [pts([(20, 50), (30, 40), (44, 42), (52, 56)])], False, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.polylines(canvas, [pts([(50, 10), (70, 14), (78, 30), (66, 40)])], True, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(canvas, tuple(pts([(10, 8)])[0]), tuple(pts([(40, 20)])[0]), (0, 0, 0), 1, cv2.LINE_AA)
    else:  # a different layout: boxes and a long diagonal on the right
        cv2.rectangle(canvas, (60, 6), (90, 26), (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (8, 40), (30, 58), (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(canvas, (34, 60), (94, 34), (0, 0, 0), 1, cv2.LINE_AA)
        cv2.ellipse(canvas, (50, 30), (10, 5), 30, 0, 360, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def _pan(kind: int, n: int, step: float, start: float = 0.0) -> list[np.ndarray]:
    # Up to ~8% of the width per frame, with a slight rotation: fast but ordinary motion.
    return [_drawing(kind, dx=start + i * step, angle=0.8 * i) for i in range(n)]


def test_detect_cuts_finds_the_one_cut() -> None:
    frames = _pan(0, 10, step=7.0, start=-30) + _pan(1, 8, step=-3.0)
    assert detect_cuts(frames) == [10]


def test_no_cut_for_smooth_motion() -> None:
    assert detect_cuts(_pan(0, 16, step=7.0, start=-50)) == []
    assert detect_cuts(_pan(1, 12, step=-4.0, start=20)) == []


def test_cut_detector_streams_and_handles_alpha_and_blank_frames() -> None:
    detector = CutDetector()
    assert detector.push(_drawing(0)) is False  # nothing to compare the first frame with
    # The same drawing as lines on a transparent layer is still the same drawing.
    layer = np.zeros((64, 96, 4), np.uint8)
    layer[..., 3] = 255 - _drawing(0, dx=2)[..., 0]
    assert detector.push(layer) is False
    assert detector.push(_drawing(1)) is True
    blank = np.full((64, 96, 3), 255, np.uint8)
    assert detector.push(blank) is True
    assert detector.push(blank) is False


def test_cuts_on_frames_read_from_a_video(tmp_path: Path) -> None:
    frames = _pan(0, 8, step=5.0, start=-20) + _pan(1, 8, step=4.0, start=-15)
    src = _make_video(tmp_path / "shots.mp4", frames)
    with VideoReader(src) as reader:
        assert detect_cuts(reader) == [8]


def test_info_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _info().width = 10  # type: ignore[misc]
