"""Layers for compositing: a coloured frame split into line, flat and shading layers, and background alpha.

A finished frame (see `compose.compose`) is the network colour multiplied by the drawn lines, with every
line pixel copied exactly from the input. For compositing, the same frame is handed over as three RGBA
layers that stack back to it (`recompose`):

- `flat`: one colour per region (the median network colour of its interior, what `--flatten` paints), extended
  under the lines to the nearest region so no paper shows through anti-aliased edges;
- `shading`: the difference between the colour and the flats, as the least opaque layer that turns the
  flat colour into the network colour under a normal blend: a shadow is a dark colour at partial alpha,
  a highlight a light one; alpha 0 where the colour equals the flat;
- `line`: the drawn lines with white taken out (colour-to-alpha against white paper): alpha = line
  coverage, colour = the line's own colour, so black lines are black at the coverage's opacity. It is
  uint16 when the input was 16-bit.

Stacking order: flat, then shading over it clipped to the flat's alpha, then the lines with a multiply
blend, line pixels (coverage >= LINE_THRESHOLD) taking the line colour exactly. For black lines the
multiply and a normal "over" give the same picture.

Background modes (`apply_background`, and the flat layer's alpha):

- `white`: opaque RGB, as `compose` writes it;
- `keep`: RGBA with the input's own alpha (opaque when the input has none);
- `transparent`: RGBA where the background is cut out. The background is every region that touches the
  frame border and is blank paper in the line art: mean line coverage below PAPER_COVERAGE, and, when the
  input has alpha, mostly transparent there (so an opaque white character cut off by the frame edge
  stays). Unlabelled pixels (the line gaps) belong to the nearest region; line pixels are never
  background. Background pixels keep only the lines' own matte: the line colour at alpha = coverage, so
  anti-aliased outer edges fade out cleanly instead of leaving a white fringe. Lines and every other
  region stay opaque. A character region that touches the border and is blank paper in the line art is
  indistinguishable from the background by this rule; pass labels that merge it with its character, or
  use `keep` with an alpha-matted input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from .errors import ConfigError, InputError
from .regions import assign_lines, interiors, region_medians
from .sequence import LINE_THRESHOLD, LineArt
from .writer import atomic_path, write_bytes_atomic, write_png

BACKGROUND_MODES = ("white", "keep", "transparent")
PAPER_COVERAGE = 0.1  # a region whose mean line coverage stays below this is blank paper (no fill, no tone)
EXR_MISSING = "EXR output needs the exr extra: pip install alacgan-batch[exr]"


@dataclass
class Layers:
    """The layers of one frame; `recompose` stacks them back into the frame."""

    line: np.ndarray  # HxWx4 RGBA: line colour, alpha = line coverage (uint16 when the input was 16-bit, else uint8)
    flat: np.ndarray  # HxWx4 uint8 RGBA: one flat colour per region, alpha per background mode
    shading: np.ndarray  # HxWx4 uint8 RGBA: colour minus flats, normal-blended over flat
    background: str = "white"  # the background mode the alphas were made for


@dataclass
class FrameMatte:
    """What the layers and the background cut of one frame share; each part is worked out on first use, once."""

    lineart: LineArt
    labels: np.ndarray  # compact region ids (0 = no region, 1..n)

    @cached_property
    def nearest(self) -> np.ndarray:
        """Each pixel's region, line pixels taking the nearest region's."""
        return assign_lines(self.labels)

    @cached_property
    def line_layer(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(colour, alpha, full scale) of the line layer (see `_line_layer`)."""
        return _line_layer(self.lineart)

    @cached_property
    def background(self) -> np.ndarray:
        """HxW bool: the pixels `transparent` cuts out."""
        return _background_mask(self.lineart, self.labels, self.nearest)


def frame_matte(lineart: LineArt, labels: np.ndarray | None) -> FrameMatte:
    """The shared per-frame data; `labels` as for `split_layers`."""
    return FrameMatte(lineart, _check_labels(labels, lineart))


