"""Between full frame size and the network's working size, and finishing a frame: regions, lines, alpha.

The network runs at a working resolution (short side 512, the size it was trained at, §4.2). Its colour
is resized back to the frame's size; region passes (hint fill, flatten, palette) work on the full-size
line art; then the original full-resolution lines are laid over the colour: the colour is multiplied by
the line art (the usual "multiply" line layer) and every drawn line pixel is copied exactly from the
input, so lines (coloured trace lines included) stay as drawn.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ConfigError, InputError
from .layers import apply_background, frame_matte, split_layers
from .sequence import LineArt

WORKING_SHORT_SIDE = 512  # §4.2: images are resized to short side 512 for training
# Smallest working short side. The network pads to a multiple of 16 and takes any size, but OpenCV's DIS
# optical flow (hint propagation, the stabilizer) rejects frames under 12 px and crashes the process on
# long thin ones (12x64) below 16 px; 16 px works at any aspect ratio.
MIN_SHORT_SIDE = 16
BACKGROUNDS = ("white", "transparent", "keep")


def check_short_side(short_side: object) -> None:
    """ConfigError unless `short_side` is None, 0 (the frames' own size) or an integer >= MIN_SHORT_SIDE."""
    if short_side is None:
        return
    if isinstance(short_side, bool) or not isinstance(short_side, numbers.Integral):
        raise ConfigError(f"short side must be a whole number of pixels, not {short_side!r}")
    if short_side != 0 and short_side < MIN_SHORT_SIDE:
        raise ConfigError(f"short side {short_side} is too small: use 0 (the frames' own size) or at least "
                          f"{MIN_SHORT_SIDE} px")


def working_size(size: tuple[int, int], short_side: int | None = WORKING_SHORT_SIDE) -> tuple[int, int]:
    """(height, width) at which the network sees a frame of `size`; `short_side` None or 0 keeps the size.

    A short side below MIN_SHORT_SIDE is a ConfigError; so is (as an InputError) a frame that small kept
    at its own size.
    """
    check_short_side(short_side)
    height, width = size
    if not short_side:
        if min(height, width) < MIN_SHORT_SIDE:
            raise InputError(f"frame is {width}x{height} px: at its own size (short side 0) a frame needs at least "
                             f"{MIN_SHORT_SIDE} px on its short side; pass --short-side {MIN_SHORT_SIDE} or more "
                             "to scale it up")
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize to (height, width): area when shrinking, linear when enlarging, nearest for labels and strokes."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    if nearest:
        interpolation = cv2.INTER_NEAREST
    elif height * width < image.shape[0] * image.shape[1]:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def coverage_at(lineart: LineArt, size: tuple[int, int]) -> np.ndarray:
    """How much of each pixel is line (HxW float, 0 paper .. 1 line) at `size`."""
    return resize(lineart.coverage, size)


def sketch_at(lineart: LineArt, size: tuple[int, int]) -> np.ndarray:
    """The network's sketch X: HxW float32 in [-1, 1], lines dark (-1) on white (1)."""
    return (1.0 - 2.0 * coverage_at(lineart, size)).astype(np.float32)


def strokes_at(strokes: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 strokes -> (colour HxWx3 float [0,1], mask HxW float {0,1}) at `size`.

    Area resampling keeps thin strokes: a working pixel is a stroke if any stroke pixel falls in it, and
    takes the mean colour of those stroke pixels.
    """
    mask = (strokes[..., 3] > 127).astype(np.float32)
    color = strokes[..., :3].astype(np.float32) / 255.0 * mask[..., None]
    area = resize(mask, size)
    color = resize(color, size)
    covered = area > 1e-6
    color = np.where(covered[..., None], color / np.maximum(area, 1e-6)[..., None], 0.0)
    return np.clip(color, 0.0, 1.0).astype(np.float32), covered.astype(np.float32)


def to_full_size(color: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Working-size colour (float [0,1]) -> uint8 RGB at the frame's full size."""
    full = cv2.resize(color, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) if color.shape[:2] != size else color
    return np.round(np.clip(full, 0, 1) * 255.0).astype(np.uint8)


def overlay_lines(color: np.ndarray, lineart: LineArt) -> np.ndarray:
    """Multiply uint8 RGB colour by the line art, then copy every drawn line pixel exactly."""
    out = np.round(color.astype(np.float32) * lineart.rgb).astype(np.uint8)
    lines = lineart.line_mask
    out[lines] = lineart.rgb8()[lines]
    return out


def compose(color: np.ndarray, lineart: LineArt, overlay: bool = True) -> np.ndarray:
    """Working-size colour (HxWx3 float [0,1]) -> full-size uint8 RGB, with the drawn lines laid over it."""
    full = to_full_size(color, lineart.size)
    return overlay_lines(full, lineart) if overlay else full


@dataclass
class Finished:
    """A finished frame: the final image (RGB, or RGBA with alpha) and, when asked, its layers."""

    final: np.ndarray
    layers: object | None = None


@dataclass
class Finish:
    """How a frame is finished after the network: hint fill or lock, flatten, palette, lines, background, layers."""

    overlay_lines: bool = True
    flatten: bool = False
    palette: list[tuple[int, int, int]] | None = None
    palette_path: str | None = None
    background: str = "white"
    layers: bool = False
    engine: str = "network"  # whose colour is finished: the network's, flat fills (flat) or both (hybrid)
    lock_hints: bool = False  # network engine: every region holding strokes is shifted to their colour, shading kept
    gap_close: int = 3

    @classmethod
    def create(cls, overlay_lines: bool = True, flatten: bool = False, palette: Path | str | None = None,
               background: str = "white", layers: bool = False, engine: str = "network",
               lock_hints: bool = False) -> Finish:
        if background not in BACKGROUNDS:
            raise ConfigError(f"unknown background {background!r}: use {', '.join(BACKGROUNDS)}")
        colors = None
        if palette is not None:
            from .regions import load_palette

            colors = load_palette(Path(palette))
        return cls(overlay_lines, flatten, colors, str(palette) if palette else None, background, layers, engine,
                   lock_hints=lock_hints and engine == "network")

    def describe(self) -> dict:
        # the palette's colours (a sheet edited between runs must not be resumed into) and its file name, not the
        # path it was given by (the same sheet named by an absolute path is the same sheet)
        colors = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in self.palette] if self.palette is not None else None
        name = Path(self.palette_path).name if self.palette_path else None
        described = {"overlay_lines": self.overlay_lines, "flatten": self.flatten, "palette": name,
                     "palette_colors": colors, "background": self.background, "layers": self.layers,
                     "fill_hints": self.fill_hints}
        if self.lock_hints:  # recorded only when on: a run from before the option existed is a run without it
            described["lock_hints"] = True
        if self.lock_hints or self.engine != "flat" and (self.flatten or self.palette is not None or self.layers):
            # a region's colour is the median over its interior (regions.interiors): a run from before this was
            # recorded took it over the whole region, and is not resumed into (without the network every region
            # is one colour, which either median gives)
            described["region_color"] = "interior median"
        return described

    @property
    def fill_hints(self) -> bool:
        """Flat and hybrid engines: every region holding strokes takes their colour."""
        return self.engine != "network"

    @property
    def needs_regions(self) -> bool:
        return self.flatten or self.palette is not None or self.fill_hints or self.layers or \
            self.background == "transparent"

    def apply(self, color: np.ndarray | None, lineart: LineArt, strokes: np.ndarray | None) -> Finished:
        """Network colour at working size (or None: no network) and working-size RGBA strokes -> Finished."""
        from . import regions

        size = lineart.size
        full = to_full_size(color, size) if color is not None else np.full((*size, 3), 255, np.uint8)
        lock = self.lock_hints and color is not None and strokes is not None  # a frame without strokes: nothing to lock
        labels = regions.segment_regions(lineart.coverage, gap_close=self.gap_close) \
            if self.needs_regions or lock else None
        unfilled = None
        if strokes is not None and (self.fill_hints or lock):
            strokes = regions.drop_slips(labels, resize(strokes, size, nearest=True))
        if self.fill_hints:
            if strokes is not None:
                fill, filled = regions.region_fill(labels, strokes)
                full[filled] = fill[filled]
            else:
                filled = np.zeros(size, bool)
            if color is None:  # flat engine: regions without hints stay empty (transparent)
                unfilled = (labels > 0) & ~filled
        if lock:
            full = regions.lock_to_strokes(full, labels, strokes)
        if self.flatten:
            full = regions.flatten(full, labels)
        if self.palette is not None:
            full = regions.snap_to_palette(full, labels, self.palette)
        final = overlay_lines(full, lineart) if self.overlay_lines else full
        # labels, line layer and background cut, computed once for the background and the layers
        matte = frame_matte(lineart, labels) if self.layers or self.background == "transparent" else None
        if self.background != "white":
            final = apply_background(final, lineart, labels, self.background, matte=matte)
        if unfilled is not None:  # on white paper the rest stays opaque, whatever alpha the lines came in
            if final.shape[2] == 3:
                final = np.dstack([final, np.full(size, 255, np.uint8)])
            final[unfilled, 3] = 0
        layers = None
        if self.layers:
            layers = split_layers(full.astype(np.float32) / 255.0, lineart, labels, self.background, matte=matte)
        return Finished(final, layers)
