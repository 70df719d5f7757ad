"""Outputs: never written over an input, readable by others, no temp files left; a stopped run ends cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import draw_frame, stroke_image, write_image


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_exits_nonzero_cleans_up_and_resumes(signum, tmp_path):
    frames = tmp_path / "lineart"
    for i in range(1, 41):  # enough frames at 256 px that planning and colouring take a few seconds
        write_image(frames / f"shot.{i:04d}.png", draw_frame((256, 256), shift=i))
    write_image(tmp_path / "hints" / "shot.0001.png", stroke_image((256, 256), (90, 120), (0, 0, 255)))
    scratch = tmp_path / "scratch"  # the run's TMPDIR: its plan folder must be gone afterwards
    scratch.mkdir()
    command = [sys.executable, "-m", "alacgan_batch", "colorize", str(frames), "--hints", str(tmp_path / "hints"),
               "--engine", "flat", "-o", str(tmp_path / "out")]
    run = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(scratch.glob("alacgan-plan-*")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, stderr
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert list(scratch.iterdir()) == []
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.iterdir() if ".partial" in p.name]
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(out.glob("shot.*.png"))) == 40
    assert np.mean([p.stat().st_size > 0 for p in out.glob("shot.*.png")]) == 1.0
