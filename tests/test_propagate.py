"""Carrying hint strokes along a shot: flow on line drawings, warping with occlusion checks, keyframe merging."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from alacgan_batch import propagate
from alacgan_batch.errors import InputError
from alacgan_batch.propagate import hint_overlay, line_flow, propagate_hints, warp_strokes
from alacgan_batch.regions import segment_regions

SIZE = 160
CENTRE = (SIZE / 2, SIZE / 2)
RED = (230, 30, 30)
BLUE = (30, 60, 230)
GREEN = (40, 200, 60)


def _transform(shift: tuple[float, float] = (0, 0), angle: float = 0.0) -> np.ndarray:
    m = cv2.getRotationMatrix2D(CENTRE, angle, 1.0)
    m[:, 2] += shift
    return m


def _drawing(shift: tuple[float, float] = (0, 0), angle: float = 0.0) -> np.ndarray:
    """Coverage of a rectangle, a circle and an ellipse inside the rectangle, moved as a whole."""
    img = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.rectangle(img, (30, 40), (80, 110), 0, 2)
    cv2.ellipse(img, (55, 75), (12, 20), 0, 0, 360, 0, 2)
    cv2.circle(img, (115, 70), 25, 0, 2)
    img = cv2.warpAffine(img, _transform(shift, angle), (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=255)
    return 1.0 - img.astype(np.float32) / 255.0


def _moved(point: tuple[float, float], shift=(0, 0), angle=0.0) -> tuple[int, int]:
    x, y = _transform(shift, angle) @ np.array([point[0], point[1], 1.0])
    return int(round(x)), int(round(y))


def _stroke(centre: tuple[int, int], colour, radius: int = 6) -> np.ndarray:
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    cv2.circle(rgba, centre, radius, (*colour, 255), -1)
    return rgba


def _pixels(rgba: np.ndarray, colour=None) -> np.ndarray:
    m = rgba[..., 3] > 0
    if colour is not None:
        m &= np.all(rgba[..., :3] == colour, axis=2)
    return m


# --- line_flow ----------------------------------------------------------------------------------------


def test_line_flow_follows_a_translation():
    a, b = _drawing(), _drawing(shift=(5, 3))
    flow = line_flow(a, b)
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    labels = segment_regions(a)
    inside = (labels > 0) & (labels != labels[2, 2])  # the shapes, not the open background
    median = np.median(flow[inside], axis=0)
    assert abs(median[0] - 5) < 1 and abs(median[1] - 3) < 1


def test_line_flow_rejects_mismatched_frames():
    with pytest.raises(InputError):
        line_flow(np.zeros((8, 8), np.float32), np.zeros((8, 9), np.float32))


# --- warp_strokes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shift, angle", [((5, 3), 0.0), ((0, 0), 5.0), ((-4, 2), -5.0)])
def test_warped_stroke_lands_in_the_corresponding_region(shift, angle):
    a, b = _drawing(), _drawing(shift, angle)
    hint = _stroke((115, 70), RED, 8) + _stroke((55, 75), BLUE, 5)  # circle and ellipse interiors
    labels_a, labels_b = segment_regions(a), segment_regions(b)
    out = warp_strokes(hint, line_flow(a, b), line_flow(b, a), b, labels_b, labels_source=labels_a)
    for colour, centre in ((RED, (115, 70)), (BLUE, (55, 75))):
        target_region = labels_b[_moved(centre, shift, angle)[::-1]]
        got = _pixels(out, colour)
        assert got.sum() >= 0.5 * _pixels(hint, colour).sum()  # carried, not dropped
        assert (labels_b[got] == target_region).mean() >= 0.95
    # the same through propagate_hints
    carried = propagate_hints([a, b], {0: hint})[1]
    got = _pixels(carried, RED)
    assert got.sum() > 0
    assert (labels_b[got] == labels_b[_moved((115, 70), shift, angle)[::-1]]).mean() >= 0.95


def _occlusion_scene(box_x: int, radius: int = 10) -> np.ndarray:
    """A small circle, and an opaque box (white fill, black outline) whose left edge is at box_x."""
    img = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.circle(img, (55, 80), radius, 0, 2)
    cv2.rectangle(img, (box_x, 45), (box_x + 50, 115), 255, -1)
    cv2.rectangle(img, (box_x, 45), (box_x + 50, 115), 0, 2)
    return 1.0 - img.astype(np.float32) / 255.0


@pytest.mark.parametrize("box_from, box_to, radius", [(70, 40, 10), (72, 30, 14), (78, 33, 14)])
def test_stroke_on_an_occluded_shape_is_dropped_not_smeared_on_the_occluder(box_from, box_to, radius):
    a, b = _occlusion_scene(box_from, radius), _occlusion_scene(box_to, radius)  # the box slides over
    hint = _stroke((55, 80), RED, radius - 4)
    box = np.zeros((SIZE, SIZE), bool)
    box[45:116, box_to:box_to + 51] = True
    labels_a, labels_b = segment_regions(a), segment_regions(b)
    flow_ab, flow_ba = line_flow(a, b), line_flow(b, a)
    outs = [warp_strokes(hint, flow_ab, flow_ba, b, labels_b, labels_source=labels_a),
            propagate_hints([a, b], {0: hint})[1]]
    if box_from - box_to <= 30:
        # a gentle slide: the pixelwise forward-backward check alone already drops the stroke; on the
        # faster ones both flows can agree on matching the circle to the box's inside, and it is the
        # region check (does the box region come back to the circle?) that refuses
        outs.append(warp_strokes(hint, flow_ab, flow_ba, b))
    for out in outs:
        assert not (_pixels(out, RED) & box).any()
    # and the other way round: the box slides off, the stroke on the box stays off the uncovered circle
    box_hint = _stroke((box_to + 25, 80), BLUE, 6)
    back = propagate_hints([b, a], {0: box_hint})[1]
    assert not (_pixels(back, BLUE) & (labels_a == labels_a[80, 55])).any()


def test_forward_backward_check_and_lines_drop_pixels():
    hint = np.zeros((40, 40, 4), np.uint8)
    hint[10:20, 10:20] = (*RED, 255)
    fwd = np.zeros((40, 40, 2), np.float32)
    fwd[..., 0] = 4
    consistent = -fwd
    paper = np.zeros((40, 40), np.float32)
    out = warp_strokes(hint, fwd, consistent, paper)
    assert np.array_equal(_pixels(out), np.roll(_pixels(hint), 4, axis=1))
    assert np.all(out[_pixels(out), :3] == RED)
    # a backward flow that does not come back: every pixel is taken as occluded
    assert not _pixels(warp_strokes(hint, fwd, np.zeros_like(fwd), paper)).any()
    # within the tolerance it is still a round trip
    near = consistent.copy()
    near[..., 1] = 1.0
    assert _pixels(warp_strokes(hint, fwd, near, paper)).sum() == 100
    assert not _pixels(warp_strokes(hint, fwd, near, paper, fb_tolerance=0.5)).any()
    # landing on a line of the target is not allowed either
    lined = paper.copy()
    lined[:, 16] = 1.0
    out = warp_strokes(hint, fwd, consistent, lined)
    assert not _pixels(out)[:, 16].any() and _pixels(out).sum() == 90


def test_snapping_keeps_each_stroke_in_its_majority_region():
    hint = np.zeros((40, 40, 4), np.uint8)
    hint[10:14, 5:30] = (*RED, 255)  # one stroke ...
    coverage = np.zeros((40, 40), np.float32)
    coverage[:, 22] = 1.0  # ... that a line of the target cuts: 17 columns left of it, 7 right
    labels = segment_regions(coverage)
    zero = np.zeros((40, 40, 2), np.float32)
    unsnapped = warp_strokes(hint, zero, zero, coverage)
    assert _pixels(unsnapped)[:, 23:].any()
    out = warp_strokes(hint, zero, zero, coverage, labels)
    got = _pixels(out)
    assert got[:, :22].sum() == 4 * 17 and not got[:, 22:].any()
    assert len(np.unique(labels[got])) == 1


def test_warp_strokes_validates_shapes():
    hint = np.zeros((8, 8, 4), np.uint8)
    flow = np.zeros((8, 8, 2), np.float32)
    with pytest.raises(InputError):
        warp_strokes(hint, flow, flow, np.zeros((8, 9), np.float32))
    with pytest.raises(InputError):
        warp_strokes(hint, flow[:, :7], flow, np.zeros((8, 8), np.float32))
    assert not warp_strokes(hint, flow, flow, np.zeros((8, 8), np.float32)).any()


# --- propagate_hints ----------------------------------------------------------------------------------


def _moving_shot(n: int = 5, step=(3, 1), turn: float = 1.0) -> list[np.ndarray]:
    return [_drawing((step[0] * i, step[1] * i), turn * i) for i in range(n)]


def test_two_keyframes_nearer_one_wins():
    frames = _moving_shot()
    labels = [segment_regions(c) for c in frames]
    circle = (115, 70)
    key0 = _stroke(circle, RED)
    key4 = _stroke(_moved(circle, (12, 4), 4.0), BLUE)
    out = propagate_hints(frames, {0: key0, 4: key4}, labels=labels)
    assert len(out) == 5 and all(o.shape == (SIZE, SIZE, 4) and o.dtype == np.uint8 for o in out)
    assert np.array_equal(out[0], key0) and np.array_equal(out[4], key4)
    for i, winner, loser in ((1, RED, BLUE), (2, RED, BLUE), (3, BLUE, RED)):  # frame 2: tie, earlier wins
        region = labels[i] == labels[i][_moved(circle, (3 * i, i), float(i))[::-1]]
        assert _pixels(out[i], winner)[region].sum() > 20
        assert not _pixels(out[i], loser)[region].any()


def test_strokes_of_both_keyframes_kept_where_they_agree():
    frames = _moving_shot()
    ellipse, circle = (55, 75), (115, 70)
    key0 = _stroke(circle, RED)
    key4 = _stroke(_moved(ellipse, (12, 4), 4.0), BLUE, 5)  # a different region: no conflict
    out = propagate_hints(frames, {0: key0, 4: key4})
    for i in (1, 2, 3):
        assert _pixels(out[i], RED).sum() > 20 and _pixels(out[i], BLUE).sum() > 10


def test_frames_outside_the_keyframes_take_the_nearest_ones_strokes():
    frames = _moving_shot()
    labels = [segment_regions(c) for c in frames]
    circle = _moved((115, 70), (6, 2), 2.0)
    key = _stroke(circle, RED)
    done: list[int] = []
    out = propagate_hints(frames, {2: key}, labels=labels, progress=done.append)
    assert done == [1, 2, 3, 4, 5]
    assert np.array_equal(out[2], key)
    for i in (0, 1, 3, 4):
        got = _pixels(out[i], RED)
        region = labels[i][_moved((115, 70), (3 * i, i), float(i))[::-1]]
        assert got.sum() > 20 and (labels[i][got] == region).mean() >= 0.95


def test_region_pair_counts_by_table_and_by_sorting_agree(monkeypatch):
    keys = np.random.default_rng(3).integers(0, 500, 2000)
    expected = np.unique(keys, return_counts=True)
    for limit in (1 << 22, 0):  # a dense table, then the sorting fallback for key ranges too big for one
        monkeypatch.setattr(propagate, "_COUNT_PAIRS_MAX", limit)
        pairs, counts = propagate._count_pairs(keys, 500)
        assert np.array_equal(pairs, expected[0]) and np.array_equal(counts, expected[1])


def test_each_flow_is_computed_once(monkeypatch):
    calls: list[int] = []
    real = propagate._dis_flow

    def counting(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(propagate, "_dis_flow", counting)
    frames = _moving_shot(6)
    propagate_hints(frames, {0: _stroke((115, 70), RED), 5: _stroke((120, 72), BLUE)})
    assert len(calls) == 2 * (6 - 1)
    calls.clear()
    propagate_hints(frames, {2: _stroke((115, 70), RED)})
    assert len(calls) == 2 * (6 - 1)


class _LoggedFrames(Sequence):
    """Coverages handed out lazily, logging each read, as the plan's files on disk are."""

    def __init__(self, frames: list[np.ndarray], log: list[str]) -> None:
        self.frames, self.log = frames, log

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> np.ndarray:
        self.log.append(f"read {i}")
        return self.frames[i]


