"""`alacgan video` and production formats end to end: audio, alpha, cuts, patterns, layers, bad input."""

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from helpers import (
    draw_frame,
    has_encoder,
    make_video,
    run_cli,
    snapshot,
    stroke_image,
    write_image,
    write_webm_with_alpha,
)

from alacgan_batch.layers import Layers, recompose
from alacgan_batch.video import VideoReader, probe

SIZE = (64, 96)  # height, width: even (h264), not multiples of 16


def lineart_video(path, n=8, cut_at=None, audio=True, times_ms=None):
    frames = []
    for i in range(n):
        if cut_at is not None and i >= cut_at:  # an unrelated drawing after the cut
            grey = np.full(SIZE, 255, np.uint8)
            cv2.circle(grey, (30 + i, 34), 22, 0, 2)
            cv2.line(grey, (60, 5), (90, 60), 0, 2)
        else:
            grey = draw_frame(SIZE, shift=i)
        frames.append(np.repeat(grey[..., None], 3, axis=2))
    return make_video(path, frames, fps=12, audio=audio, times_ms=times_ms)


def test_video_in_video_out_keeps_count_fps_size_and_audio(tmp_path, tiny_model, capsys):
    src = lineart_video(tmp_path / "take.mp4")
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (255, 0, 0)))
    code, stdout, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", tmp_path / "out.mp4",
                                    "--weights", tiny_model, "--json"], capsys)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["written"] == 8 and summary["outputs"] == [str(tmp_path / "out.mp4")]
    a, b = probe(src), probe(tmp_path / "out.mp4")
    assert (b.width, b.height, b.fps, b.frame_count) == (a.width, a.height, a.fps, 8)
    assert b.has_audio
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.png", "out.mp4", "take.mp4"]  # no temp files left


def test_a_variable_frame_rate_video_comes_out_with_its_frame_times(tmp_path, capsys):
    # a phone's pencil test: drawings held for one, two or three ticks; the audio must stay on the same drawing
    times_ms = [0, 83, 167, 333, 417, 500, 667, 750]
    src = lineart_video(tmp_path / "take.mp4", times_ms=times_ms)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (255, 0, 0)))
    code, _, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", tmp_path / "out.mp4", "--engine", "flat"],
                              capsys)
    assert code == 0, stderr
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [float(f.time) for f in container.decode(video=0)] == pytest.approx([t / 1000 for t in times_ms],
                                                                                   abs=1e-3)
    assert probe(tmp_path / "out.mp4").has_audio
    # into frames, which hold no time: the times go beside them, as mkvmerge's timestamp file
    code, _, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", tmp_path / "frames", "--engine", "flat"],
                              capsys)
    assert code == 0, stderr
    lines = (tmp_path / "frames" / "take.timecodes.txt").read_text().splitlines()
    assert lines[0] == "# timestamp format v2" and len(list((tmp_path / "frames").glob("take.*.png"))) == 8
    assert [float(x) for x in lines[1:]] == pytest.approx(times_ms, abs=1)
    code, _, stderr = run_cli(["video", src, "-o", tmp_path / "out.avi", "--codec", "ffv1", "--engine", "flat"],
                              capsys)
    assert code == 2 and stderr.count("error:") == 1 and "constant frame rate" in stderr
    assert not (tmp_path / "out.avi").exists()


def _planned_video(path, times_ms=None, n=4):
    from alacgan_batch.sources import VideoSource

    source = VideoSource.open(lineart_video(path, n=n, audio=False, times_ms=times_ms))
    list(source)  # the plan pass, which makes the frame list
    return source


def test_a_variable_rate_run_stopped_before_its_first_frame_leaves_no_folder(tmp_path):
    from alacgan_batch.sinks import FolderSink

    src = _planned_video(tmp_path / "take.mp4", times_ms=[0, 83, 250, 333])
    sink = FolderSink(tmp_path / "out" / "frames", src.frames, src, {"engine": "flat"})
    assert (tmp_path / "out" / "frames" / "take.timecodes.txt").exists()
    sink.abort()
    assert not (tmp_path / "out").exists()


