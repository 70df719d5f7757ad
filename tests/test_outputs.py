"""Outputs: never written over an input, readable by others, no temp files left; a stopped run ends cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import draw_frame, make_video, run_cli, snapshot, stroke_image, write_image

from alacgan_batch import writer
from alacgan_batch.errors import OutputError


def _hint(tmp_path: Path, folder: str = "hints") -> Path:
    return write_image(tmp_path / folder / "shot.0001.png", stroke_image((72, 100), (30, 40), (0, 0, 255)))


@pytest.mark.parametrize("case", ["hint_folder", "pattern_in_input", "jpg_pattern", "sheet_on_frame",
                                  "sheet_on_hint", "sheet_in_input", "sheet_jpg", "sheet_folder", "video_exists"])
def test_an_output_over_an_input_or_an_earlier_result_is_refused(case, frames_dir, tmp_path, capsys):
    hint = _hint(tmp_path)
    args = ["colorize", frames_dir, "--hints", hint.parent, "--engine", "flat", "--overwrite"]
    guarded = [frames_dir, hint.parent]
    if case == "hint_folder":  # the hint shot.0001.png would be replaced by the coloured shot.0001.png
        args += ["-o", hint.parent]
    elif case == "pattern_in_input":  # the next run would read the colour frames as line art
        args += ["-o", frames_dir / "color.####.png"]
    elif case == "jpg_pattern":
        args += ["-o", tmp_path / "out" / "shot.####.jpg"]
    elif case == "sheet_on_frame":
        args = ["hints", "preview", frames_dir, "--hints", hint.parent, "-o", frames_dir / "shot.0002.png"]
    elif case == "sheet_on_hint":
        args = ["hints", "preview", frames_dir, "--hints", hint.parent, "-o", hint]
    elif case in ("sheet_in_input", "sheet_jpg", "sheet_folder"):  # a new file there would join the frames
        target = {"sheet_in_input": frames_dir / "sheet.png", "sheet_jpg": tmp_path / "sheet.jpg",
                  "sheet_folder": tmp_path / "hints"}[case]
        args = ["hints", "preview", frames_dir, "--hints", hint.parent, "-o", target]
    else:
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "take.mp4").write_bytes(b"an earlier delivery")
        args = ["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out" / "take.mp4"]
        guarded.append(tmp_path / "out")
    before = [snapshot(folder) for folder in guarded]
    code, _, stderr = run_cli(args, capsys)
    assert code == 5, stderr
    assert stderr.count("error:") == 1 and "Traceback" not in stderr
    assert [snapshot(folder) for folder in guarded] == before
    assert not (tmp_path / "out").exists() or case == "video_exists"
    assert not list(tmp_path.glob("sheet*"))


def test_a_video_is_replaced_only_with_overwrite(frames_dir, tmp_path, capsys):
    target = tmp_path / "take.mp4"
    target.write_bytes(b"an earlier delivery")
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", target, "--overwrite"], capsys)
    assert code == 0, stderr
    with av.open(str(target)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5


def test_earlier_frames_are_refused_before_the_long_plan_pass(frames_dir, tmp_path, monkeypatch):
    from alacgan_batch import pipeline

    out = tmp_path / "out"
    pipeline.colorize_sequence(frames_dir, output=out, engine="flat")

    def no_plan(*args, **kwargs):
        raise AssertionError("planned before refusing")

    monkeypatch.setattr(pipeline, "build_plan", no_plan)
    with pytest.raises(OutputError, match="already holds 5 of 5 frames"):
        pipeline.colorize_sequence(frames_dir, output=out, engine="flat")


def test_outputs_get_the_usual_permissions_and_resume_clears_temp_files_of_a_killed_run(frames_dir, tmp_path,
                                                                                         capsys):
    out = tmp_path / "out"
    args = ["colorize", frames_dir, "--engine", "flat", "--layers", "-o", out]
    assert run_cli(args, capsys)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()} == {0o666 & ~umask}
    # a run killed (SIGKILL) mid-write leaves its temp files; --resume finishes and clears them
    (out / "shot.0004.png").unlink()
    stale = [out / ".shot.0004.k3j9.partial.png", out / ".alacgan-manifest.x1.partial.json",
             next((out / "layers").rglob("*.png")).with_name(".shot.0004.q2.partial.png")]
    for path in stale:  # no run holds them: their writer was killed (a moment ago)
        path.write_bytes(b"half")
        _age(path, writer.FRESH_PARTIAL_SECONDS + 1)
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 0, stderr
    assert (out / "shot.0004.png").exists()
    assert not [p for p in out.rglob("*") if ".partial" in p.name]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


_HOLD = ("import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); "
         "time.sleep(120)")  # a run writing a temp file: it holds its lock


def test_temp_files_of_runs_still_writing_into_the_folder_are_left_alone(frames_dir, tmp_path, capsys):
    """Two farm jobs may write into one folder (or one container's job beside another's): a run clears only the
    temp files no live run holds."""
    out = tmp_path / "shared"
    partials = {
        "killed": out / ".shot.0001.a1.partial.png",
        "writing": out / "renders" / ".take.b2.partial.mp4",
        "just made": out / ".shot.0002.c3.partial.png",
    }
    for path in partials.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    for name in ("killed", "writing"):
        _age(partials[name], 3 * 3600)  # a slow render may leave its file untouched a long time
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(partials["writing"])], stdout=subprocess.PIPE,
                              text=True)
    try:
        holder.stdout.readline()  # it holds the lock
        assert run_cli(["colorize", frames_dir, "--engine", "flat", "-o", out], capsys)[0] == 0
        assert {name for name, path in partials.items() if path.exists()} == {"writing", "just made"}
        assert writer.remove_partials(out / "renders", stem="take") == []  # a video output's own cleanup too
    finally:
        holder.kill()
        holder.wait()
    assert writer.remove_partials(out / "renders", stem="take") == [partials["writing"]]


def test_frames_of_another_size_cannot_go_into_one_video(frames_dir, tmp_path, capsys):
    write_image(frames_dir / "shot.0006.png", draw_frame((80, 100)))
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "take.mp4"], capsys)
    assert code == 3 and stderr.count("error:") == 1 and "shot.0006.png is 100x80" in stderr
    assert list(tmp_path.glob("*take*")) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_until_loading(run: subprocess.Popen) -> None:
    """Wait until the command's own signal handling is in place (it catches SIGTERM, which Python alone does
    not) and it is loading the library; fail if torch was loaded by then (the signal would not land while
    loading). Read from /proc, so no guess of how long start-up takes on this machine."""
    status, maps = Path(f"/proc/{run.pid}/status"), Path(f"/proc/{run.pid}/maps")
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        caught = next(int(line.split()[1], 16) for line in status.read_text().splitlines()
                      if line.startswith("SigCgt:"))
        if caught >> (signal.SIGTERM - 1) & 1:
            break
        time.sleep(0.005)
    assert run.poll() is None and time.monotonic() < deadline, "the command never set up its signal handling"
    assert "libtorch" not in maps.read_text(), "torch was already loaded: the signal would not land while loading"


@pytest.mark.parametrize(("signum", "target"), [(signal.SIGINT, "frames"), (signal.SIGTERM, "frames"),
                                                (signal.SIGTERM, "video")])
def test_a_stopped_run_exits_nonzero_cleans_up_and_can_be_finished(signum, target, tmp_path):
    frames = tmp_path / "lineart"
    for i in range(1, 41):  # enough frames at 256 px that planning and colouring take a few seconds
        write_image(frames / f"shot.{i:04d}.png", draw_frame((256, 256), shift=i))
    write_image(tmp_path / "hints" / "shot.0001.png", stroke_image((256, 256), (90, 120), (0, 0, 255)))
    scratch = tmp_path / "scratch"  # the run's TMPDIR: its plan folder must be gone afterwards
    scratch.mkdir()
    out = tmp_path / ("out" if target == "frames" else "take.mp4")
    command = [sys.executable, "-m", "alacgan_batch", "colorize", str(frames), "--hints", str(tmp_path / "hints"),
               "--engine", "flat", "-o", str(out)]
    # as a terminal's foreground job: a shell starts background jobs with SIGINT ignored, and Python keeps it so
    run = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while not list(scratch.glob("alacgan-plan-*")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(scratch.iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]
    if target == "frames":
        assert "rerun with --resume" in stderr
        finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        assert sorted(p.name for p in out.glob("shot.*.png")) == sorted(p.name for p in frames.iterdir())
    else:  # a video is whole or absent: the same command starts over
        assert "no video was written" in stderr and not out.exists()
        finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 40


def test_ctrl_c_while_the_command_is_still_loading_is_a_one_line_stop(frames_dir, tmp_path):
    """The package loads torch only when a command needs it, after the command's signal handling is in place."""
    run = subprocess.Popen([sys.executable, "-m", "alacgan_batch", "colorize", str(frames_dir), "-o",
                            str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=_default_sigint)
    _wait_until_loading(run)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "interrupted (SIGINT)" in stderr and "Traceback" not in stderr, stderr
    assert not (tmp_path / "out").exists()


def test_a_command_started_ignoring_ctrl_c_ignores_it_while_loading_too(frames_dir, tmp_path):
    """A shell's background job starts with SIGINT ignored: Ctrl-C at the terminal is not for it, early or late."""
    run = subprocess.Popen([sys.executable, "-m", "alacgan_batch", "colorize", str(frames_dir), "--engine", "flat",
                            "-o", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `alacgan ... &`
    _wait_until_loading(run)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0 and "interrupted" not in stderr, stderr
    assert len(list((tmp_path / "out").glob("shot.*.png"))) == 5


def test_video_to_frames_resumes_and_a_video_output_cannot(tmp_path, capsys):
    drawings = [np.repeat(draw_frame((64, 96), shift=i)[..., None], 3, axis=2) for i in range(6)]
    take = make_video(tmp_path / "take.mp4", drawings, fps=12)
    original = take.read_bytes()  # libx264 here does not always encode the same frames to the same bytes
    args = ["video", take, "--engine", "flat", "-o", tmp_path / "frames" / "shot.####.png"]
    assert run_cli(args, capsys)[0] == 0
    written = sorted((tmp_path / "frames").glob("shot.*.png"))
    assert len(written) == 6
    written[2].unlink()  # as if the run had stopped before this frame
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 0, stderr
    assert sorted((tmp_path / "frames").glob("shot.*.png")) == written
    # another take under the same name is not the run's input: resuming into its frames is refused
    written[2].unlink()
    make_video(take, [np.repeat(draw_frame((64, 96), shift=9 - i)[..., None], 3, axis=2) for i in range(6)], fps=12)
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 5 and "settings differ" in stderr and "input" in stderr and not written[2].exists()
    # the same take renamed is the same input
    take.write_bytes(original)
    take.rename(tmp_path / "take_v2.mp4")
    code, _, stderr = run_cli(["video", tmp_path / "take_v2.mp4", *args[2:], "--resume"], capsys)
    assert code == 0 and written[2].exists(), stderr
    # a manifest from before inputs were recorded resumes as before
    written[2].unlink()
    manifest = tmp_path / "frames" / "alacgan-manifest.json"
    manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items() if k != "input"}))
    code, _, stderr = run_cli(["video", tmp_path / "take_v2.mp4", *args[2:], "--resume"], capsys)
    assert code == 0 and written[2].exists(), stderr
    code, _, stderr = run_cli(["video", tmp_path / "take_v2.mp4", "--engine", "flat", "-o", tmp_path / "o.mp4",
                               "--resume"], capsys)
    assert code == 2 and "written whole or not at all" in stderr and not (tmp_path / "o.mp4").exists()