def test_streaming_propagation_gives_the_same_strokes_frame_by_frame():
    frames = _moving_shot(6)
    keys = {0: _stroke((115, 70), RED), 2: _stroke(_moved((115, 70), (6, 2), 2.0), BLUE)}
    listed = propagate_hints(frames, keys)
    log: list[str] = []
    streamed: dict[int, np.ndarray] = {}

    def on_frame(i: int, strokes: np.ndarray) -> None:
        log.append(f"frame {i}")
        streamed[i] = strokes

    assert propagate_hints(_LoggedFrames(frames, log), keys, on_frame=on_frame) is None
    assert sorted(streamed) == list(range(6))
    assert all(np.array_equal(streamed[i], listed[i]) for i in range(6))
    # after the last keyframe each frame is handed out before the next one is read
    assert log.index("frame 3") < log.index("read 4") and log.index("frame 4") < log.index("read 5")


def test_propagate_hints_edge_cases():
    frames = _moving_shot(3)
    assert propagate_hints([], {}) == []
    empty = propagate_hints(frames, {})
    assert len(empty) == 3 and not any(e.any() for e in empty)
    with pytest.raises(InputError):
        propagate_hints(frames, {3: _stroke((10, 10), RED)})
    with pytest.raises(InputError):
        propagate_hints(frames, {0: np.zeros((SIZE, SIZE, 3), np.uint8)})
    with pytest.raises(InputError):
        propagate_hints([frames[0], frames[1][:, :-1]], {0: _stroke((10, 10), RED)})