def test_frame_times_never_replace_a_file_no_run_wrote_and_a_run_removes_only_its_own(tmp_path, capsys):
    from alacgan_batch.sinks import FolderSink

    (tmp_path / "vfr").mkdir()
    variable = lineart_video(tmp_path / "vfr" / "take.mp4", n=4, audio=False, times_ms=[0, 83, 250, 333])
    constant = lineart_video(tmp_path / "take.mp4", n=4, audio=False)
    notes = write_image(tmp_path / "out" / "x.png", np.zeros((4, 4), np.uint8)).with_name("take.timecodes.txt")
    notes.write_text("someone's own notes")
    for src in (variable, constant):
        code, _, stderr = run_cli(["video", src, "-o", tmp_path / "out", "--engine", "flat", "--overwrite"], capsys)
        assert code != 0 and stderr.count("error:") == 1 and "take.timecodes.txt" in stderr
        assert notes.read_text() == "someone's own notes" and not list((tmp_path / "out").glob("take.*.png"))
    notes.unlink()
    assert run_cli(["video", variable, "-o", tmp_path / "out", "--engine", "flat"], capsys)[0] == 0
    assert notes.exists()
    # the same frames again from the constant-rate take: the earlier run's times would be wrong, so they go
    assert run_cli(["video", constant, "-o", tmp_path / "out", "--engine", "flat", "--overwrite"], capsys)[0] == 0
    assert not notes.exists()
    # another video's frames in the folder do not touch this one's times
    src = _planned_video(tmp_path / "other.mp4", times_ms=[0, 83, 250, 333])
    FolderSink(tmp_path / "out" / "other.####.png", src.frames, src, {"engine": "flat"}).close()
    assert (tmp_path / "out" / "other.timecodes.txt").exists() and (tmp_path / "out" / "x.png").exists()


def test_frames_past_the_videos_times_follow_at_its_average_rate(tmp_path, monkeypatch, caplog):
    from fractions import Fraction as F

    from alacgan_batch import video
    from alacgan_batch.sinks import FolderSink

    src = _planned_video(tmp_path / "take.mp4", times_ms=[0, 83, 250, 333])
    # a decoder that gave one frame more than there were packets
    monkeypatch.setattr(video, "variable_frame_times", lambda path: (F(0), F(1, 12), F(1, 4)))
    FolderSink(tmp_path / "out", src.frames, src, {"engine": "flat"}).close()
    lines = (tmp_path / "out" / "take.timecodes.txt").read_text().splitlines()[1:]
    past = 250 + 1000 / float(src.info.fps)  # the average rate the container reports
    assert [float(x) for x in lines] == pytest.approx([0, 83.333, 250, past], abs=0.01)
    assert "4 frames for the video's 3 frame times" in caplog.text


def test_prores4444_with_transparent_background_keeps_an_alpha_plane(tmp_path, capsys):
    src = lineart_video(tmp_path / "take.mp4", n=4, audio=False)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (0, 200, 0)))
    code, _, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", tmp_path / "out.mov", "--codec",
                               "prores4444", "--engine", "flat", "--background", "transparent"], capsys)
    assert code == 0, stderr
    assert probe(tmp_path / "out.mov").has_alpha
    with VideoReader(tmp_path / "out.mov") as reader:
        first = next(iter(reader))
    assert first.shape == (*SIZE, 4)
    assert first[2, 2, 3] < 10  # the outside (paper touching the border) is transparent
    assert first[30, 30, 3] > 245 and first[30, 30, 1] > 150  # the hinted region is opaque green