def split_layers(color: np.ndarray, lineart: LineArt, labels: np.ndarray | None,
                 background: str = "white", matte: FrameMatte | None = None) -> Layers:
    """Split a frame into line, flat and shading layers (see the module doc).

    `color` is the network colour (HxWx3 float [0,1]), at full size or at working size (it is resized the
    way `compose.compose` does); `labels` are the frame's regions (HxW int, 0 on lines), e.g. from
    `regions.segment_regions`, or None for the connected areas between the lines. A caller that also cuts
    the background passes `matte=frame_matte(lineart, labels)` to both (`labels` are then not read).
    """
    _check_mode(background)
    matte = matte or frame_matte(lineart, labels)
    color8 = np.round(_full_color(color, lineart) * 255.0).astype(np.uint8)
    flat8 = _flat_colors(color8, matte)
    shading = _shading(color8, flat8)
    base_alpha = _background_alpha(matte, background)
    shading[base_alpha == 0] = 0  # nothing to shade where the flats are cut out
    line_color, line_alpha, full_scale = matte.line_layer
    dtype = np.uint16 if full_scale == 65535 else np.uint8
    line = np.dstack([line_color, line_alpha]).astype(dtype)
    return Layers(line, np.dstack([flat8, base_alpha]), shading, background)


def recompose(layers: Layers) -> np.ndarray:
    """Stack the layers: flat, shading over it (normal, clipped to the flat), lines multiplied on top.

    Returns uint8 RGB for the white background, RGBA otherwise. For `split_layers(color, lineart, ...)`
    this is `compose.compose(color, lineart)` (plus `apply_background`) within 2 levels, line pixels
    exactly; with `keep` the alpha is the layers' stacked alpha, which equals the input's wherever that is
    fully opaque or transparent.
    """
    line_color, line_alpha, full_scale = _split_line(layers.line)
    flat = layers.flat.astype(np.int64)
    shading = layers.shading.astype(np.int64)
    color = _blend_normal8(flat[..., :3], shading[..., :3], shading[..., 3:]) / 255.0
    base = layers.flat[..., 3:].astype(np.float64) / 255.0
    line_rgb = line_color / full_scale
    alpha = (line_alpha / full_scale)[..., None]
    # W3C multiply blend of the line layer onto the coloured base, then source-over
    premultiplied = alpha * ((1.0 - base) * line_rgb + base * color * line_rgb) + base * color * (1.0 - alpha)
    out_alpha = alpha + base * (1.0 - alpha)
    out = np.divide(premultiplied, out_alpha, out=np.zeros_like(premultiplied), where=out_alpha > 0)
    lines = line_alpha >= _line_alpha_min(full_scale)
    out[lines] = _over_white(line_color, line_alpha, full_scale)[lines]  # drawn lines stay as drawn
    rgb = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    if layers.background == "white":
        return rgb
    return np.dstack([rgb, np.round(out_alpha[..., 0] * 255.0).astype(np.uint8)])


def apply_background(rgb: np.ndarray, lineart: LineArt, labels: np.ndarray | None, mode: str,
                     matte: FrameMatte | None = None) -> np.ndarray:
    """A composed frame (HxWx3 uint8) with the background `mode` applied (see the module doc).

    `white` returns `rgb` as is; `keep` and `transparent` return HxWx4 uint8. `labels` are only used by
    `transparent` (None: the connected areas between the lines); `matte` as for `split_layers`.
    """
    _check_mode(mode)
    if mode == "white":
        return rgb
    if mode == "keep":
        return np.dstack([rgb, _input_alpha8(lineart)])
    matte = matte or frame_matte(lineart, labels)
    cut = matte.background
    out = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    # the background keeps only the lines' own matte: line colour at alpha = coverage
    line_color, line_alpha, full_scale = matte.line_layer
    out[cut, :3] = _to8(line_color[cut], full_scale)
    out[cut, 3] = _to8(line_alpha[cut], full_scale)
    return out


def background_mask(lineart: LineArt, labels: np.ndarray | None = None) -> np.ndarray:
    """HxW bool: the pixels `transparent` cuts out (border-touching blank-paper regions; see the module doc)."""
    return frame_matte(lineart, labels).background


def write_layers(folder: Path | str, stem: str, layers: Layers) -> list[Path]:
    """Write `<folder>/line/<stem>.png`, `flat/<stem>.png`, `shading/<stem>.png`, each atomically."""
    folder = Path(folder)
    paths = []
    for name, image in (("line", layers.line), ("flat", layers.flat), ("shading", layers.shading)):
        path = folder / name / f"{stem}.png"
        write_png(path, image)
        paths.append(path)
    return paths