def _occluded(coverage: np.ndarray, left: int, right: int) -> np.ndarray:
    """The drawing behind a full-height bar (outlined, blank inside) from x = left to right."""
    out = coverage.copy()
    out[:, left:right] = 0.0
    out[:, left:left + 2] = out[:, right - 2:right] = 1.0
    return out


def test_a_mostly_occluded_region_keeps_its_colour_with_round_trip_checked_flows():
    source = _drawing()
    target = _occluded(_drawing(shift=(4, 2)), 60, 128)  # hides the left four fifths of the circle
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    strokes_source = _stroke((115, 70), RED)
    circle = labels_target[_moved((135, 70), shift=(4, 2))[::-1]]  # the sliver right of the bar
    assert (labels_target == circle).sum() < 0.33 * (labels_source == labels_source[70, 115]).sum()
    lost = np.zeros_like(strokes_source)
    flow_fwd, flow_bwd = line_flow(source, target), line_flow(target, source)
    # the chains' rule (similar areas only) leaves it blank: it could be a split or a merge
    strict = propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd)
    assert not _pixels(strict, RED).any()
    # the sweep's rule trusts the flows where they agree both ways, whatever the area
    swept = propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd, flow_fwd,
                                          area=propagate.SWEEP_AREA)
    got = _pixels(swept, RED)
    assert got.sum() > 10 and set(np.unique(labels_target[got])) == {circle}


