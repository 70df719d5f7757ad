"""Between full frame size and the network's working size, and putting the drawn lines back on top.

The network runs at a working resolution (short side 512, the size it was trained at, §4.2). Its colour
is resized back to the frame's size and the original full-resolution lines are laid over it: the colour
is multiplied by the line art (the usual "multiply" line layer), and every drawn line pixel is then
copied exactly from the input, so lines stay as drawn.
"""

from __future__ import annotations

import cv2
import numpy as np

from .sequence import LineArt

WORKING_SHORT_SIDE = 512  # §4.2: images are resized to short side 512 for training


def working_size(size: tuple[int, int], short_side: int | None = WORKING_SHORT_SIDE) -> tuple[int, int]:
    """(height, width) at which the network sees a frame of `size`; `short_side` None or 0 keeps the size."""
    height, width = size
    if not short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def sketch_at(lineart: LineArt, size: tuple[int, int]) -> np.ndarray:
    """The network's sketch X: HxW float32 in [-1, 1], lines dark (-1) on white (1)."""
    coverage = _resize(lineart.coverage, size)
    return (1.0 - 2.0 * coverage).astype(np.float32)


def strokes_at(strokes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 strokes -> (colour HxWx3 float [0,1], mask HxW float {0,1}) at `size`.

    Area resampling keeps thin strokes: a working pixel is a stroke if any stroke pixel falls in it, and
    takes the mean colour of those stroke pixels.
    """
    mask = (strokes[..., 3] > 127).astype(np.float32)
    color = strokes[..., :3].astype(np.float32) / 255.0 * mask[..., None]
    area = _resize(mask, size)
    color = _resize(color, size)
    covered = area > 1e-6
    color = np.where(covered[..., None], color / np.maximum(area, 1e-6)[..., None], 0.0)
    return np.clip(color, 0.0, 1.0).astype(np.float32), covered.astype(np.float32)


def compose(color: np.ndarray, lineart: LineArt, overlay_lines: bool = True) -> np.ndarray:
    """Working-size colour (HxWx3 float [0,1]) -> full-size uint8 RGB, with the drawn lines laid over it."""
    full = np.clip(cv2.resize(color, (lineart.size[1], lineart.size[0]), interpolation=cv2.INTER_CUBIC), 0, 1)
    if not overlay_lines:
        return np.round(full * 255.0).astype(np.uint8)
    out = np.round(full * lineart.rgb * 255.0).astype(np.uint8)
    lines = lineart.line_mask
    out[lines] = lineart.rgb8()[lines]
    return out