@pytest.mark.skipif(not has_encoder("libvpx-vp9"), reason="no libvpx-vp9 in this PyAV")
def test_lines_in_the_alpha_of_a_vp9_webm_are_read_as_lines(tmp_path, capsys):
    # the flat engine colours them: lines read from the alpha (the decoder) and an opaque output (compose)
    # lines as a compositor renders them: black, held only by the alpha plane over transparent paper
    frames = []
    for i in range(4):
        alpha = 255 - draw_frame(SIZE, shift=i)
        frames.append(np.dstack([np.zeros((*SIZE, 3), np.uint8), alpha]))
    write_webm_with_alpha(tmp_path / "take.webm", frames, fps=12)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (255, 0, 0)))
    code, _, stderr = run_cli(["video", tmp_path / "take.webm", "--hints", f"{hint}@0", "-o",
                               tmp_path / "frames" / "f.####.png", "--engine", "flat"], capsys)
    assert code == 0, stderr
    for i in range(4):
        image = cv2.imread(str(tmp_path / "frames" / f"f.{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        red = (image[..., 2] > 200) & (image[..., 1] < 60) & (image[..., 3] > 200)
        inside = np.zeros(SIZE, bool)  # the rectangle's inside, clear of its lines
        inside[SIZE[0] // 8 + 3:SIZE[0] * 3 // 4 - 3, SIZE[1] // 8 + i + 3:SIZE[1] // 2 + i - 3] = True
        assert red[inside].mean() > 0.95 and red[~inside].mean() < 0.05, f"frame {i}"
        assert image[SIZE[0] // 8, SIZE[1] // 4, :3].max() < 80  # the top line is drawn, dark


def test_propagation_never_crosses_a_cut(tmp_path, capsys):
    src = lineart_video(tmp_path / "take.mp4", n=8, cut_at=4, audio=False)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (255, 0, 0)))
    out = tmp_path / "frames" / "f.####.png"
    code, stdout, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", out, "--engine", "flat", "--json"],
                                   capsys)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["shots"] == 2 and len(summary["unhinted_shots"]) == 1 and "no hints" in stderr
    for i in range(8):
        image = cv2.imread(str(tmp_path / "frames" / f"f.{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        red = (image[..., 2] > 200) & (image[..., 1] < 60) & (image[..., 0] < 60) & (image[..., 3] > 200)
        assert (red.sum() > 50) == (i < 4), f"frame {i}"
    assert not (tmp_path / "frames" / "take.timecodes.txt").exists()  # a constant rate needs none

    code, _, stderr = run_cli(["video", src, "--hints", f"{hint}@0", "-o", tmp_path / "x.mp4", "--engine", "flat",
                               "--on-missing-hints", "error"], capsys)
    assert code == 3 and "no hints" in stderr and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("case", ["text", "zero_frames", "codec"])
def test_bad_video_input_is_a_clear_error_and_leaves_nothing(case, tmp_path, capsys):
    src = tmp_path / "take.mp4"
    args = ["video", src, "-o", tmp_path / "out" / "o.mp4", "--engine", "flat"]
    if case == "text":
        src.write_text("not a video")
    elif case == "zero_frames":
        with av.open(str(tmp_path / "take.mkv"), "w") as container:
            stream = container.add_stream("ffv1", rate=24)
            stream.width, stream.height = 32, 32
        args[1] = tmp_path / "take.mkv"
    else:
        lineart_video(src, n=2, audio=False)
        args += ["--codec", "mpeg9"]
    code, _, stderr = run_cli(args, capsys)
    assert code in (2, 3) and stderr.count("error:") == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_patterns_in_and_out_keep_numbers_and_padding(tmp_path, capsys):
    for n in range(1001, 1007):
        write_image(tmp_path / "in" / f"shot.{n:04d}.png", draw_frame(SIZE, shift=n - 1000))
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (0, 0, 255)))
    code, stdout, stderr = run_cli(["colorize", tmp_path / "in" / "shot.####.png", "--hints", f"{hint}@1001",
                                    "--frames", "1001-1005x2", "-o", tmp_path / "out" / "c_%05d.png", "--engine",
                                    "flat", "--json"], capsys)
    assert code == 0, stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["c_01001.png", "c_01003.png", "c_01005.png"]
    (tmp_path / "in" / "shot.1004.png").unlink()
    code, _, stderr = run_cli(["colorize", tmp_path / "in" / "shot.####.png", "-o", tmp_path / "o2", "--engine",
                               "flat"], capsys)
    assert code == 3 and "1004" in stderr
    code, stdout, stderr = run_cli(["colorize", tmp_path / "in" / "shot.####.png", "-o", tmp_path / "o2", "--engine",
                                    "flat", "--on-missing-frames", "skip", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["frames"] == 5


def test_layers_recompose_to_the_final_frame(frames_dir, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", out, "--weights", tiny_model, "--layers"], capsys)
    assert code == 0, stderr
    for frame in sorted(frames_dir.iterdir()):
        parts = {name: cv2.cvtColor(cv2.imread(str(out / "layers" / name / frame.name), cv2.IMREAD_UNCHANGED),
                                    cv2.COLOR_BGRA2RGBA) for name in ("line", "flat", "shading")}
        final = cv2.cvtColor(cv2.imread(str(out / frame.name)), cv2.COLOR_BGR2RGB)
        rebuilt = recompose(Layers(parts["line"], parts["flat"], parts["shading"]))
        assert np.abs(rebuilt.astype(int) - final.astype(int)).max() <= 2


def test_flatten_and_palette_give_one_colour_per_region(frames_dir, tiny_model, tmp_path, capsys):
    sheet = tmp_path / "sheet.json"
    sheet.write_text(json.dumps({"name": "test", "colors": {"a": "#ff0000", "b": [0, 0, 255], "c": "#ffffff"}}))
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "out", "--weights", tiny_model,
                               "--palette", sheet, "--no-lines"], capsys)
    assert code == 0, stderr
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "shot.0001.png")), cv2.COLOR_BGR2RGB)
    from alacgan_batch.regions import segment_regions
    from alacgan_batch.sequence import read_lineart

    labels = segment_regions(read_lineart(frames_dir / "shot.0001.png").coverage)
    allowed = {(255, 0, 0), (0, 0, 255), (255, 255, 255)}
    for label in np.unique(labels[labels > 0]):
        colours = {tuple(c) for c in image[labels == label]}
        assert len(colours) == 1 and colours <= allowed