# --- hint_overlay -------------------------------------------------------------------------------------


def test_hint_overlay_draws_strokes_over_dark_lines():
    cov = _drawing()
    hint = _stroke((115, 70), RED)
    pic = hint_overlay(cov, hint)
    assert pic.shape == (SIZE, SIZE, 3) and pic.dtype == np.uint8
    assert np.all(pic[_pixels(hint)] == RED)
    lines = (cov > 0.9) & ~_pixels(hint)
    assert pic[lines].max() < 40
    paper = (cov == 0) & ~_pixels(hint)
    assert np.all(pic[paper] == 255)


def test_a_region_that_lost_its_strokes_takes_the_colour_of_the_region_it_comes_from():
    source, target = _drawing(), _drawing(shift=(4, 2))
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    strokes_source = _stroke((115, 70), RED)  # inside the circle
    lost = np.zeros_like(strokes_source)  # as if warping had dropped every pixel
    flow_bwd = line_flow(target, source)
    carried = propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd)
    circle = labels_target[_moved((115, 70), shift=(4, 2))[::-1]]
    got = _pixels(carried, RED)
    assert got.sum() > 50 and set(np.unique(labels_target[got])) == {circle}
    assert not (got & (target >= 0.5)).any()  # the carried stroke never touches a line
    # a region that still has strokes keeps them as they are
    kept = propagate.carry_region_colors(_stroke(_moved((115, 70), shift=(4, 2)), BLUE), labels_target,
                                         strokes_source, labels_source, flow_bwd)
    assert not _pixels(kept, RED).any()
    # and with carrying off, lost strokes stay lost across a shot
    shot = [_drawing(shift=(2 * i, i)) for i in range(4)]
    on = propagate_hints(shot, {0: strokes_source})
    off = propagate_hints(shot, {0: strokes_source}, carry_regions=False)
    assert _pixels(on[3], RED).sum() >= _pixels(off[3], RED).sum() > 0


def test_a_region_the_backward_flow_loses_is_followed_forward():
    # a thin part swinging fast: DIS follows it from the frame it starts in, but back from the next frame most of
    # it lands on the paper beside it
    source, target = _drawing(), _drawing(shift=(4, 2))
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    circle_source = labels_source[70, 115]
    circle = labels_target[_moved((115, 70), shift=(4, 2))[::-1]]
    strokes_source, lost = _stroke((115, 70), RED), np.zeros((SIZE, SIZE, 4), np.uint8)
    flow_fwd = np.zeros((SIZE, SIZE, 2), np.float32)
    flow_fwd[...] = (4, 2)  # right
    flow_bwd = -flow_fwd
    ellipse = labels_target[_moved((55, 75), shift=(4, 2))[::-1]]
    for region in (circle, ellipse):  # the ellipse is lost too, but has no colour to follow
        inside = labels_target == region
        ys = np.nonzero(inside)[0]
        inside[:ys.min() + (ys.max() - ys.min()) * 4 // 10] = False
        flow_bwd[inside, 0] = 35  # below its top 40% (a third of it): off to the paper right of it
    assert propagate.track_regions(labels_target, labels_source, flow_bwd)[circle] == -1
    assert not _pixels(propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd),
                       RED).any()
    assert propagate.track_regions_forward(labels_target, labels_source, flow_fwd, flow_bwd)[circle] == circle_source
    carried = propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd,
                                            forward=flow_fwd)
    followed = _pixels(carried, RED)
    assert followed.sum() > 50 and set(np.unique(labels_target[followed])) == {circle}
    assert np.array_equal(_pixels(carried), followed)  # the regions of uncoloured sources get nothing
    # no way back at all (a region that turned up where another was): not followed
    nowhere = flow_bwd.copy()
    nowhere[labels_target == circle, 0] = 35
    assert propagate.track_regions_forward(labels_target, labels_source, flow_fwd, nowhere)[circle] == -1
    # the circle's pixels all carried onto one row of it: they land in it but cover a sliver of it
    squeezed = flow_fwd.copy()
    yy = np.arange(SIZE, dtype=np.float32)[:, None]
    squeezed[..., 1] = 72 - yy  # every source pixel to row 72
    assert propagate.track_regions_forward(labels_target, labels_source, squeezed, flow_bwd)[circle] == -1


