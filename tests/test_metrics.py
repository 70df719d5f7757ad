"""Region colour metrics, checked on synthetic frames whose right answer is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alacgan_batch import metrics, synth


@pytest.fixture(scope="module")
def frame() -> synth.SynthFrame:
    return synth.make_frame(21, (128, 160))


@pytest.fixture(scope="module")
def shot() -> synth.SynthShot:
    return synth.make_shot(4, n_frames=3, size=(128, 128))


def _far_colour(rgb) -> tuple[int, int, int]:
    """A colour far (> 50 dE) from ``rgb``."""
    out = tuple(255 - int(c) for c in rgb)
    if metrics.delta_e(out, rgb) < 50:
        out = (0, 0, 0) if sum(rgb) > 380 else (255, 255, 255)
    return out


def test_delta_e_reference_values():
    assert metrics.delta_e((10, 200, 30), (10, 200, 30)) == 0.0
    assert metrics.delta_e((0, 0, 0), (255, 255, 255)) == pytest.approx(100.0, abs=1e-3)
    a = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    d = metrics.delta_e(a, a[::-1])
    assert d.shape == (4, 5)
    assert np.allclose(d, metrics.delta_e(a[::-1], a))
    # broadcasting one colour against an image, and floats on the 0-255 scale
    assert metrics.delta_e(a, (0, 0, 0)).shape == (4, 5)
    assert metrics.delta_e(a.astype(float), a).max() == 0.0


def test_region_colors_median_and_mask():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0] = [(10, 10, 10), (20, 20, 20), (200, 0, 0)]
    img[1] = [(30, 30, 30), (0, 0, 0), (0, 0, 0)]
    labels = np.array([[1, 1, 2], [1, 0, 0]], np.int32)
    cols = metrics.region_colors(img, labels)
    assert sorted(cols) == [0, 1, 2]
    assert np.array_equal(cols[1], [20, 20, 20]) and np.array_equal(cols[2], [200, 0, 0])
    mask = np.array([[True, False, False], [True, True, True]])
    cols = metrics.region_colors(img, labels, mask)
    assert sorted(cols) == [0, 1] and np.array_equal(cols[1], [20, 20, 20])
    assert sorted(metrics.region_colors(img, labels, min_pixels=2)) == [0, 1]


def test_region_accuracy_of_ground_truth_is_one(frame):
    assert metrics.region_accuracy(frame.flat, frame.part_colors, frame.labels) == 1.0
    mask = metrics.non_line_mask(frame.lineart)
    assert metrics.region_accuracy(frame.flat, frame.part_colors, frame.labels, mask=mask) == 1.0


def test_region_accuracy_drops_by_the_recoloured_area(frame):
    areas = np.bincount(frame.labels.ravel())
    pid = int(np.argsort(areas[1:])[-1] + 1)  # the largest character part
    out = frame.flat.copy()
    out[frame.labels == pid] = _far_colour(frame.part_colors[pid])
    acc = metrics.region_accuracy(out, frame.part_colors, frame.labels)
    assert acc == pytest.approx(1.0 - areas[pid] / areas.sum(), abs=1e-12)
    assert metrics.region_accuracy(out, frame.part_colors, frame.labels, only=[pid]) == 0.0
    others = [i for i in frame.part_colors if i != pid]
    assert metrics.region_accuracy(out, frame.part_colors, frame.labels, only=others) == 1.0
    # with a mask, areas count only the measured pixels
    mask = metrics.non_line_mask(frame.lineart)
    m_areas = np.bincount(frame.labels[mask], minlength=areas.size)
    acc = metrics.region_accuracy(out, frame.part_colors, frame.labels, mask=mask)
    assert acc == pytest.approx(1.0 - m_areas[pid] / m_areas.sum(), abs=1e-12)
    # regions without a target are not scored; none at all gives NaN
    assert math.isnan(metrics.region_accuracy(out, {999: (0, 0, 0)}, frame.labels))


def test_threshold_is_respected(frame):
    pid = int(frame.labels.max())
    out = frame.flat.copy()
    near = np.clip(np.array(frame.part_colors[pid]) + 4, 0, 255).astype(np.uint8)
    out[frame.labels == pid] = near
    d = float(metrics.delta_e(near, frame.part_colors[pid]))
    assert 0 < d < 15
    only = [pid]
    assert metrics.region_accuracy(out, frame.part_colors, frame.labels, threshold=d + 1e-6, only=only) == 1.0
    assert metrics.region_accuracy(out, frame.part_colors, frame.labels, threshold=d - 1e-3, only=only) == 0.0


def test_non_line_mask(frame):
    mask = metrics.non_line_mask(frame.lineart, threshold=128, grow=0)
    assert np.array_equal(mask, frame.lineart >= 128)
    grown = metrics.non_line_mask(frame.lineart, threshold=128, grow=2)
    assert not (grown & ~mask).any() and grown.sum() < mask.sum()


def test_hint_region_accuracy(shot):
    fr, hint = shot.frames[0], shot.hints[0]
    assert metrics.hint_region_accuracy(fr.flat, hint, fr.labels) == 1.0
    hinted = np.unique(fr.labels[hint[..., 3] > 0])
    areas = np.bincount(fr.labels.ravel(), minlength=fr.labels.max() + 1)
    pid = int(hinted[np.argmax(areas[hinted])])
    out = fr.flat.copy()
    out[fr.labels == pid] = _far_colour(fr.part_colors[pid])
    expected = 1.0 - areas[pid] / areas[hinted].sum()
    assert metrics.hint_region_accuracy(out, hint, fr.labels) == pytest.approx(expected, abs=1e-12)
    # a region that no stroke touches does not count, however wrong it is
    unhinted = sorted(set(np.unique(fr.labels).tolist()) - set(hinted.tolist()))
    if unhinted:
        out2 = fr.flat.copy()
        out2[fr.labels == unhinted[0]] = _far_colour(fr.part_colors[unhinted[0]])
        assert metrics.hint_region_accuracy(out2, hint, fr.labels) == 1.0
    assert math.isnan(metrics.hint_region_accuracy(fr.flat, np.zeros_like(hint), fr.labels))


def test_propagation_accuracy(shot):
    fr, hint = shot.frames[0], shot.hints[0]
    assert metrics.propagation_accuracy(hint, fr.labels, fr.part_colors) == 1.0
    strokes = hint[..., 3] > 0
    # recolour the strokes of one part: exactly those pixels become wrong
    pid = int(np.unique(fr.labels[strokes])[0])
    bad = hint.copy()
    sel = strokes & (fr.labels == pid)
    bad[sel, :3] = _far_colour(fr.part_colors[pid])
    expected = 1.0 - sel.sum() / strokes.sum()
    assert metrics.propagation_accuracy(bad, fr.labels, fr.part_colors) == pytest.approx(expected, abs=1e-12)
    # strokes on ids without a known colour count as wrong
    missing = {k: v for k, v in fr.part_colors.items() if k != pid}
    assert metrics.propagation_accuracy(hint, fr.labels, missing) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(metrics.propagation_accuracy(np.zeros_like(hint), fr.labels, fr.part_colors))


def test_flicker(shot):
    frames = shot.frames
    labels = [f.labels for f in frames]
    same = [frames[0].flat] * 3
    assert metrics.flicker(same, [labels[0]] * 3) == 0.0
    # ground-truth flats of a moving shot are stable too: each part keeps its colour
    outs = [f.flat for f in frames]
    masks = [metrics.non_line_mask(f.lineart) for f in frames]
    assert metrics.flicker(outs, labels, masks) == 0.0
    # recolour one region in the last frame only: one pair changes by its deltaE
    pid = int(np.bincount(labels[-1].ravel())[1:].argmax() + 1)
    new = _far_colour(frames[-1].part_colors[pid])
    changed = outs[:-1] + [outs[-1].copy()]
    changed[-1][labels[-1] == pid] = new
    pairs = sum(len(set(np.unique(a)) & set(np.unique(b))) for a, b in zip(labels, labels[1:], strict=False))
    expected = float(metrics.delta_e(new, frames[-1].part_colors[pid])) / pairs
    assert metrics.flicker(changed, labels) == pytest.approx(expected, rel=1e-9)
    assert expected > 0
    # by area: the changed pair weighs its region's area against the area of every pair
    area = min((labels[-2] == pid).sum(), (labels[-1] == pid).sum())
    total = sum(min((a == i).sum(), (b == i).sum()) for a, b in zip(labels, labels[1:], strict=False)
                for i in set(np.unique(a)) & set(np.unique(b)))
    by_area = float(metrics.delta_e(new, frames[-1].part_colors[pid])) * area / total
    assert metrics.flicker(changed, labels, by_area=True) == pytest.approx(by_area, rel=1e-9)
    assert by_area != pytest.approx(expected, rel=1e-3)
    assert math.isnan(metrics.flicker(outs[:1], labels[:1]))
    with pytest.raises(ValueError):
        metrics.flicker(outs, labels[:2])


def test_shape_mismatch_is_an_error(frame):
    with pytest.raises(ValueError):
        metrics.region_accuracy(frame.flat[:10], frame.part_colors, frame.labels)
