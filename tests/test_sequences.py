"""The flat engine on a generated shot: hints from the first and last frame reach every in-between."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import draw_frame, write_image

from alacgan_batch import Colorizer, metrics, synth
from alacgan_batch.errors import InputError
from alacgan_batch.plan import PlanOptions, build_plan
from alacgan_batch.sequence import read_image
from alacgan_batch.sources import FolderSource


def test_flat_engine_reaches_the_benchmark_numbers_on_a_small_shot(tmp_path):
    frames = 24
    shot = synth.make_shot(1_100_000_004, n_frames=frames, size=(256, 256), keyframes=(0, -1))
    synth.write_shot(shot, tmp_path)
    summary = Colorizer(engine="flat", short_side=0).colorize_sequence(tmp_path / "lineart", [tmp_path / "hints"],
                                                                       tmp_path / "out")
    assert summary.written == frames and summary.shots == 1
    plan = build_plan(FolderSource.open(tmp_path / "lineart"), [tmp_path / "hints"], PlanOptions(short_side=0))
    outputs, region, propagation = [], [], []
    for i, frame in enumerate(shot.frames):
        image = read_image(Path(tmp_path) / "out" / f"shot.{i + 1:04d}.png")
        image = image[..., :3] * image[..., 3:] + (1 - image[..., 3:])  # unfilled regions are transparent
        outputs.append(np.round(image * 255).astype(np.uint8))
        if 0 < i < frames - 1:
            paper = metrics.non_line_mask(frame.lineart)
            region.append(metrics.region_accuracy(outputs[i], frame.part_colors, frame.labels, mask=paper))
            propagation.append(metrics.propagation_accuracy(plan.strokes_for(i), frame.labels, frame.part_colors))
    plan.cleanup()
    assert np.mean(region) >= 0.90
    assert np.mean(propagation) >= 0.95
    masks = [metrics.non_line_mask(f.lineart) for f in shot.frames]
    assert metrics.flicker(outputs, [f.labels for f in shot.frames], masks) < 2.0


def test_stabilized_network_flickers_less_and_a_resumed_run_gives_the_same_frames(tmp_path):
    frames = 8
    shot = synth.make_shot(1_100_000_004, n_frames=frames, size=(256, 256), keyframes=(0, -1))
    synth.write_shot(shot, tmp_path)
    masks = [metrics.non_line_mask(f.lineart) for f in shot.frames]

    def colour(stabilize: bool, resume: bool = False) -> list[np.ndarray]:
        out = tmp_path / f"out-{stabilize}"
        # the network's own colours (not shifted to the strokes'), which drift from frame to frame
        Colorizer(short_side=0, device="cpu", stabilize=stabilize, lock_hints=False).colorize_sequence(
            tmp_path / "lineart", [tmp_path / "hints"], out, resume=resume)
        return [np.round(read_image(out / f"shot.{i + 1:04d}.png") * 255).astype(np.uint8) for i in range(frames)]

    held, drifting = colour(True), colour(False)
    labels = [f.labels for f in shot.frames]
    assert metrics.flicker(held, labels, masks) < 0.7 * metrics.flicker(drifting, labels, masks)
    region = [metrics.region_accuracy(held[i], f.part_colors, f.labels, mask=masks[i])
              for i, f in enumerate(shot.frames)]
    assert np.mean(region) >= 0.85

    # frames 4, 5, 7 and 8 lost (an interrupted run): resumed, they come out as the uninterrupted run wrote them
    for i in (4, 5, 7, 8):
        (tmp_path / "out-True" / f"shot.{i:04d}.png").unlink()
    resumed = colour(True, resume=True)
    for i in range(frames):
        assert np.abs(resumed[i].astype(int) - held[i]).max() <= 1, f"frame {i + 1}"


def test_the_plan_reports_reading_and_propagation_as_two_phases(tmp_path):
    shot = synth.make_shot(1_100_000_002, n_frames=6, size=(128, 128), keyframes=(0, -1))
    synth.write_shot(shot, tmp_path)
    calls: list[tuple[str, int, int]] = []
    plan = build_plan(FolderSource.open(tmp_path / "lineart"), [tmp_path / "hints"], PlanOptions(short_side=0),
                      progress=lambda phase, done, total: calls.append((phase, done, total)))
    plan.cleanup()
    phases = [c[0] for c in calls]
    assert phases == sorted(phases, key=["plan", "propagate"].index)  # every frame read before carrying starts
    for phase in ("plan", "propagate"):
        done = [d for p, d, t in calls if p == phase]
        assert done == sorted(done) and done[-1] == 6 and {t for p, _, t in calls if p == phase} == {6}
    assert len([p for p in phases if p == "propagate"]) >= 6  # frame by frame, not once at the end


def test_the_stabilizer_starts_afresh_at_a_cut(tmp_path):
    # two shots in one folder: each comes out as it does alone, its colours held neither from the shot before the
    # cut nor (the stabilizer looks WINDOW frames ahead) from the shot after it
    for n, seed in enumerate((1_100_000_004, 1_100_000_007)):
        shot = synth.make_shot(seed, n_frames=4, size=(256, 256), keyframes=(0, -1), occlusion=False)
        synth.write_shot(shot, tmp_path / "both", start=1 + 4 * n)
        synth.write_shot(shot, tmp_path / f"alone{n}", start=1 + 4 * n)

    def run(folder: str, stabilize: bool = True) -> list[np.ndarray]:
        out = tmp_path / f"{folder}-{stabilize}"
        summary = Colorizer(short_side=0, device="cpu", stabilize=stabilize, detect_cuts=True).colorize_sequence(
            tmp_path / folder / "lineart", [tmp_path / folder / "hints"], out)
        assert summary.shots == (2 if folder == "both" else 1)
        return [read_image(path) for path in sorted(out.glob("shot.*.png"))]

    held = run("both")
    assert len(held) == 8
    for mine, alone in zip(held, run("alone0") + run("alone1"), strict=True):
        assert np.array_equal(mine, alone)
    raw = run("both", stabilize=False)
    assert not np.array_equal(held[5], raw[5])  # the stabilizer is at work in each shot


def test_a_refused_plan_leaves_no_plan_folder(tmp_path, monkeypatch):
    """The plan's scratch folder goes at once when planning fails, not when the exception is collected."""
    for i in range(1, 4):
        write_image(tmp_path / "lineart" / f"shot.{i:04d}.png", draw_frame((64, 64), shift=i))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    with pytest.raises(InputError, match="no hints given") as refused:
        build_plan(FolderSource.open(tmp_path / "lineart"), [], PlanOptions(on_missing_hints="error"))
    assert refused.traceback and list((tmp_path / "scratch").iterdir()) == []