def test_following_forward_asks_most_of_the_source_region_and_a_similar_size():
    # region 2: a 20x40 bar in the source; in the target a 20x20 square (or a 4x5 speck) on paper (region 1)
    labels_source = np.ones((60, 60), np.int32)
    labels_source[10:30, 10:50] = 2
    labels_target = np.ones((60, 60), np.int32)
    labels_target[10:30, 10:30] = 2
    flow_fwd = np.zeros((60, 60, 2), np.float32)
    flow_bwd = np.zeros((60, 60, 2), np.float32)
    flow_fwd[10:30, 30:50, 1] = 25  # the bar's right half goes down onto the paper; its left half is the square
    # half the bar lands in the square (covering all of it, all of it maps back): not most of the bar
    assert propagate.track_regions_forward(labels_target, labels_source, flow_fwd, flow_bwd)[2] == -1
    flow_fwd[10:30, 30:50, 1] = 0
    flow_fwd[10:30, 30:50, 0] = -20  # the right half onto the left half too: all of the bar lands in the square
    assert propagate.track_regions_forward(labels_target, labels_source, flow_fwd, flow_bwd)[2] == 2
    # the whole bar squeezed into a speck a fortieth of its size: too small a match, unless the bounds allow it
    speck = np.ones((60, 60), np.int32)
    speck[10:14, 10:15] = 2
    ys, xs = np.mgrid[:60, :60]
    squeeze = np.zeros((60, 60, 2), np.float32)
    bar = labels_source == 2
    squeeze[..., 0][bar] = (10 + (xs[bar] - 10) // 8 - xs[bar])
    squeeze[..., 1][bar] = (10 + (ys[bar] - 10) // 5 - ys[bar])
    assert propagate.track_regions_forward(speck, labels_source, squeeze, flow_bwd)[2] == -1
    assert propagate.track_regions_forward(speck, labels_source, squeeze, flow_bwd, area=(0.01, 100))[2] == 2


def _uncovered_strip() -> tuple[np.ndarray, np.ndarray]:
    """Labels of a fast bar at the frame's edge moving 30 px right, as segmentation gives them (0: lines).

    Source: the bar (2) on x < 40, the paper (1) right of it. Target: the bar (2) on 30 <= x < 70, the paper it
    uncovered a strip of its own (3) on x < 28, the rest of the paper (1) right of it.
    """
    labels_source = np.ones((SIZE, SIZE), np.int32)
    labels_source[:, :40], labels_source[:, 40:42] = 2, 0
    labels_target = np.ones((SIZE, SIZE), np.int32)
    labels_target[:, :28], labels_target[:, 28:30], labels_target[:, 30:70], labels_target[:, 70:72] = 3, 0, 2, 0
    return labels_source, labels_target


def test_the_paper_a_bar_uncovers_does_not_take_its_colour_where_the_bar_goes_on_with_it(monkeypatch):
    # backward, flow says nothing moved, so the uncovered strip maps back into the bar; forward it follows the
    # bar into the bar, which holds the bar's colour: the bar goes on there, the strip is not it
    labels_source, labels_target = _uncovered_strip()
    strokes_source = _stroke((20, 80), BLUE) + _stroke((100, 80), GREEN)
    strokes = _stroke((50, 80), BLUE) + _stroke((115, 80), GREEN)  # as warped: the strip lost everything
    flow_bwd = np.zeros((SIZE, SIZE, 2), np.float32)
    forward = np.zeros((SIZE, SIZE, 2), np.float32)
    forward[:, :40, 0] = 30
    strip = labels_target == 3
    assert propagate.track_regions(labels_target, labels_source, flow_bwd)[3] == 2

    def carry(strokes: np.ndarray, forward: np.ndarray | None) -> np.ndarray:
        return propagate.carry_region_colors(strokes, labels_target, strokes_source, labels_source, flow_bwd,
                                             forward=forward)

    assert (_pixels(carry(strokes, None), BLUE) & strip).sum() > 500  # without the forward flow: the bar's colour
    continued = carry(strokes, forward)
    assert not (_pixels(continued) & strip).any()
    assert np.array_equal(continued, strokes)  # nothing else changes
    # the bar's region holding another colour: the bar does not go on there, and the strip is carried as before
    other = _stroke((50, 80), RED) + _stroke((115, 80), GREEN)
    assert (_pixels(carry(other, forward), BLUE) & strip).sum() > 500
    # half the bar followed into it is not enough
    half = forward.copy()
    half[:, :20, 0] = 0
    assert (_pixels(carry(strokes, half), BLUE) & strip).sum() > 500
    monkeypatch.setattr(propagate, "CONTINUED_SHARE", 1.01)
    assert (_pixels(carry(strokes, forward), BLUE) & strip).sum() > 500


def test_a_region_matched_by_its_outline_takes_its_sources_colour_and_no_other_region_does():
    # the bar lost its strokes and flow follows it neither way; its outline matched it to the bar of the source
    labels_source, labels_target = _uncovered_strip()
    strokes_source = _stroke((20, 80), BLUE) + _stroke((100, 80), GREEN)
    strokes = _stroke((115, 80), GREEN)
    flow = np.zeros((SIZE, SIZE, 2), np.float32)
    bar, strip = labels_target == 2, labels_target == 3
    unmatched = propagate.carry_region_colors(strokes, labels_target, strokes_source, labels_source, flow,
                                              forward=flow)
    # unmatched, the strip takes the bar's colour, and the bar none (the paper goes on into the paper)
    assert (_pixels(unmatched, BLUE) & strip).sum() > 500 and not (_pixels(unmatched) & bar).any()
    matched = np.full(4, -1, np.int64)
    matched[2] = 2
    carried = propagate.carry_region_colors(strokes, labels_target, strokes_source, labels_source, flow,
                                            forward=flow, matched=matched)
    assert (_pixels(carried, BLUE) & bar).sum() > 500 and np.array_equal(_pixels(carried, BLUE), _pixels(carried) & bar)
    assert not (_pixels(carried) & strip).any()
    assert np.array_equal(carried[~bar], strokes[~bar])
    # the bar already painted by the match, as the sweep between keyframes does it: its source is still continued
    again = propagate.carry_region_colors(carried, labels_target, strokes_source, labels_source, flow, forward=flow,
                                          matched=matched)
    assert np.array_equal(again, carried)
    # the region holding strokes already keeps them: a match is for regions without
    kept = propagate.carry_region_colors(_stroke((50, 80), RED), labels_target, strokes_source, labels_source, flow,
                                         matched=matched)
    assert not (_pixels(kept, BLUE) & bar).any()


def _bar_and_box(bar_x: int) -> np.ndarray:
    """Coverage: a tall bar (an occluder) whose left edge is at `bar_x`, and a small box that stays put."""
    img = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.rectangle(img, (bar_x, 10), (bar_x + 30, 150), 0, 2)
    cv2.rectangle(img, (110, 60), (126, 76), 0, 2)
    return 1.0 - img.astype(np.float32) / 255.0


def test_a_small_region_dragged_by_an_occluders_flow_is_matched_as_a_whole():
    source, target = _bar_and_box(40), _bar_and_box(60)
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    box_source, box_target = labels_source[68, 118], labels_target[68, 118]
    strokes_source = _stroke((118, 68), RED, 4) + _stroke((55, 80), BLUE, 5)  # the box, and the bar
    lost = _stroke((75, 80), BLUE, 5)  # the bar's strokes came along; the box's were dropped
    flow_bwd = np.zeros((SIZE, SIZE, 2), np.float32)
    flow_bwd[..., 0] = -20  # the occluder's motion smeared over everything, as flow does beside a fast occluder
    assert propagate.carry_region_colors(lost, labels_target, strokes_source, labels_source, flow_bwd)[
        labels_target == box_target, 3].max() == 0  # following the flow, the box is lost
    matched = propagate.match_lost_regions(lost, labels_target, target, strokes_source, labels_source, source,
                                           flow_bwd)
    got = _pixels(matched, RED)
    assert got.sum() > 10 and set(np.unique(labels_target[got])) == {box_target}
    assert not (got & (target >= 0.5)).any()
    assert np.array_equal(matched[_pixels(lost)], lost[_pixels(lost)])  # strokes it had stay as they were
    assert box_source > 0
    only_big = propagate.match_lost_regions(lost, labels_target, target, strokes_source, labels_source, source,
                                            flow_bwd, only="big")
    assert np.array_equal(only_big, lost)  # the box is small: not for the wide search
    # a region whose outline matches nothing in the other frame is left alone
    blank = np.zeros_like(source)
    unmatched = propagate.match_lost_regions(lost, labels_target, target, strokes_source, segment_regions(blank),
                                             blank, flow_bwd)
    assert not _pixels(unmatched, RED).any()


def test_a_shift_whose_landing_does_not_hold_up_gives_way_to_the_next_best():
    # beside a fast bar, flow says the box moved with the bar (20 px), and there the source frame has the bar's
    # twin of the box's outline, a perfect fit, around a region nobody coloured; the box's own place fits less
    # well (its top edge was 3 px higher) but holds the red stroke
    target = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.rectangle(target, (110, 60), (126, 76), 0, 2)
    source = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.rectangle(source, (110, 57), (126, 76), 0, 2)
    cv2.rectangle(source, (130, 60), (146, 76), 0, 2)
    target, source = (1.0 - img.astype(np.float32) / 255.0 for img in (target, source))
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    box_target = labels_target[68, 118]
    strokes_source = _stroke((118, 68), RED, 4) + _stroke((20, 20), BLUE, 5)
    kept = _stroke((20, 20), BLUE, 5)  # the background kept its strokes; the box lost all of its
    flow_bwd = np.zeros((SIZE, SIZE, 2), np.float32)
    flow_bwd[..., 0] = 20
    matched = propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source, source,
                                           flow_bwd)
    got = _pixels(matched, RED)
    assert got.sum() > 10 and set(np.unique(labels_target[got])) == {box_target}
    # with the twin coloured too, the better fit wins: the box takes the twin's colour
    twin = strokes_source + _stroke((138, 68), GREEN, 4)
    matched = propagate.match_lost_regions(kept, labels_target, target, twin, labels_source, source, flow_bwd)
    assert _pixels(matched, GREEN).sum() > 10 and not _pixels(matched, RED).any()


def test_a_big_occluder_that_flow_does_not_follow_is_found_by_its_outline(monkeypatch):
    # the bar (16% of the frame) jumps 16 px; flow says nothing moved, as DIS says of a plain fast bar
    source, target = _bar_and_box(40), _bar_and_box(56)
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    bar_target = labels_target[80, 71]
    assert (labels_target == bar_target).mean() > propagate.LOST_REGION_MAX_SHARE
    strokes_source = _stroke((118, 68), RED, 4) + _stroke((55, 80), BLUE, 5)  # the box, and the bar
    kept = _stroke((118, 68), RED, 4)  # the box kept its strokes; the bar lost all of its
    flow_bwd = np.zeros((SIZE, SIZE, 2), np.float32)
    matched = propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source, source,
                                           flow_bwd)
    got = _pixels(matched, BLUE)
    assert got.sum() > 100 and set(np.unique(labels_target[got])) == {bar_target}
    assert np.array_equal(matched[_pixels(kept)], kept[_pixels(kept)])
    sources = propagate.lost_region_sources(kept, labels_target, target, strokes_source, labels_source, source,
                                            flow_bwd)
    assert sources[bar_target] == labels_source[80, 55] and (sources >= 0).sum() == 1  # the box kept its strokes
    assert np.array_equal(propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source,
                                                       source, flow_bwd, only="big"), matched)
    assert np.array_equal(propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source,
                                                       source, flow_bwd, only="small"), kept)  # the bar is big
    # beyond MATCH_REACH (1/8 of the short side: 20 px here) it is not searched for
    far = _bar_and_box(70)
    labels_far = segment_regions(far)
    missed = propagate.match_lost_regions(kept, labels_far, far, strokes_source, labels_source, source, flow_bwd)
    assert not _pixels(missed, BLUE).any()
    # the wide search asks for more support than the few-shift match: here a perfect fit, so only > 1 refuses it
    monkeypatch.setattr(propagate, "MATCH_SUPPORT_WIDE", 1.01)
    refused = propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source, source,
                                           flow_bwd)
    assert not _pixels(refused, BLUE).any()


