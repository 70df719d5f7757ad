"""Hints: the §3.4 encoding, reading stroke images, and which hint belongs to which frame."""

import numpy as np
import pytest
import torch
from helpers import write_image

from alacgan_batch.errors import InputError
from alacgan_batch.hints import SPREAD_WEIGHT, assign_hints, read_strokes, spread_strokes, strokes_to_hint
from alacgan_batch.sequence import discover_frames


def test_strokes_to_hint_max_pools_to_quarter_size_and_removes_every_other_pixel():
    rgb = torch.zeros(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 0:8, 0:8] = 1  # a red 8x8 stroke: quarter-size cells (0..1, 0..1)
    rgb[0, 0, 0:8, 0:8] = 1.0
    mask[0, 0, 13, 13] = 1  # one blue pixel: cell (3, 3)
    rgb[0, 2, 13, 13] = 1.0
    hint = strokes_to_hint(rgb, mask)
    assert hint.shape == (1, 4, 4, 4)
    expected_mask = torch.zeros(4, 4)
    expected_mask[0, 0] = expected_mask[1, 1] = expected_mask[3, 3] = 1  # (0,1), (1,0) removed: odd x+y
    torch.testing.assert_close(hint[0, 3], expected_mask)
    torch.testing.assert_close(hint[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0, 1.0]))  # red in [-1,1]
    torch.testing.assert_close(hint[0, :, 3, 3], torch.tensor([-1.0, -1.0, 1.0, 1.0]))  # blue
    torch.testing.assert_close(hint[0, :, 0, 1], torch.zeros(4))  # removed pixel: colour and mask 0
    torch.testing.assert_close(hint[0, :, 2, 2], torch.zeros(4))  # no stroke
    assert strokes_to_hint(rgb, mask, thin=False)[0, 3].sum() == 5


def _two_boxes() -> np.ndarray:
    """A 32x48 sketch (1 = paper): a box of lines around x 4..20 with a 2-px gap, the rest outside it."""
    sketch = np.ones((32, 48), np.float32)
    sketch[4, 4:21] = sketch[20, 4:21] = 0.0
    sketch[4:21, 4] = sketch[4:21, 20] = 0.0
    sketch[11:13, 20] = 1.0  # a 2-px gap in the right side: closed by the region segmentation
    return sketch


def test_spread_strokes_fill_the_stroked_region_and_only_it():
    sketch = _two_boxes()
    rgb = np.zeros((32, 48, 3), np.float32)
    mask = np.zeros((32, 48), np.float32)
    mask[10:12, 8:11] = 1  # a green stroke inside the box
    rgb[10:12, 8:11] = (0.0, 1.0, 0.0)
    colors, filled = spread_strokes(rgb, mask, sketch)
    inside = np.zeros((32, 48), bool)
    inside[5:20, 5:20] = True
    inside[11:13, 20] = True  # the gap's own pixels join the box
    assert filled[inside].all() and not filled[~inside].any()  # the gap did not let it leak out
    np.testing.assert_allclose(colors[inside], np.tile([0.0, 1.0, 0.0], (inside.sum(), 1)))

    hint = strokes_to_hint(torch.from_numpy(rgb).permute(2, 0, 1)[None], torch.from_numpy(mask)[None, None],
                           spread=(torch.from_numpy(colors).permute(2, 0, 1)[None],
                                   torch.from_numpy(filled)[None, None]))
    weight = hint[0, 3]
    assert weight[2, 2] == 1.0  # the stroke's own block (x+y even): a drawn colour
    # blocks wholly inside the box and not stroked get the spread colour at SPREAD_WEIGHT
    assert weight[3, 3] == SPREAD_WEIGHT and weight[2, 3] == SPREAD_WEIGHT  # (2, 3): thinned stroke block
    torch.testing.assert_close(hint[0, :3, 3, 3], torch.tensor([-1.0, 1.0, -1.0]) * SPREAD_WEIGHT)
    assert weight[1, 1] == 0  # a block on the box's line: two regions, no colour
    assert weight[:, 6:].abs().sum() == 0  # outside the box: no stroke there, nothing spread
    plain = strokes_to_hint(torch.from_numpy(rgb).permute(2, 0, 1)[None], torch.from_numpy(mask)[None, None])
    assert set(plain[0, 3].unique().tolist()) == {0.0, 1.0}  # without `spread`: the paper's encoding


def test_read_strokes_accepts_rgba_and_white_background_rgb(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:8, 5:9] = (10, 200, 30, 255)
    rgba[0, 0] = (255, 0, 0, 20)  # nearly transparent: not a stroke
    strokes = read_strokes(write_image(tmp_path / "a.png", rgba), (20, 30))
    assert strokes[..., 3].sum() == 12 * 255
    assert tuple(strokes[6, 6]) == (10, 200, 30, 255)

    rgb = np.full((20, 30, 3), 255, np.uint8)
    rgb[2:4, 2:4] = (0, 0, 250)
    strokes = read_strokes(write_image(tmp_path / "b.png", rgb), (20, 30))
    assert (strokes[..., 3] > 0).sum() == 4 and tuple(strokes[3, 3, :3]) == (0, 0, 250)

    with pytest.raises(InputError, match="30x20 but its frame is 40x20"):
        read_strokes(tmp_path / "a.png", (20, 40))


def test_hints_are_assigned_by_at_frame_name_number_and_lone_file(frames_dir, tmp_path):
    frames = discover_frames(frames_dir)
    key = write_image(tmp_path / "key.png", np.zeros((72, 100, 4), np.uint8))
    assert assign_hints([f"{key}@3"], frames) == {2: key}  # frame number 3 is the third frame
    assert assign_hints([key], frames) == {0: key}  # a single unnumbered hint: first frame
    named = write_image(tmp_path / "h" / "shot.0004.png", np.zeros((72, 100, 4), np.uint8))
    numbered = write_image(tmp_path / "h" / "key_0002.png", np.zeros((72, 100, 4), np.uint8))
    assert assign_hints([tmp_path / "h"], frames) == {3: named, 1: numbered}

    with pytest.raises(InputError, match="no frame 9"):
        assign_hints([f"{key}@9"], frames)
    with pytest.raises(InputError, match="two hints for frame 4"):
        assign_hints([named, f"{key}@4"], frames)
    with pytest.raises(InputError, match="cannot tell which frame"):
        assign_hints([key, f"{named}"], frames)
    with pytest.raises(InputError, match="not found"):
        assign_hints([tmp_path / "nope.png"], frames)


def test_frames_are_ordered_by_number_not_string(tmp_path):
    for n in (10, 9, 100, 1):
        write_image(tmp_path / f"f{n}.png", np.full((8, 8), 255, np.uint8))
    assert [f.number for f in discover_frames(tmp_path)] == [1, 9, 10, 100]
