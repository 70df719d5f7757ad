"""Region segmentation (trapped-ball gap closing) and the flat colour tools built on it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from alacgan_batch.errors import InputError
from alacgan_batch.regions import (
    PaletteError,
    assign_lines,
    drop_slips,
    flatten,
    interiors,
    load_palette,
    lock_to_strokes,
    region_fill,
    region_stroke_colors,
    segment_regions,
    snap_to_palette,
    stroked_regions,
)


def _paper(size: int = 128) -> np.ndarray:
    return np.full((size, size), 255, np.uint8)


def _coverage(image: np.ndarray) -> np.ndarray:
    return 1.0 - image.astype(np.float32) / 255.0


def _two_boxes() -> np.ndarray:
    """Two rectangles sharing their middle edge, black 2 px outlines."""
    img = _paper()
    cv2.rectangle(img, (20, 30), (64, 100), 0, 2)
    cv2.rectangle(img, (64, 30), (108, 100), 0, 2)
    return _coverage(img)


def _region_colours(image: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(r): np.unique(image[labels == r], axis=0) for r in np.unique(labels) if r > 0}


# --- segment_regions --------------------------------------------------------------------------------


def test_two_touching_rectangles_give_two_interiors_and_background():
    cov = _two_boxes()
    labels = segment_regions(cov)
    assert labels.dtype == np.int32 and labels.shape == cov.shape
    assert np.all(labels[cov >= 0.5] == 0)  # lines are 0 ...
    assert np.all(labels[cov < 0.5] > 0)  # ... and only lines
    left, right, background = labels[65, 40], labels[65, 86], labels[5, 5]
    assert len({left, right, background}) == 3
    assert set(np.unique(labels).tolist()) == {0, int(left), int(right), int(background)}
    assert np.all(labels[34:97, 24:61] == left)
    assert np.all(labels[34:97, 68:105] == right)
    assert labels[120, 120] == background and labels[65, 120] == background


def test_gap_in_border_does_not_leak_into_background():
    img = _paper()
    cv2.rectangle(img, (20, 20), (100, 100), 0, 2)
    img[58:60, 15:26] = 255  # a 2 px gap through the left border
    cov = _coverage(img)
    assert (cov[58:60, 18:23] < 0.5).all()  # the gap really is open paper
    labels = segment_regions(cov)
    inside, outside = labels[60, 60], labels[5, 5]
    assert inside > 0 and outside > 0 and inside != outside
    assert len(np.unique(labels)) == 3  # lines + inside + outside, nothing else
    # the interior right next to the gap is still the interior
    assert labels[59, 25] == inside and labels[59, 14] == outside
    # without gap closing the two do leak into one region: the gap is what the ball holds back
    plain = segment_regions(cov, gap_close=0)
    assert plain[60, 60] == plain[5, 5]


def test_thin_region_between_close_lines_is_kept():
    img = _paper()
    cv2.rectangle(img, (20, 20), (100, 100), 0, 2)
    cv2.line(img, (20, 58), (100, 58), 0, 2)
    cv2.line(img, (20, 64), (100, 64), 0, 2)  # a strip 3 px tall between them: too thin for the big ball
    img[62:67, 80:82] = 255  # and a 2 px gap from the strip into the big region below
    labels = segment_regions(_coverage(img))
    above, strip, below = labels[40, 60], labels[61, 60], labels[80, 60]
    assert len({above, strip, below, labels[5, 5]}) == 4 and strip > 0
    strip_row = labels[61, 24:97]
    assert np.all(strip_row == strip)


def test_small_enclosed_region_kept_and_specks_merged():
    img = _paper()
    cv2.rectangle(img, (20, 20), (100, 100), 0, 2)
    cv2.circle(img, (60, 60), 4, 0, 1)  # a tiny closed eye highlight
    cv2.line(img, (30, 90), (90, 90), 0, 5)
    img[90, 60] = 255  # a one-pixel hole in a thick line
    cov = _coverage(img)
    labels = segment_regions(cov)
    assert labels[60, 60] > 0 and labels[60, 60] != labels[40, 40]
    assert labels[90, 60] > 0  # not a line, so it has a region ...
    areas = np.bincount(labels.ravel())
    assert areas[labels[90, 60]] > 10  # ... that of a neighbour, not a speck of its own


def test_segment_regions_edge_cases():
    assert not segment_regions(np.ones((16, 16), np.float32)).any()
    blank = segment_regions(np.zeros((16, 16), np.float32))
    assert np.all(blank == 1)
    with pytest.raises(InputError):
        segment_regions(np.zeros((4, 4, 3), np.float32))


def test_segment_512_is_fast_enough():
    import time

    rng = np.random.default_rng(0)
    img = np.full((512, 512), 255, np.uint8)
    for _ in range(40):
        c = rng.integers(0, 512, 2)
        cv2.circle(img, (int(c[0]), int(c[1])), int(rng.integers(10, 80)), 0, 2, cv2.LINE_AA)
    cov = _coverage(img)
    segment_regions(cov)
    start = time.perf_counter()
    segment_regions(cov)
    assert time.perf_counter() - start < 1.0  # target 0.5 s; slack for loaded CI machines


# --- assign_lines -----------------------------------------------------------------------------------


def test_assign_lines_gives_every_line_pixel_the_nearest_region():
    cov = _two_boxes()
    labels = segment_regions(cov)
    full = assign_lines(labels)
    assert not (full == 0).any()
    assert np.array_equal(full[labels > 0], labels[labels > 0])
    # the left border of the left box: its outer side joins the background, its inner side the box
    assert full[65, 19] == labels[5, 5]
    assert full[65, 21] == labels[65, 40]


# --- flatten / palette ------------------------------------------------------------------------------


def _noisy_colour_image(labels: np.ndarray, base: dict[int, tuple[int, int, int]]) -> np.ndarray:
    rng = np.random.default_rng(1)
    img = np.zeros((*labels.shape, 3), np.uint8)
    for r, rgb in base.items():
        m = labels == r
        noise = rng.integers(-12, 13, (int(m.sum()), 3))
        img[m] = np.clip(np.array(rgb) + noise, 0, 255)
    img[labels == 0] = (10, 20, 30)
    return img


def test_flatten_paints_each_region_the_median_of_its_interior():
    cov = _two_boxes()
    labels = segment_regions(cov)
    inner = interiors(labels)
    left, right, bg = int(labels[65, 40]), int(labels[65, 86]), int(labels[5, 5])
    img = _noisy_colour_image(labels, {left: (200, 60, 60), right: (60, 60, 200), bg: (240, 240, 240)})
    img[40:50, 30:40] = (0, 255, 0)  # a stray blob a mean would be pulled by
    out = flatten(img, labels)
    assert out.dtype == np.uint8 and out.shape == img.shape
    colours = _region_colours(out, labels)
    assert all(len(c) == 1 for c in colours.values())
    for r in (left, right, bg):
        expected = np.round(np.median(img[inner == r].astype(np.float64), axis=0) + 1e-9)
        assert np.abs(colours[r][0].astype(int) - expected).max() <= 1
    assert np.array_equal(out[labels == 0], img[labels == 0])


def test_lock_to_strokes_moves_each_hinted_region_to_its_stroke_colour_and_keeps_its_shading():
    cov = _two_boxes()
    labels = segment_regions(cov)
    left, right, bg = int(labels[65, 40]), int(labels[65, 86]), int(labels[5, 5])
    img = _noisy_colour_image(labels, {left: (200, 60, 60), right: (60, 60, 200), bg: (240, 240, 240)})
    shadow = (labels == left) & (np.arange(128)[:, None] > 80)
    img[shadow] = img[shadow] // 2  # the network's shading: a darker band low in the left box
    strokes = np.zeros((*labels.shape, 4), np.uint8)
    strokes[50:54, 30:50] = (150, 110, 90, 255)
    out = lock_to_strokes(img, labels, strokes)
    assert out.dtype == np.uint8 and out.shape == img.shape
    in_left, inside_left = labels == left, interiors(labels) == left
    assert np.abs(np.median(out[inside_left].astype(float), axis=0) - (150, 110, 90)).max() <= 0.5
    # every pixel moved by the same amount: the shading is still there, as deep as before
    moved = out[in_left].astype(int) - img[in_left].astype(int)
    assert (moved == moved[0]).all() and (moved[0] != 0).any()
    assert np.array_equal(out[labels == right], img[labels == right])  # no strokes: untouched
    assert np.array_equal(out[labels == bg], img[labels == bg])
    assert np.unique(flatten(out, labels)[in_left], axis=0).tolist() == [[150, 110, 90]]
    # a colour so bright that the shift clips: the median is still exactly the stroke colour
    strokes[50:54, 30:50, :3] = (255, 250, 5)
    bright = lock_to_strokes(img, labels, strokes)
    assert np.abs(np.median(bright[inside_left].astype(float), axis=0) - (255, 250, 5)).max() <= 0.5
    assert np.array_equal(lock_to_strokes(img, labels, np.zeros_like(strokes)), img)


def test_a_stroke_across_many_narrow_regions_keeps_its_biggest_part_and_every_deep_one():
    img = _paper()
    for x in range(4, 124, 10):
        cv2.line(img, (x, 0), (x, 127), 0, 2)  # 11 stripes between 12 lines, 8 px of paper each
    labels = segment_regions(_coverage(img))
    strokes = np.zeros((128, 128, 4), np.uint8)
    strokes[60:63, 6:122] = (200, 40, 40, 255)  # one stroke across all of them, under 10% in each
    stripes = np.unique(labels[61, 6:122][labels[61, 6:122] > 0])
    assert len(stripes) >= 11
    # each part is about 4 px deep: deeper than the reach (2 px at 128), every part is kept; where each is within
    # the reach, only the biggest, never none
    assert stroked_regions(labels, drop_slips(labels, strokes))[stripes].all()
    assert stroked_regions(labels, drop_slips(labels, strokes, reach=5.0))[stripes].sum() >= 1


def test_interiors_leave_out_the_rim_along_lines_but_keep_a_sliver_whole():
    labels = np.zeros((12, 12), np.int32)
    labels[1:11, 1:7] = 1  # 10 x 6 with lines all round: its rim is the pixels beside them
    labels[1:11, 8:10] = 2  # a sliver 2 px wide: all rim, kept whole
    inner = interiors(labels)
    assert np.array_equal(inner == 1, np.pad(np.ones((8, 4), bool), ((2, 2), (2, 6))))
    assert np.array_equal(inner == 2, labels == 2)
    assert (inner[labels == 0] == 0).all()
    assert flatten(np.zeros((0, 5, 3), np.uint8), np.zeros((0, 5), np.int32)).shape == (0, 5, 3)  # nothing to do


def test_lock_and_flatten_judge_a_region_by_its_interior_not_its_dark_rim():
    # the network runs dark along lines; a narrow region is 40% rim, which pulls a whole-region median off
    labels = np.zeros((31, 7), np.int32)
    labels[:, 1:6] = 1  # lines at the left and right edges: columns 1 and 5 are rim, 2-4 interior
    img = np.zeros((31, 7, 3), np.uint8)
    img[:, 2:5] = np.linspace(100, 120, 31).astype(np.uint8)[:, None, None]  # the interior's shading
    img[:, [1, 5]] = 40
    strokes = np.zeros((31, 7, 4), np.uint8)
    strokes[10:20, 3] = (150, 150, 150, 255)
    out = lock_to_strokes(img, labels, strokes)
    assert np.median(out[:, 2:5].reshape(-1, 3), axis=0).tolist() == [150, 150, 150]
    assert np.median(out[labels == 1], axis=0).tolist() != [150, 150, 150]  # the rim's share is not counted
    assert np.unique(flatten(out, labels)[labels == 1], axis=0).tolist() == [[150, 150, 150]]


def test_lock_to_strokes_is_exact_where_the_shift_clips_an_even_count_and_skips_mixed_regions():
    labels = np.ones((10, 10), np.int32)
    labels[:, 0] = 0  # a line down the left edge: region 1's interior (off the line's column) has 80 px, an even count
    img = np.zeros((10, 10, 3), np.uint8)
    img[:5] = (230, 220, 180)  # lit half
    img[5:] = (140, 130, 90)  # shadow half
    strokes = np.zeros((10, 10, 4), np.uint8)
    strokes[2, 3:6] = (252, 240, 200, 255)
    out = lock_to_strokes(img, labels, strokes)
    assert np.unique(flatten(out, labels)[labels == 1], axis=0).tolist() == [[252, 240, 200]]
    assert (out[5:, 1:].astype(int) < out[:5, 1:]).all()  # the shadow is still darker
    # strokes of two colours, neither with three quarters of them: the network's own colours stay
    strokes[7, 3:5] = (20, 20, 200, 255)
    assert np.array_equal(lock_to_strokes(img, labels, strokes), img)
    strokes[7, 4] = 0  # one blue pixel of four: the red-ish one decides
    assert np.unique(flatten(lock_to_strokes(img, labels, strokes), labels)[labels == 1], axis=0).tolist() == \
        [[252, 240, 200]]


def test_a_stroke_that_slips_over_a_line_colours_only_its_own_region():
    cov = _two_boxes()
    labels = segment_regions(cov)
    left, right = int(labels[65, 40]), int(labels[65, 86])
    strokes = np.zeros((*labels.shape, 4), np.uint8)
    strokes[60:63, 30:68] = (200, 40, 40, 255)  # drawn in the left box, its end 2 px past the middle line
    assert stroked_regions(labels, strokes)[right]  # as drawn, the slip reaches the right box
    kept = drop_slips(labels, strokes)
    assert not stroked_regions(labels, kept)[right] and stroked_regions(labels, kept)[left]
    assert np.array_equal(kept[labels == left], strokes[labels == left])  # the stroke itself is untouched
    fill, filled = region_fill(labels, kept)
    assert filled[labels == left].all() and not filled[labels == right].any()
    # drawn across the line on purpose, with a fair share on each side: it counts in both boxes
    strokes[60:63, 30:100] = (200, 40, 40, 255)
    assert np.array_equal(drop_slips(labels, strokes), strokes)
    # a small part that reaches well into the region beyond (a dab touching a scribble) is meant too
    strokes[:] = 0
    strokes[60:63, 22:69] = (200, 40, 40, 255)
    strokes[55:68, 68:79] = (200, 40, 40, 255)
    assert np.array_equal(drop_slips(labels, strokes), strokes)
    assert np.array_equal(drop_slips(labels, np.zeros_like(strokes)), np.zeros_like(strokes))


def test_snap_to_palette_picks_nearest_entry_once_per_region(tmp_path):
    cov = _two_boxes()
    labels = segment_regions(cov)
    left, right, bg = int(labels[65, 40]), int(labels[65, 86]), int(labels[5, 5])
    img = _noisy_colour_image(labels, {left: (205, 70, 60), right: (70, 80, 190), bg: (235, 235, 225)})
    palette = [(255, 255, 255), (220, 40, 40), (40, 60, 220), (40, 200, 40)]
    out = snap_to_palette(img, labels, palette)
    colours = _region_colours(out, labels)
    assert all(len(c) == 1 for c in colours.values())
    assert tuple(colours[left][0]) == (220, 40, 40)
    assert tuple(colours[right][0]) == (40, 60, 220)
    assert tuple(colours[bg][0]) == (255, 255, 255)
    assert np.array_equal(out[labels == 0], img[labels == 0])
    # the same from a model sheet file
    sheet = tmp_path / "sheet.json"
    sheet.write_text(json.dumps({"name": "t", "colors": {"paper": "#ffffff", "red": [220, 40, 40],
                                                          "blue": "#283cdc", "green": "#28c828"}}))
    assert np.array_equal(snap_to_palette(img, labels, sheet), out)


def test_snap_uses_lab_distance_not_rgb():
    labels = np.ones((4, 4), np.int32)
    img = np.full((4, 4, 3), (100, 130, 100), np.uint8)  # a muted green
    dark_green, grey = (60, 110, 60), (140, 140, 140)
    # in RGB the grey is nearer (3300 vs 3600), in CIELAB the green is (about 300 vs 510)
    out = snap_to_palette(img, labels, [grey, dark_green])
    assert np.all(out == dark_green)


def test_load_palette_formats(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"name": "hero", "colors": {"skin": "#f2d0b8", "hair": [40, 30, 90],
                                                            "eye": "#0af"}}))
    assert load_palette(path) == [(0xF2, 0xD0, 0xB8), (40, 30, 90), (0, 0xAA, 0xFF)]


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "not valid JSON"),
    ('{"name": "x"}', '"colors"'),
    ('{"colors": {}}', "no colours"),
    ('{"colors": {"skin": "#12345"}}', "skin"),
    ('{"colors": {"skin": "#zzzzzz"}}', "skin"),
    ('{"colors": {"hair": [1, 2, 300]}}', "hair"),
    ('{"colors": {"hair": [1, 2]}}', "hair"),
    ('{"colors": "red"}', "colors"),
    ("[1, 2, 3]", '"colors"'),
])
def test_load_palette_rejects_malformed_files(tmp_path, text, fragment):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=None) as info:
        load_palette(path)
    assert isinstance(info.value, PaletteError) and isinstance(info.value, InputError)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_load_palette_missing_file(tmp_path):
    with pytest.raises(PaletteError, match="not found"):
        load_palette(tmp_path / "nope.json")


# --- region_fill ------------------------------------------------------------------------------------


def test_region_fill_colours_hinted_regions_only():
    cov = _two_boxes()
    labels = segment_regions(cov)
    left, right, bg = labels[65, 40], labels[65, 86], labels[5, 5]
    hint = np.zeros((*labels.shape, 4), np.uint8)
    cv2.circle(hint, (40, 60), 4, (230, 20, 20, 255), -1)
    # the right box gets two colours: more green pixels than yellow ones, so green wins
    cv2.rectangle(hint, (75, 50), (90, 60), (20, 200, 20, 255), -1)
    cv2.rectangle(hint, (75, 80), (80, 84), (240, 230, 10, 255), -1)
    hint[65, 64] = (0, 0, 255, 255)  # on the shared line: ignored
    colour, filled = region_fill(labels, hint)
    assert colour.dtype == np.uint8 and colour.shape == (*labels.shape, 3) and filled.dtype == bool
    assert np.all(colour[labels == left] == (230, 20, 20))
    assert np.all(colour[labels == right] == (20, 200, 20))
    assert np.array_equal(filled, (labels == left) | (labels == right))
    assert not filled[labels == bg].any() and not filled[labels == 0].any()
    assert not (colour[~filled] != 0).any()
    assert len(_region_colours(colour, labels)[int(left)]) == 1


def test_stroked_regions_are_the_regions_a_stroke_colour_is_voted_for():
    labels = segment_regions(_two_boxes())
    left, right = labels[65, 40], labels[65, 86]
    hint = np.zeros((*labels.shape, 4), np.uint8)
    cv2.circle(hint, (40, 60), 4, (230, 20, 20, 255), -1)
    hint[65, 64] = (0, 0, 255, 255)  # on the shared line: no region's
    hint[66, 86] = (0, 0, 255, 100)  # under the stroke alpha: not a stroke
    stroked = stroked_regions(labels, hint)
    assert stroked.shape == (labels.max() + 1,)
    assert np.flatnonzero(stroked).tolist() == [left]
    assert np.array_equal(stroked, region_stroke_colors(labels, hint)[1])
    hint[66, 86] = (0, 0, 255, 255)
    assert np.flatnonzero(stroked_regions(labels, hint)).tolist() == sorted([left, right])


def test_region_fill_rejects_mismatched_hint():
    with pytest.raises(InputError):
        region_fill(np.ones((8, 8), np.int32), np.zeros((8, 9, 4), np.uint8))


def test_bare_regions_are_the_sizeable_regions_without_strokes():
    from alacgan_batch.preview import bare_regions

    coverage = np.zeros((80, 120), np.float32)
    cv2.rectangle(coverage, (10, 10), (50, 60), 1.0, 2)
    cv2.rectangle(coverage, (70, 10), (110, 60), 1.0, 2)
    cv2.rectangle(coverage, (60, 68), (63, 71), 1.0, 1)  # a speck of a region, under 0.2% of the frame
    strokes = np.zeros((80, 120, 4), np.uint8)
    strokes[30:34, 25:35] = (255, 0, 0, 255)  # the left box
    strokes[2:4, 2:10] = (0, 0, 255, 255)  # the paper around
    labels = segment_regions(coverage)
    right = labels[35, 90]
    assert (bare_regions(coverage, strokes) == (labels == right)).all()