def _pillar(left: int, width: int = 30) -> np.ndarray:
    """Coverage: a full-height pillar (two vertical lines) from x = left, on plain paper."""
    img = np.full((SIZE, SIZE), 255, np.uint8)
    cv2.rectangle(img, (left, -5), (left + width, SIZE + 5), 0, 2)
    return 1.0 - img.astype(np.float32) / 255.0


def test_a_fast_pillar_keeps_its_colour_between_keyframes_not_the_background_beside_it():
    # the pillar jumps 18 px a frame, more than half its width: flow does not follow it, its strokes are dropped,
    # and flow takes it back into the strip of background of its size beside it. Matched by its outline first,
    # it keeps its own colour (with flow first, every in-between frame had it green, as the background)
    lefts = [20 + 18 * i for i in range(6)]
    frames = [_pillar(x) for x in lefts]
    labels = [segment_regions(f) for f in frames]

    def hints(x: int) -> np.ndarray:
        return _stroke((x + 15, 80), BLUE, 5) + _stroke((2, 80), GREEN, 1) + _stroke((SIZE - 3, 80), GREEN, 1)

    out = propagate_hints(frames, {0: hints(lefts[0]), 5: hints(lefts[5])}, labels=labels)
    for i in range(1, 5):
        pillar = labels[i] == labels[i][80, lefts[i] + 15]
        assert (_pixels(out[i], BLUE) & pillar).sum() > 1000, i
        assert not (_pixels(out[i], GREEN) & pillar).any(), i


