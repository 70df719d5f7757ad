"""Procedural cel frames and shots: determinism, ground-truth consistency, lines, motion, hints, files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from alacgan_batch import synth
from alacgan_batch.metrics import delta_e, non_line_mask, propagation_accuracy


def _border(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbour has another label (both sides of each edge)."""
    b = np.zeros(labels.shape, bool)
    dh = labels[:, 1:] != labels[:, :-1]
    dv = labels[1:, :] != labels[:-1, :]
    b[:, 1:] |= dh
    b[:, :-1] |= dh
    b[1:, :] |= dv
    b[:-1, :] |= dv
    return b


def _dist_to(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@pytest.fixture(scope="module")
def shot() -> synth.SynthShot:
    return synth.make_shot(11, n_frames=6, size=(160, 192))


def test_same_seed_same_frame_other_seed_differs():
    a, b, c = synth.make_frame(5), synth.make_frame(5), synth.make_frame(6)
    for name in ("lineart", "color", "flat", "labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert not np.array_equal(getattr(a, name), getattr(c, name)), name
    assert a.part_colors == b.part_colors != c.part_colors


def test_same_seed_same_shot():
    a, b = synth.make_shot(2, n_frames=3, size=(64, 80)), synth.make_shot(2, n_frames=3, size=(64, 80))
    assert a.seed == 2 and sorted(a.hints) == sorted(b.hints) == [0, 2]
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert np.array_equal(fa.lineart, fb.lineart) and np.array_equal(fa.labels, fb.labels)
    for k in a.hints:
        assert np.array_equal(a.hints[k], b.hints[k])


@pytest.mark.parametrize("size", [(96, 160), (128, 128)])
def test_shapes_dtypes_and_label_colours(size):
    fr = synth.make_frame(1, size)
    h, w = size
    assert fr.lineart.shape == (h, w) and fr.lineart.dtype == np.uint8
    assert fr.color.shape == fr.flat.shape == (h, w, 3) and fr.color.dtype == fr.flat.dtype == np.uint8
    assert fr.labels.shape == (h, w) and fr.labels.dtype == np.int32
    present = set(np.unique(fr.labels).tolist())
    assert 0 in present and len(present) >= 6
    assert present <= set(fr.part_colors)
    # flat is exactly the part colour table looked up through the labels
    table = np.array([fr.part_colors[i] for i in range(max(fr.part_colors) + 1)], np.uint8)
    assert np.array_equal(fr.flat, table[fr.labels])


def test_part_colours_are_distinct():
    for seed in range(6):
        cols = np.array(list(synth.make_frame(seed, (64, 64)).part_colors.values()), float)
        de = delta_e(cols[:, None], cols[None, :])
        np.fill_diagonal(de, np.inf)
        assert de.min() >= 20.0


@pytest.mark.parametrize("size", [(128, 128), (256, 256)])
def test_lines_follow_label_borders(size):
    for seed in (0, 3):
        fr = synth.make_frame(seed, size)
        border = _border(fr.labels)
        line = fr.lineart < 128
        # closed outlines: almost every border pixel has ink within 2 px (the rest are the small gaps)
        assert (_dist_to(line)[border] <= 2.0).mean() > 0.9
        # and no ink away from borders (widest line at these sizes is ~3 px)
        assert _dist_to(border)[fr.lineart < 250].max() <= 3.0
        # lines are anti-aliased, not binary
        assert ((fr.lineart > 20) & (fr.lineart < 235)).sum() > 0.1 * line.sum()


def test_cel_shading_is_in_colour_but_not_in_lines():
    fr = synth.make_frame(4, (256, 256))
    shaded = np.any(fr.color != fr.flat, axis=-1)
    assert 0.02 < shaded.mean() < 0.6
    # shading borders: colour changes inside one label; the line art must stay white there
    ch = np.zeros(fr.labels.shape, bool)
    ch[:, 1:] |= np.any(fr.color[:, 1:] != fr.color[:, :-1], axis=-1)
    ch[1:, :] |= np.any(fr.color[1:] != fr.color[:-1], axis=-1)
    far_from_borders = _dist_to(_border(fr.labels)) > 4
    inner_shade_edges = ch & far_from_borders
    assert inner_shade_edges.sum() > 20
    assert (fr.lineart[inner_shade_edges] == 255).all()


def test_sizes_look_alike():
    shares = []
    for size in [(128, 128), (256, 256), (512, 512)]:
        lab = synth.make_frame(8, size).labels
        shares.append(np.bincount(lab.ravel(), minlength=20)[:20] / lab.size)
    assert np.abs(shares[0] - shares[2]).max() < 0.02
    assert np.abs(shares[1] - shares[2]).max() < 0.01


def test_shot_parts_keep_colour_and_move(shot):
    first, last = shot.frames[0], shot.frames[-1]
    for fr in shot.frames:
        assert fr.part_colors == first.part_colors
        table = np.array([fr.part_colors[i] for i in range(max(fr.part_colors) + 1)], np.uint8)
        assert np.array_equal(fr.flat, table[fr.labels])
    assert (first.labels != last.labels).mean() > 0.02
    # smooth motion: consecutive frames change less than first vs last
    pairs = zip(shot.frames, shot.frames[1:], strict=False)
    step = np.mean([(a.labels != b.labels).mean() for a, b in pairs])
    assert step < (first.labels != last.labels).mean()


def test_occlusion_hides_parts():
    sh = synth.make_shot(11, n_frames=8, size=(128, 128))
    prop = [k for k, v in sh.part_names.items() if v == "prop"]
    assert prop, "occlusion=True adds a foreground prop"
    areas = np.array([np.bincount(f.labels.ravel(), minlength=len(sh.part_names)) for f in sh.frames])
    assert areas[:, prop[0]].max() > 0
    body = [k for k, v in sh.part_names.items() if v not in ("background", "prop")]
    # some part loses at least half its visible area to the prop (or another part) in some frame
    visible = areas[:, body]
    assert (visible.min(0) < 0.5 * visible.max(0)).any()
    plain = synth.make_shot(11, n_frames=2, size=(64, 64), occlusion=False)
    assert "prop" not in plain.part_names.values()


def test_gaps_only_remove_ink():
    a = synth.make_shot(9, n_frames=2, size=(128, 128), gaps=False)
    b = synth.make_shot(9, n_frames=2, size=(128, 128), gaps=True)
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert np.array_equal(fa.labels, fb.labels)
        lighter = fb.lineart.astype(int) - fa.lineart.astype(int)
        assert lighter.min() >= 0 and lighter.max() > 100
        # small: a few 1-2 px cuts, not missing outlines
        assert 0 < (lighter > 50).sum() < 0.02 * (fa.lineart < 128).sum() + 40


def test_hints_sit_inside_their_part(shot):
    assert sorted(shot.hints) == [0, len(shot.frames) - 1]
    for k, hint in shot.hints.items():
        fr = shot.frames[k]
        assert hint.shape == (*fr.labels.shape, 4) and hint.dtype == np.uint8
        alpha = hint[..., 3]
        assert set(np.unique(alpha).tolist()) == {0, 255}
        assert propagation_accuracy(hint, fr.labels, fr.part_colors) == 1.0
        strokes = alpha > 0
        assert (hint[..., :3][~strokes] == 0).all()
        # away from the lines, and covering most parts
        assert fr.lineart[strokes].min() > 200
        hinted = set(np.unique(fr.labels[strokes]).tolist())
        assert len(hinted) >= 0.7 * len(np.unique(fr.labels))


def test_draw_hint_strokes_chosen_parts():
    fr = synth.make_frame(3, (256, 256))
    rng = np.random.default_rng(0)
    # the two largest parts: both have room for strokes whatever the pose
    parts = np.argsort(np.bincount(fr.labels.ravel())[1:])[-2:] + 1
    parts = [int(p) for p in parts]
    hint = synth.draw_hint_strokes(fr, rng, parts=parts, strokes_per_part=3)
    strokes = hint[..., 3] > 0
    assert set(np.unique(fr.labels[strokes]).tolist()) == set(parts)
    for p in parts:
        assert (hint[strokes & (fr.labels == p)][:, :3] == fr.part_colors[p]).all()


def test_every_shape_strokes_both_shoes_and_keeps_the_other_strokes():
    # in this shot's first frame the two shoes touch: one piece of the labels, two shapes between the lines
    shot = synth.make_shot(1_100_000_015, n_frames=2, size=(256, 256), keyframes=(0,))
    frame = shot.frames[0]
    shoes = next(p for p, name in shot.part_names.items() if name == "shoes")
    count, shapes = cv2.connectedComponents(((frame.labels == shoes) & non_line_mask(frame.lineart, grow=2))
                                            .astype(np.uint8), connectivity=4)
    assert count - 1 == 2 and cv2.connectedComponents((frame.labels == shoes).astype(np.uint8))[0] - 1 == 1

    def stroked_shoes(hint: np.ndarray) -> int:
        return sum(bool((hint[..., 3][shapes == k] > 0).any()) for k in range(1, count))

    plain = synth.draw_hint_strokes(frame, np.random.default_rng(0))
    every = synth.draw_hint_strokes(frame, np.random.default_rng(0), every_shape=True)
    assert stroked_shoes(plain) == 1 and stroked_shoes(every) == 2
    assert (every[..., :3][(every[..., 3] > 0) & (frame.labels == shoes)] == frame.part_colors[shoes]).all()
    assert propagation_accuracy(every, frame.labels, frame.part_colors) == 1.0
    kept = plain[..., 3] > 0
    assert np.array_equal(every[kept], plain[kept])  # the extra strokes come from their own stream
    assert stroked_shoes(shot.hints[0]) == 2  # a shot's keyframes are stroked shape by shape


def test_write_shot_and_dataset(tmp_path, shot):
    synth.write_shot(shot, tmp_path / "s", prefix="cut", start=101)
    n = len(shot.frames)
    for i, fr in enumerate(shot.frames):
        name = f"cut.{101 + i:04d}.png"
        line = cv2.imread(str(tmp_path / "s/lineart" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(line, fr.lineart)
        color = cv2.imread(str(tmp_path / "s/color" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(color[..., ::-1], fr.color)
        lab = cv2.imread(str(tmp_path / "s/labels" / name), cv2.IMREAD_UNCHANGED)
        assert lab.dtype == np.uint16 and np.array_equal(lab, fr.labels)
        assert (tmp_path / "s/flat" / name).exists()
    hints = sorted(p.name for p in (tmp_path / "s/hints").iterdir())
    assert hints == [f"cut.{101:04d}.png", f"cut.{100 + n:04d}.png"]
    rgba = cv2.imread(str(tmp_path / "s/hints" / hints[0]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA), shot.hints[0])
    meta = json.loads((tmp_path / "s/cut.json").read_text())
    assert meta["seed"] == shot.seed and meta["keyframes"] == [0, n - 1]

    dirs = synth.make_dataset(tmp_path / "ds", count=2, seed=7, size=(48, 64), frames=2)
    assert [d.name for d in dirs] == ["shot_0000", "shot_0001"]
    for d in dirs:
        assert sorted(p.name for p in (d / "lineart").iterdir()) == ["shot.0001.png", "shot.0002.png"]
    a = cv2.imread(str(dirs[0] / "labels/shot.0001.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(dirs[1] / "labels/shot.0001.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (48, 64) and not np.array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError):
        synth.make_shot(0, n_frames=0)
    with pytest.raises(ValueError):
        synth.make_shot(0, n_frames=3, size=(32, 32), keyframes=(5,))
    with pytest.raises(ValueError):
        synth.make_frame(0, (8, 8))


def test_synth_command_refuses_to_mix_into_earlier_shots_and_checks_its_numbers(tmp_path, capsys):
    from helpers import run_cli

    out = tmp_path / "shots"
    assert run_cli(["synth", out, "--shots", "1", "--frames", "3", "--size", "64x64"], capsys)[0] == 0
    before = sorted(p.name for p in (out / "shot_0000" / "lineart").iterdir())
    code, _, stderr = run_cli(["synth", out, "--shots", "1", "--frames", "2", "--size", "64x64"], capsys)
    assert code == 5 and "already holds 1 shots" in stderr
    assert sorted(p.name for p in (out / "shot_0000" / "lineart").iterdir()) == before
    code, _, stderr = run_cli(["synth", out, "--shots", "1", "--frames", "2", "--size", "64x64", "--overwrite"],
                              capsys)
    assert code == 0, stderr
    assert len(list((out / "shot_0000" / "lineart").iterdir())) == 2  # no third frame left from the first run
    for args in (["--shots", "0"], ["--frames", "-1"], ["--size", "3x3"], ["--seed", "-1"]):
        code, _, stderr = run_cli(["synth", tmp_path / "other", *args], capsys)
        assert code == 2 and "internal error" not in stderr, args
    assert not (tmp_path / "other").exists()