def test_hints_preview_writes_a_contact_sheet(frames_dir, tmp_path, capsys):
    hint = write_image(tmp_path / "key.png", stroke_image((72, 100), (20, 30), (255, 0, 0)))
    code, _, stderr = run_cli(["hints", "preview", frames_dir, "--hints", f"{hint}@1", "-o", tmp_path / "s.png",
                               "--columns", "3"], capsys)
    assert code == 0, stderr
    sheet = cv2.imread(str(tmp_path / "s.png"))
    assert sheet.shape[1] == 3 * (320 + 4) and sheet.shape[0] > 2 * 200
    red = (sheet[..., 2] > 200) & (sheet[..., 1] < 80) & (sheet[..., 0] < 80)
    assert red.sum() > 100  # the strokes are drawn on the thumbnails


def test_hints_preview_hatches_regions_no_stroke_reaches(frames_dir, tmp_path, capsys):
    def orange(path) -> int:
        sheet = cv2.imread(str(path))  # BGR
        return int(((sheet[..., 2] > 230) & (abs(sheet[..., 1].astype(int) - 140) < 25) & (sheet[..., 0] < 40)).sum())

    # one stroke in the rectangle: the circle and the paper around both get none, in every frame
    rect = write_image(tmp_path / "rect" / "shot.0001.png", stroke_image((72, 100), (20, 30), (255, 0, 0)))
    code, _, stderr = run_cli(["hints", "preview", frames_dir, "--hints", rect.parent, "-o", tmp_path / "a.png"],
                              capsys)
    assert code == 0, stderr
    assert "5 frame(s) hold a region no stroke reaches" in stderr and "frame 3," in stderr
    assert orange(tmp_path / "a.png") > 500
    # strokes in all three regions: nothing to report, nothing hatched
    every = stroke_image((72, 100), (20, 30), (255, 0, 0)) | stroke_image((72, 100), (75, 36), (0, 0, 255)) \
        | stroke_image((72, 100), (5, 64), (0, 255, 0))
    write_image(tmp_path / "every" / "shot.0001.png", every)
    code, _, stderr = run_cli(["hints", "preview", frames_dir, "--hints", tmp_path / "every", "-o",
                               tmp_path / "b.png"], capsys)
    assert code == 0 and "no stroke reaches" not in stderr, stderr
    assert orange(tmp_path / "b.png") == 0