def test_the_wide_search_scores_every_shift_as_the_shift_by_shift_count_does():
    # one correlation instead of a gather per shift: the same shares, up to the frame's edges (clipped there)
    rng = np.random.default_rng(7)
    near_line = rng.random((90, 120)) < 0.3
    ys, xs = np.divmod(rng.choice(90 * 120, 300, replace=False), 120)
    for reach in (8, 40):
        grid = np.arange(-reach, reach + 1)
        shifts = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
        assert np.array_equal(propagate._outline_support_grid(near_line, ys, xs, reach),
                              propagate._outline_support(near_line, ys, xs, shifts))


def _vertical_lines(*xs: int) -> np.ndarray:
    img = np.full((SIZE, SIZE), 255, np.uint8)
    for x in xs:
        cv2.line(img, (x, 0), (x, SIZE - 1), 0, 2)
    return 1.0 - img.astype(np.float32) / 255.0


def test_a_big_region_outlined_by_one_straight_line_is_not_matched():
    # the strip right of a pillar's edge: its outline, one straight line, fits the old pillar's edge as well
    source, target = _vertical_lines(104, 150), _vertical_lines(120)
    labels_source, labels_target = segment_regions(source), segment_regions(target)
    strokes_source = _stroke((50, 80), GREEN, 5) + _stroke((127, 80), BLUE, 5) + _stroke((155, 80), GREEN, 2)
    kept = _stroke((50, 80), GREEN, 5)
    strip = labels_target[80, 140]
    assert (labels_target == strip).mean() > propagate.LOST_REGION_MAX_SHARE
    flow_bwd = np.zeros((SIZE, SIZE, 2), np.float32)
    matched = propagate.match_lost_regions(kept, labels_target, target, strokes_source, labels_source, source,
                                           flow_bwd)
    assert not _pixels(matched)[labels_target == strip].any()  # the pillar's blue would have been a guess