def test_resume_with_overwrite_and_a_hint_without_strokes_are_clear_errors(frames_dir, tmp_path, capsys):
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "out", "--resume", "--overwrite"], capsys)
    assert code == 2 and "pass one" in stderr
    blank = write_image(tmp_path / "blank" / "shot.0001.png", np.zeros((72, 100, 4), np.uint8))
    code, _, stderr = run_cli(["colorize", frames_dir, "--hints", blank, "--engine", "flat", "-o", tmp_path / "out"],
                              capsys)
    assert code == 3 and stderr.count("error:") == 1 and "has no strokes" in stderr
    assert not (tmp_path / "out").exists()


def test_model_files_given_to_the_flat_engine_are_named_as_unused(frames_dir, tiny_model, tmp_path, capsys):
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "--weights", tiny_model, "-o",
                               tmp_path / "out"], capsys)
    assert code == 0 and "warning: --weights/--i2v are not used by the flat engine" in stderr
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out2"], capsys)
    assert code == 0 and "not used by the flat engine" not in stderr


def test_two_sequences_in_one_folder_or_two_frames_onto_one_output_are_refused(frames_dir, tmp_path, capsys):
    for i in range(1, 4):  # a background sequence beside the character's: frame 1 twice
        write_image(frames_dir / f"bg.{i:04d}.png", draw_frame((72, 100), shift=-i))
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out"], capsys)
    assert code == 3 and "bg.0001.png and shot.0001.png" in stderr and "are both frame 1" in stderr
    assert not (tmp_path / "out").exists()
    code, _, stderr = run_cli(["colorize", frames_dir / "shot.####.png", "--engine", "flat", "-o", tmp_path / "out"],
                              capsys)
    assert code == 0, stderr  # a pattern picks one of them
    stills = tmp_path / "stills"  # one drawing saved twice: both would become stills_color/pose.png
    write_image(stills / "pose.png", draw_frame((72, 100)))
    write_image(stills / "pose.tif", draw_frame((72, 100), shift=3))
    code, _, stderr = run_cli(["colorize", stills, "--engine", "flat", "-o", tmp_path / "poses"], capsys)
    assert code == 5 and "would both be written to" in stderr and not list((tmp_path / "poses").glob("*.png"))