def test_inputs_are_never_touched(frames_dir, tmp_path, capsys):
    before = snapshot(frames_dir)
    run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "o"], capsys)
    assert snapshot(frames_dir) == before


def test_a_frame_folder_is_one_shot_unless_cuts_are_asked_for(tmp_path, capsys):
    for i in range(6):
        grey = draw_frame(SIZE, shift=i) if i < 3 else np.full(SIZE, 255, np.uint8)
        if i >= 3:
            cv2.circle(grey, (30 + i, 34), 22, 0, 2)
            cv2.line(grey, (60, 5), (90, 60), 0, 2)
        write_image(tmp_path / "in" / f"s.{i + 1:04d}.png", grey)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (255, 0, 0)))
    args = ["colorize", tmp_path / "in", "--hints", f"{hint}@1", "--engine", "flat", "--json"]
    code, stdout, stderr = run_cli([*args, "-o", tmp_path / "a"], capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["shots"] == 1
    code, stdout, stderr = run_cli([*args, "-o", tmp_path / "b", "--cuts"], capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["shots"] == 2


def test_exr_output_through_the_exr_extra(frames_dir, tmp_path, capsys):
    openexr = pytest.importorskip("OpenEXR")  # the test extra installs it; `pip install alacgan-batch[exr]`
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "o" / "f.####.exr"],
                              capsys)
    assert code == 0, stderr
    with openexr.File(str(tmp_path / "o" / "f.0003.exr")) as exr:
        pixels = next(iter(exr.channels().values())).pixels
    png = cv2.imread(str(frames_dir / "shot.0003.png"), cv2.IMREAD_GRAYSCALE)
    assert pixels.shape[:2] == png.shape and pixels.dtype == np.float32
    lines = png < 128
    assert np.allclose(pixels[lines][:, 0], png[lines] / 255.0, atol=1e-6)  # lines exact, as in PNG output