def test_a_keyframe_keeps_its_strokes_and_a_part_hinted_only_on_the_other_keyframe_gets_its_colour():
    frames = [_drawing() for _ in range(3)]
    labels = segment_regions(frames[0])
    circle, ellipse = (115, 70), (55, 75)
    key0, key2 = _stroke(circle, RED), _stroke(ellipse, BLUE, 5)
    out = propagate_hints(frames, {0: key0, 2: key2})
    assert np.array_equal(out[0][_pixels(key0)], key0[_pixels(key0)])  # drawn strokes exactly as drawn
    assert np.array_equal(out[2][_pixels(key2)], key2[_pixels(key2)])
    for frame, colour, point in ((0, BLUE, ellipse), (2, RED, circle)):  # each took the other's part
        got = _pixels(out[frame], colour)
        assert got.sum() > 20 and set(np.unique(labels[got])) == {labels[point[::-1]]}


def test_a_frame_without_lines_gives_a_flat_flow_feature_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the distance to no line at all is huge: no overflow on the way to white
        feature = propagate._line_feature(np.zeros((64, 80), np.float32))
    assert feature.dtype == np.uint8 and (feature == 255).all()


def test_the_sweep_between_keyframes_keeps_the_chains_outline_matches(monkeypatch):
    # a source region the chain matched by its outline goes on in its match: the sweep's carry must be told, or
    # it gives that colour to the paper the occluder uncovered after all
    coverages = [_bar_and_box(40), _bar_and_box(60), _bar_and_box(80)]
    keys = {0: _stroke((55, 80), BLUE) + _stroke((140, 30), GREEN),
            2: _stroke((95, 80), BLUE) + _stroke((140, 30), GREEN)}
    real_sources, real_carry = propagate.lost_region_sources, propagate.carry_region_colors
    chain, sweep, small = [], [], []

    def sources(*args, **kwargs):
        found = real_sources(*args, **kwargs).copy()
        if kwargs.get("only") == "big":  # the chains' wide search: make it find something the sweep's own pass does not
            found[1] = 1
            chain.append(found)
        elif len(args) < 8 or args[7] is None:  # the sweep's own pass: make it match a small region (the box)
            area = np.bincount(args[1].ravel())
            box = int(np.argmin(np.where(area > 0, area, area.max() + 1)[1:])) + 1
            assert box != 1 and area[box] < propagate.LOST_REGION_MAX_SHARE * args[1].size
            found[box] = 1
            small.append(box)
        return found

    def carry(*args, area=propagate.REGION_CARRY_AREA, forward=None, matched=None):
        if area == propagate.SWEEP_AREA:
            sweep.append(matched)
        return real_carry(*args, area=area, forward=forward, matched=matched)

    monkeypatch.setattr(propagate, "lost_region_sources", sources)
    monkeypatch.setattr(propagate, "carry_region_colors", carry)
    propagate_hints(coverages, keys)
    assert len(chain) == 2 and len(sweep) == 4  # frame 1 from each keyframe; frames 2, 1 and 1, 0 in the sweep
    # frame 1's two sweep carries (from frame 0 and from frame 2) hold the chains' match of its region 1
    assert sum(m is not None and m[1] == 1 for m in sweep) == 2
    # a small region the sweep matched is often a piece of its source: that source may go on in other pieces
    assert len(small) == 4 and all(m[box] != 1 for m, box in zip(sweep, small, strict=True))