def write_exr(path: Path | str, rgb: np.ndarray) -> Path:
    """Write a float RGB(A) image (HxWx3/4, values as given, no colour-space change) as a ZIP-compressed EXR.

    Uses the OpenEXR package (>= 3.3, the `exr` extra) or, failing that, a cv2 build with OpenEXR; with
    neither, ConfigError.
    """
    path = Path(path)
    image = np.ascontiguousarray(rgb, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"write_exr expects HxWx3 or HxWx4 float data, got shape {image.shape}")
    OpenEXR = _openexr()
    if OpenEXR is not None:
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        channels = {"RGBA" if image.shape[2] == 4 else "RGB": image}
        with atomic_path(path) as tmp, OpenEXR.File(header, channels) as exr:
            exr.write(str(tmp))
        return path
    data = _cv2_exr(image)
    if data is None:
        raise ConfigError(EXR_MISSING)
    write_bytes_atomic(path, data)
    return path


def exr_writer_available() -> bool:
    """Whether `write_exr` can write on this machine: asked before a run, not at its first frame."""
    return _openexr() is not None or _cv2_exr(np.zeros((1, 1, 3), np.float32)) is not None


# --- helpers -------------------------------------------------------------------------------------


def _openexr() -> ModuleType | None:
    """The OpenEXR package if it is installed with the >= 3.3 API (`OpenEXR.File`), else None."""
    try:
        import OpenEXR
    except ImportError:
        return None
    return OpenEXR if hasattr(OpenEXR, "File") else None


def _check_mode(mode: str) -> None:
    if mode not in BACKGROUND_MODES:
        raise ConfigError(f"unknown background mode {mode!r}: use one of {', '.join(BACKGROUND_MODES)}")


def _check_labels(labels: np.ndarray | None, lineart: LineArt) -> np.ndarray:
    """Region labels as compact int32 (0 = no region, 1..n), or the connected areas between the lines."""
    if labels is None:
        # no gap closing here: regions.segment_regions does that better when it is available
        _, labels = cv2.connectedComponents((~lineart.line_mask).astype(np.uint8), connectivity=4)
        return labels.astype(np.int32)
    labels = np.asarray(labels)
    if labels.shape != lineart.size:
        raise InputError(f"region labels are {labels.shape[1]}x{labels.shape[0]} but the frame is "
                         f"{lineart.size[1]}x{lineart.size[0]}")
    inside = labels > 0
    compact = np.zeros(labels.shape, np.int32)
    compact[inside] = np.unique(labels[inside], return_inverse=True)[1].reshape(-1) + 1
    return compact