def test_one_hint_may_be_given_as_a_plain_path(frames_dir, tmp_path):
    from alacgan_batch import colorize_sequence

    hint = _hint(tmp_path)
    for n, given in enumerate((str(hint), hint)):  # a string was read letter by letter ("hint not found: /")
        summary = colorize_sequence(frames_dir, given, tmp_path / f"out{n}", engine="flat")
        assert summary.keyframes == ["shot.0001.png"]


def test_device_precision_and_batch_settings_are_checked_for_every_engine():
    from alacgan_batch import Colorizer
    from alacgan_batch.errors import ConfigError

    for settings, fragment in [({"device": "tpu"}, "unknown device"), ({"precision": "fp8"}, "unknown precision"),
                               ({"batch_size": 2.5}, "batch size"), ({"batch_size": 0}, "batch size")]:
        with pytest.raises(ConfigError, match=fragment):
            Colorizer(engine="flat", **settings)  # the flat engine ignored them in silence
    assert Colorizer(engine="flat", device="cpu", precision="fp32", batch_size=3).engine is None


def test_an_output_that_cannot_be_written_is_refused_before_the_plan(frames_dir, tmp_path, monkeypatch):
    from alacgan_batch import pipeline, sinks

    def no_plan(*args, **kwargs):
        raise AssertionError("planned before refusing")

    monkeypatch.setattr(pipeline, "build_plan", no_plan)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="afile is a file, not a folder"):
        pipeline.colorize_sequence(frames_dir, output=tmp_path / "afile" / "sub", engine="flat")
    locked = tmp_path / "locked"  # tests may run as root, which writes anywhere: the permission is stubbed
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(sinks.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    for output in (locked / "color", locked / "take.mp4"):
        with pytest.raises(OutputError, match="permission denied"):
            pipeline.colorize_sequence(frames_dir, output=output, engine="flat")