def test_video_takes_the_finishing_options_of_colorize(tmp_path, capsys):
    src = lineart_video(tmp_path / "take.mp4", n=3, audio=False)
    hint = write_image(tmp_path / "key.png", stroke_image(SIZE, (30, 30), (250, 10, 10)))
    sheet = tmp_path / "sheet.json"
    sheet.write_text(json.dumps({"colors": {"red": "#c83232", "blue": "#3232c8"}}))
    args = ["video", src, "--hints", f"{hint}@0", "--engine", "flat"]
    code, _, stderr = run_cli([*args, "-o", tmp_path / "lined" / "f.####.png"], capsys)
    assert code == 0, stderr
    code, _, stderr = run_cli([*args, "-o", tmp_path / "out" / "f.####.png", "--palette", sheet, "--layers",
                               "--no-lines"], capsys)
    assert code == 0, stderr
    for i in range(3):
        lined = cv2.imread(str(tmp_path / "lined" / f"f.{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(tmp_path / "out" / f"f.{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        assert tuple(image[30, 30]) == (50, 50, 200, 255)  # BGRA: the hint's red snapped to the sheet's
        ink = (lined[..., :3].max(axis=2) < 60) & (lined[..., 3] > 200)
        assert ink.sum() > 100 and not ((image[..., :3].max(axis=2) < 60) & (image[..., 3] > 200)).any()
        for layer in ("line", "flat", "shading"):
            assert (tmp_path / "out" / "layers" / layer / f"f.{i:04d}.png").is_file()


def test_options_a_video_cannot_take_are_refused_not_ignored(tmp_path, capsys):
    src = lineart_video(tmp_path / "take.mp4", n=3, audio=False)
    code, _, stderr = run_cli(["video", src, "--engine", "flat", "--layers", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 2 and "--layers" in stderr and stderr.count("error:") == 1
    code, _, stderr = run_cli(["colorize", src, "--engine", "flat", "--frames", "1-2", "-o", tmp_path / "f"], capsys)
    assert code == 2 and "--frames" in stderr and stderr.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp4"]


def test_selected_frames_into_a_video_with_keyframes_outside_them(frames_dir, tmp_path, capsys):
    for n in (1, 5):
        write_image(tmp_path / "hints" / f"shot.{n:04d}.png", stroke_image((72, 100), (30 + n, 40), (230, 20, 20)))
    code, stdout, stderr = run_cli(["colorize", frames_dir, "--hints", tmp_path / "hints", "--engine", "flat",
                                    "--frames", "2-3", "-o", tmp_path / "part.mkv", "--codec", "ffv1", "--json"],
                                   capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["written"] == 2 and probe(tmp_path / "part.mkv").announced_frames == 2
    with VideoReader(tmp_path / "part.mkv") as reader:
        frames = list(reader)
    assert len(frames) == 2
    assert frames[1][40, 33, 0] > 200 and frames[1][40, 33, 1] < 60  # frame 3 carries the keyframes' red
    # the video takes the size of the first selected frame, not of the sequence's first
    write_image(frames_dir / "shot.0001.png", draw_frame((80, 100)))
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "--frames", "2-3", "-o",
                               tmp_path / "later.mkv", "--codec", "ffv1"], capsys)
    assert code == 0 and probe(tmp_path / "later.mkv").height == 72, stderr


def test_what_the_encoder_cannot_take_is_refused_before_the_plan_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    src = lineart_video(tmp_path / "take.mp4", audio=False)
    planned = []
    from alacgan_batch import pipeline

    plan = pipeline.build_plan
    monkeypatch.setattr(pipeline, "build_plan", lambda *a, **k: planned.append(1) or plan(*a, **k))
    new = tmp_path / "new"
    for options, fragment in ((["--codec", "png", "-o", new / "sub" / "x.mp4"], "cannot be written to a .mp4"),
                              (["--crf", "99", "-o", new / "x.mp4"], "crf must be between 0 and 51"),
                              (["--codec", "foo", "-o", new / "x.mkv"], "unknown video codec 'foo'")):
        code, _, stderr = run_cli(["video", src, "--engine", "flat", *options], capsys)
        assert code == 2 and fragment in stderr and stderr.count("error:") == 1, stderr
    assert planned == [] and not (tmp_path / "new").exists()  # not even the folders it would have made
    # a frame of another size found while colouring: the run fails, and the folders it made go with it
    frames = tmp_path / "frames"
    write_image(frames / "shot.0001.png", draw_frame(SIZE))
    write_image(frames / "shot.0002.png", draw_frame((SIZE[0] + 2, SIZE[1])))
    code, _, stderr = run_cli(["colorize", frames, "--engine", "flat", "-o", tmp_path / "new" / "x.mp4"], capsys)
    assert code == 3 and "every frame of a video must have one size" in stderr
    assert not (tmp_path / "new").exists()
    # video into frames already there: refused before the plan, as for a folder input
    assert run_cli(["video", src, "--engine", "flat", "-o", tmp_path / "out" / "f.####.png"], capsys)[0] == 0
    planned.clear()
    code, _, stderr = run_cli(["video", src, "--engine", "flat", "-o", tmp_path / "out" / "f.####.png"], capsys)
    assert code == 5 and "already holds 8 of 8 frames" in stderr and planned == []


def test_other_containers_in_and_the_default_output_one_the_codec_can_be_written_to(tmp_path, capsys):
    frames = [np.repeat(draw_frame(SIZE, shift=i)[..., None], 3, axis=2) for i in range(6)]
    clip = make_video(tmp_path / "clip.ts", frames, fps=24)  # MPEG-TS, as broadcast and some cameras write
    code, _, stderr = run_cli(["video", clip, "--engine", "flat"], capsys)
    assert code == 0, stderr
    assert probe(tmp_path / "clip_color.mp4").frame_count == 6  # h264 cannot go into .ts: the default is .mp4
    # into AVI (which has no timestamps of its own) from an MP4 whose time base is 1/12288: one tick a frame
    src = lineart_video(tmp_path / "take.mp4", audio=False)
    code, _, stderr = run_cli(["video", src, "--engine", "flat", "--codec", "ffv1", "-o", tmp_path / "t.avi"], capsys)
    assert code == 0, stderr
    with av.open(str(tmp_path / "t.avi")) as container:
        stream = container.streams.video[0]
        assert stream.time_base == stream.average_rate ** -1 == probe(src).fps ** -1
        assert [frame.pts for frame in container.decode(stream)] == list(range(8))


def test_frames_into_a_video_at_the_rate_asked_and_video_settings_that_cannot_apply_are_refused(frames_dir, tmp_path,
                                                                                                capsys):
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "--fps", "24000/1001", "-o",
                               tmp_path / "take.mov", "--codec", "png"], capsys)
    assert code == 0, stderr
    info = probe(tmp_path / "take.mov")
    assert info.fps == Fraction(24000, 1001) and info.frame_count == 5
    assert run_cli(["colorize", frames_dir, "--engine", "flat", "--fps", "25", "-o", tmp_path / "t25.mp4"],
                   capsys)[0] == 0
    assert probe(tmp_path / "t25.mp4").fps == 25
    assert run_cli(["colorize", frames_dir, "--engine", "flat", "--fps", "23.976023976", "-o", tmp_path / "t.mp4"],
                   capsys)[0] == 0  # a rate typed with many digits is the video rate it means
    assert probe(tmp_path / "t.mp4").fps == Fraction(24000, 1001)
    src = lineart_video(tmp_path / "in.mp4", audio=False)
    for args, fragment in (
            (["colorize", frames_dir, "--codec", "ffv1", "-o", tmp_path / "f"], "--codec set how a video is written"),
            (["colorize", frames_dir, "--crf", "20", "--fps", "25", "-o", tmp_path / "f"], "--crf and --fps set how"),
            (["video", src, "--crf", "20", "-o", tmp_path / "f" / "x.####.png"], "--crf set how a video is written"),
            (["colorize", src, "--fps", "30", "-o", tmp_path / "x.mp4"], "in.mp4 keeps its own"),
            (["colorize", frames_dir, "--fps", "fast", "-o", tmp_path / "x.mp4"], "cannot read frame rate 'fast'"),
            (["colorize", frames_dir, "--fps", "1e-9", "-o", tmp_path / "x.mp4"], "frame rate must be from 1 to 1000"),
            (["colorize", frames_dir, "--codec", "ffv1", "--crf", "9", "-o", tmp_path / "x.mkv"], "ffv1 has none")):
        code, _, stderr = run_cli([*args, "--engine", "flat"], capsys)
        assert code == 2 and fragment in stderr and stderr.count("error:") == 1, (args, stderr)
    assert not (tmp_path / "f").exists() and not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.mkv").exists()