def _full_color(color: np.ndarray, lineart: LineArt) -> np.ndarray:
    # the resize compose.compose does (bicubic, then clipped), so the layers stack back to its frame
    color = np.asarray(color, np.float32)
    height, width = lineart.size
    if color.shape[:2] != (height, width):
        color = cv2.resize(color, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(color, 0.0, 1.0)


def _flat_colors(color8: np.ndarray, matte: FrameMatte) -> np.ndarray:
    """HxWx3 uint8: each region's per-channel median colour (over its interior, as flatten), under the lines too."""
    if not (matte.labels > 0).any():
        return np.broadcast_to(np.median(color8.reshape(-1, 3), axis=0).round().astype(np.uint8),
                               color8.shape).copy()
    medians, _ = region_medians(color8, interiors(matte.labels))  # label 0 (the lines) is never looked up in `nearest`
    return medians[matte.nearest]


def _shading(color8: np.ndarray, flat8: np.ndarray) -> np.ndarray:
    """The least opaque RGBA that a normal blend over `flat8` turns into `color8` exactly (8-bit)."""
    # float32 is exact enough here: the quotients are of integers below 2**16, and a quotient that is
    # not a whole (or half) number is at least 1/510 away from one
    color = color8.astype(np.float32)
    flat = flat8.astype(np.float32)
    diff = color - flat
    # per channel, the alpha needed to reach the colour: towards white above the flat, towards black below
    room = np.where(diff > 0, 255.0 - flat, flat)
    need = np.ceil(255.0 * np.abs(diff) / np.maximum(room, 1.0))
    alpha = need.max(axis=2, keepdims=True)
    shade = np.floor((255.0 * color - (255.0 - alpha) * flat) / np.maximum(alpha, 1.0) + 0.5)
    shade = np.where(alpha > 0, np.clip(shade, 0.0, 255.0), 0.0)
    # the shade is within half a step of the exact one, so the blend lands within half a level: exact
    return np.dstack([shade, alpha]).astype(np.uint8)


def _blend_normal8(base: np.ndarray, top: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Normal blend of 8-bit integer layers, rounded to 8 bits (no ties: the sum over 255 is never x.5)."""
    return (alpha * top + (255 - alpha) * base + 127) // 255


def _line_alpha_min(full_scale: int) -> int:
    """The smallest quantized alpha that counts as a line pixel (coverage >= LINE_THRESHOLD)."""
    return round(LINE_THRESHOLD * full_scale)


def _line_layer(lineart: LineArt) -> tuple[np.ndarray, np.ndarray, int]:
    """(colour HxWx3, alpha HxW) of the line layer as integers at the input's depth, and that depth's max.

    Colour-to-alpha against white: alpha = coverage, colour = what over white gives the line art back.
    Line pixels are checked to give the input's 8-bit colour exactly; the rare pixel that rounding keeps
    from it is solved for that colour directly (its alpha raised to where it is reachable, if need be).
    """
    full_scale = 65535 if lineart.bit_depth == 16 else 255
    lines = lineart.line_mask
    alpha = np.round(np.clip(lineart.coverage.astype(np.float64), 0.0, 1.0) * full_scale)
    threshold = _line_alpha_min(full_scale)
    alpha[lines] = np.maximum(alpha[lines], threshold)  # recompose finds the lines by alpha alone
    alpha[~lines] = np.minimum(alpha[~lines], threshold - 1)
    color = _unmultiply_white(lineart.rgb.astype(np.float64), alpha, full_scale)
    target = lineart.rgb8()
    wrong = lines & np.any(np.round(_over_white(color, alpha, full_scale) * 255.0) != target, axis=2)
    if wrong.any():
        reach = (255 - target[wrong].min(axis=1).astype(np.float64)) * (full_scale // 255)
        alpha[wrong] = np.maximum(alpha[wrong], reach)
        color[wrong] = _unmultiply_white(target[wrong] / 255.0, alpha[wrong], full_scale)
    return color, alpha, full_scale


def _unmultiply_white(rgb: np.ndarray, alpha: np.ndarray, full_scale: int) -> np.ndarray:
    """The colour C with alpha*C + (1 - alpha)*white = rgb, quantized; 0 where alpha is 0."""
    a = (alpha / full_scale)[..., None]
    color = np.divide(a - (1.0 - rgb), a, out=np.zeros(rgb.shape), where=a > 0)
    return np.round(np.clip(color, 0.0, 1.0) * full_scale)


def _over_white(color: np.ndarray, alpha: np.ndarray, full_scale: int) -> np.ndarray:
    """Quantized line colour and alpha composited over white, float in [0, 1]."""
    alpha = alpha[..., None].astype(np.float64)
    return (alpha * color + full_scale * (full_scale - alpha)) / (full_scale * full_scale)


def _split_line(line: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    full_scale = 65535 if line.dtype == np.uint16 else 255
    return line[..., :3].astype(np.float64), line[..., 3].astype(np.float64), full_scale


def _to8(values: np.ndarray, full_scale: int) -> np.ndarray:
    return np.round(np.asarray(values, np.float64) * (255.0 / full_scale)).astype(np.uint8)


def _input_alpha8(lineart: LineArt) -> np.ndarray:
    if lineart.alpha is None:
        return np.full(lineart.size, 255, np.uint8)
    return np.round(np.clip(lineart.alpha, 0.0, 1.0) * 255.0).astype(np.uint8)


def _background_alpha(matte: FrameMatte, mode: str) -> np.ndarray:
    if mode == "white":
        return np.full(matte.lineart.size, 255, np.uint8)
    if mode == "keep":
        return _input_alpha8(matte.lineart)
    return np.where(matte.background, 0, 255).astype(np.uint8)


def _background_mask(lineart: LineArt, labels: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    inside = labels > 0
    if not inside.any():
        return np.zeros(lineart.size, bool)
    ids = labels[inside]
    count = np.maximum(np.bincount(ids, minlength=labels.max() + 1), 1)
    paper = np.bincount(ids, weights=lineart.coverage[inside], minlength=count.size) / count < PAPER_COVERAGE
    if lineart.alpha is not None:
        paper &= np.bincount(ids, weights=lineart.alpha[inside], minlength=count.size) / count < 0.5
    border = np.zeros(count.size, bool)
    border[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    border[0] = False
    return (border & paper)[nearest] & ~lineart.line_mask


def _cv2_exr(image: np.ndarray) -> bytes | None:
    """EXR bytes from cv2 when this build has OpenEXR (most pip wheels do not), else None."""
    # cv2 only enables its EXR codec when asked to, and reads the switch when the codec is first used
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    if not cv2.haveImageWriter(".exr"):
        return None
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    try:
        ok, buffer = cv2.imencode(".exr", cv2.cvtColor(image, code))
    except cv2.error:
        return None
    return buffer.tobytes() if ok else None
