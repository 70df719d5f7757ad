"""Closed regions of a line drawing, and the flat colour work done on them.

A frame's line art arrives as `coverage` (HxW float32, 1 = line, 0 = paper). Regions are the areas the
lines enclose; hand-drawn lines often do not quite meet, so `segment_regions` closes small gaps with a
trapped-ball fill (after Zhang et al.'s manga colorization): a ball too big to pass through a gap floods
each region, then the thin leftovers the ball could not reach are grown back from the fills.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage.measure import label as label_components
from skimage.segmentation import watershed

from .errors import InputError

STROKE_ALPHA = 128  # RGBA hint pixels at least this opaque are strokes (strokes are 255, paper 0)
# A slip of the pen: the tip of a stroke poking past a line, less than this share of the stroke, not its biggest
# part, and nowhere further from the line than SLIP_REACH of the frame's short side (4 px at 256, 17 at 1080)
SLIP_SHARE = 0.1
SLIP_REACH = 1 / 64
LOCK_SHARE = 0.75  # a region is locked to its strokes' colour when that colour has this share of its stroke pixels


class PaletteError(InputError, ValueError):
    """A palette / model sheet file that cannot be read as colours."""


def _disk(radius: int) -> np.ndarray:
    """Digital ball of the given radius as a uint8 structuring element."""
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


def _stroke_mask(hint_rgba: np.ndarray) -> np.ndarray:
    return hint_rgba[..., 3] >= STROKE_ALPHA


def _rgb_code(rgb: np.ndarray) -> np.ndarray:
    """Pack HxWx3 uint8 colours into one int32 per pixel (0xRRGGBB) so colours compare as integers."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _stroke_components(code: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Strokes = 8-connected runs of one colour -> HxW int32 ids (0 off strokes)."""
    keyed = np.where(mask, code + 1, 0)
    return label_components(keyed, background=0, connectivity=2).astype(np.int32, copy=False)


def _stroke_parts(strokes: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stroke's pixels in one region are one of its parts. `strokes`, `regions`: the stroke id and the region of
    the same pixels (1-D) -> (stroke of each part, region of each part, the part of each pixel, pixels per part)."""
    keys = strokes.astype(np.int64) << 32 | regions.astype(np.int64)
    parts, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return parts >> 32, parts & 0xFFFFFFFF, inverse.ravel(), counts


def _unpack_code(code: np.ndarray) -> np.ndarray:
    code = np.asarray(code, np.int64)
    return np.stack([(code >> 16) & 255, (code >> 8) & 255, code & 255], axis=-1).astype(np.uint8)


def _check_coverage(coverage: np.ndarray, what: str = "line coverage") -> np.ndarray:
    coverage = np.asarray(coverage)
    if coverage.ndim != 2:
        raise InputError(f"{what} must be a HxW array, got shape {coverage.shape}")
    return coverage.astype(np.float32, copy=False)


def _ball_seeds(free: np.ndarray, radius: int, first_label: int, min_area: int) -> tuple[np.ndarray, int]:
    """Trapped-ball pass: fill each area a ball of `radius` can roam in `free`; returns (labels, next label).

    Ball centres are the erosion of `free`; each connected set of centres, dilated back by the ball,
    is one fill. Two areas joined only through a gap narrower than the ball get separate centre sets,
    so the gap does not merge them. Fills smaller than `min_area` are dropped (left for growing).
    """
    ball = _disk(radius)
    centres = cv2.erode(free.view(np.uint8), ball)
    count, comp = cv2.connectedComponents(centres, connectivity=8, ltype=cv2.CV_32S)
    out = np.zeros(free.shape, np.int32)
    if count <= 1:
        return out, first_label
    # float32 holds labels exactly up to 2**24; cv2's dilation does not take int32 images
    grown = cv2.dilate(comp.astype(np.float32), ball).astype(np.int32)
    grown[~free] = 0
    areas = np.bincount(grown.ravel(), minlength=count)
    keep = areas >= min_area
    keep[0] = False
    remap = np.zeros(count, np.int32)
    remap[keep] = np.arange(first_label, first_label + int(keep.sum()), dtype=np.int32)
    out = remap[grown]
    return out, first_label + int(keep.sum())


def _nearest_fill(labels: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Give each `holes` pixel the label of the nearest labelled (non-zero, non-hole) pixel, straight-line."""
    source = (labels == 0) | holes
    if source.all():
        return labels
    idx = ndimage.distance_transform_edt(source, return_distances=False, return_indices=True)
    out = labels.copy()
    out[holes] = labels[idx[0][holes], idx[1][holes]]
    return out


def segment_regions(coverage: np.ndarray, line_threshold: float = 0.5, gap_close: int = 3,
                    *, min_area: int = 12) -> np.ndarray:
    """HxW int32 region labels: 0 on line pixels (coverage >= line_threshold), 1..N on closed regions.

    Gaps in the lines up to about 2*gap_close px wide do not join regions: a trapped ball of radius
    `gap_close` fills first, smaller balls (down to radius 1) then fill thin regions it could not enter
    (if their fill covers at least `min_area` px), and the leftover slivers (corners, gap mouths) are
    grown into the neighbouring fill through paper pixels. Paper areas fully enclosed by lines that no
    fill reaches become regions of their own; specks of fewer than min_area // 2 px (holes in a line,
    slivers at sharp crossings) join the nearest region. gap_close=0: plain connected components of the
    paper. Region ids follow raster order of each region's first pixel.
    """
    coverage = _check_coverage(coverage)
    free = coverage < line_threshold
    labels = np.zeros(coverage.shape, np.int32)
    if not free.any():
        return labels
    next_label = 1
    if gap_close > 0:
        for radius in range(gap_close, 0, -1):
            # smaller balls only work on what the bigger ones left, so thin regions get their own fills
            leftover = free & (labels == 0)
            if not leftover.any():
                break
            fill, next_label = _ball_seeds(leftover, radius, next_label, min_area if radius < gap_close else 1)
            labels = np.where(fill > 0, fill, labels)
        if next_label > 1:
            # geodesic growth (flat-image watershed) through paper only: slivers join the fill they touch
            labels = watershed(np.zeros(labels.shape, np.uint8), markers=labels, mask=free, connectivity=1)
            labels = labels.astype(np.int32, copy=False)
    # paper no fill reached: fully enclosed by lines (or everything, when gap_close=0)
    rest = free & (labels == 0)
    if rest.any():
        count, comp = cv2.connectedComponents(rest.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        areas = np.bincount(comp.ravel(), minlength=count)
        keep = areas >= max(1, min_area // 2)
        keep[0] = False
        if not (labels > 0).any() and not keep[1:].any():
            keep[1:] = areas[1:] > 0  # nothing else to merge into: keep even specks
        remap = np.zeros(count, np.int32)
        remap[keep] = np.arange(next_label, next_label + int(keep.sum()), dtype=np.int32)
        labels = np.where(rest, remap[comp], labels)
        specks = rest & ~keep[comp]
        if specks.any():
            labels = _nearest_fill(labels, specks)
    # consecutive ids 1..N in the order regions first appear in raster order
    ids, first, inverse = np.unique(labels.ravel(), return_index=True, return_inverse=True)
    order = np.argsort(first[ids > 0] if ids[0] == 0 else first, kind="stable")
    remap = np.zeros(len(ids), np.int32)
    offset = 1 if ids[0] == 0 else 0
    remap[offset + order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return remap[inverse].reshape(labels.shape)


def assign_lines(labels: np.ndarray) -> np.ndarray:
    """`labels` with each line pixel (0) given the id of the nearest region (Euclidean)."""
    labels = np.asarray(labels)
    lines = labels == 0
    if not lines.any() or lines.all():
        return labels.copy()
    return _nearest_fill(labels, lines)


def region_medians(color: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-region, per-channel median of `color` -> (medians (N+1)x3 uint8, pixel counts (N+1,)).

    Histogram based (256 bins per region and channel) so it stays linear in the pixel count.
    Even counts take the mean of the two middle values, rounded half up.
    """
    flat = labels.ravel().astype(np.int64)
    n = int(flat.max()) + 1 if flat.size else 1
    counts = np.bincount(flat, minlength=n)
    medians = np.zeros((n, 3), np.uint8)
    low_rank = (counts - 1) // 2
    high_rank = counts // 2
    for c in range(3):
        hist = np.bincount(flat * 256 + color[..., c].ravel(), minlength=n * 256).reshape(n, 256)
        cum = np.cumsum(hist, axis=1)
        low = (cum <= low_rank[:, None]).sum(axis=1)
        high = (cum <= high_rank[:, None]).sum(axis=1)
        medians[:, c] = np.minimum((low + high + 1) // 2, 255)
    return medians, counts


def interiors(labels: np.ndarray) -> np.ndarray:
    """`labels` without each region's rim: the pixels beside a line pixel (4-neighbours) set to 0.

    What a region's colour is judged on: along its lines the network's colour runs dark into the ink (and the
    line's anti-aliasing covers it), and how much rim a region has changes from frame to frame as it moves and
    turns, so a median over the rim drifts with it. A region with no pixel off its rim (a sliver) keeps them all.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return labels.copy()
    beside_line = cv2.dilate((labels == 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    inner = np.where(beside_line > 0, 0, labels)
    has_inner = np.bincount(inner.ravel(), minlength=int(labels.max()) + 1) > 0
    has_inner[0] = True  # lines stay lines
    return np.where(has_inner[labels], inner, labels)


def _check_pair(color: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    color = np.asarray(color)
    labels = np.asarray(labels)
    if color.ndim != 3 or color.shape[2] < 3 or color.shape[:2] != labels.shape:
        raise InputError(f"colour image {color.shape} does not match labels {labels.shape}")
    if color.dtype != np.uint8:
        raise InputError(f"colour image must be uint8, got {color.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError("labels must be >= 0")
    return color[..., :3], labels


def flatten(color: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """HxWx3 uint8: each region (label > 0) painted with the per-channel median of `color` over its interior.

    Line pixels (label 0) keep their colour. A median, not a mean, so a few stray pixels (bleed across a
    line, a hint dot) do not tint the whole region; over the interior (see `interiors`), not the dark rim.
    """
    color, labels = _check_pair(color, labels)
    medians, _ = region_medians(color, interiors(labels))
    out = medians[labels]
    lines = labels == 0
    out[lines] = color[lines]
    return out


def lock_to_strokes(color: np.ndarray, labels: np.ndarray, hint_rgba: np.ndarray) -> np.ndarray:
    """HxWx3 uint8: every region hinted in one colour shifted so that its median is exactly that colour.

    Every pixel of the region, and the line pixels nearest to it, move by the same amount, so the network's
    shading inside it is kept; the median is the one flatten paints (over the region's interior, see
    `interiors`), so flattening afterwards gives exactly the strokes' colour. Regions without strokes keep their
    colour, and so do regions holding strokes of several colours, none of which has LOCK_SHARE of their stroke
    pixels: the network blends those as the artist drew.
    """
    color, labels = _check_pair(color, labels)
    stroke_color, stroked = region_stroke_colors(labels, hint_rgba, min_share=LOCK_SHARE)
    if not stroked.any():
        return color.copy()
    target = stroke_color.astype(np.int16)
    inner = interiors(labels)
    medians, _ = region_medians(color, inner)
    shift = np.where(stroked[:, None], target - medians.astype(np.int16), 0)
    nearest = assign_lines(labels)
    # Where the shift clips (a bright colour on a region split between light and shadow), an even count's median,
    # the mean of its two middle values, falls short of the target: shift on by what is missing. The median grows
    # with the shift, never faster, so this closes in without overshooting, halving the gap or better each time.
    for _ in range(9):
        out = np.clip(color.astype(np.int16) + shift[nearest], 0, 255).astype(np.uint8)
        missing = np.where(stroked[:, None], target - region_medians(out, inner)[0].astype(np.int16), 0)
        if not missing.any():
            break
        shift += missing
    return out


def _parse_color(name: str, value: object, path: Path) -> tuple[int, int, int]:
    if isinstance(value, str):
        text = value.strip().lstrip("#")
        if len(text) == 3:
            text = "".join(ch * 2 for ch in text)
        if len(text) == 6:
            try:
                rgb = int(text, 16)
            except ValueError:
                pass
            else:
                return (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
        raise PaletteError(f"palette {path}: colour {name!r} is {value!r}, not a hex colour like '#f2d0b8'")
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        return int(value[0]), int(value[1]), int(value[2])
    raise PaletteError(f"palette {path}: colour {name!r} is {value!r}, not '#rrggbb' or [r, g, b] in 0..255")


def load_palette(path: Path) -> list[tuple[int, int, int]]:
    """Colours of a palette / model sheet JSON file, in file order.

    Format: {"name": "...", "colors": {"skin": "#f2d0b8", "hair": [40, 30, 90], ...}} (hex strings or
    RGB lists; a plain list of colours under "colors" is accepted too). A file that cannot be read or does
    not follow the format raises PaletteError (a ValueError) saying what is wrong.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PaletteError(f"palette not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PaletteError(f"palette {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PaletteError(f"palette {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or "colors" not in data:
        raise PaletteError(f'palette {path} must be a JSON object with a "colors" entry')
    colors = data["colors"]
    if isinstance(colors, dict):
        items = list(colors.items())
    elif isinstance(colors, list):
        items = [(f"#{i}", v) for i, v in enumerate(colors)]
    else:
        raise PaletteError(f'palette {path}: "colors" must map names to colours')
    if not items:
        raise PaletteError(f"palette {path} has no colours")
    return [_parse_color(str(name), value, path) for name, value in items]


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """Nx3 uint8 sRGB -> Nx3 float32 CIELAB (L in 0..100)."""
    img = (np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0)
    return cv2.cvtColor(img, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def snap_to_palette(color: np.ndarray, labels: np.ndarray,
                    palette: Sequence[Sequence[int]] | np.ndarray | Path | str) -> np.ndarray:
    """HxWx3 uint8: each region painted with the palette colour nearest (CIELAB) to its median colour (the one
    flatten paints).

    Exactly one colour per region; line pixels (label 0) keep their colour. `palette` is a list of RGB
    triples or the path of a palette JSON file (see load_palette).
    """
    color, labels = _check_pair(color, labels)
    if isinstance(palette, (str, Path)):
        palette = load_palette(Path(palette))
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) == 0:
        raise InputError(f"palette must be a non-empty list of RGB triples, got shape {pal.shape}")
    pal = np.clip(pal, 0, 255).astype(np.uint8)
    medians, _ = region_medians(color, interiors(labels))
    dist = ((_to_lab(medians)[:, None, :] - _to_lab(pal)[None, :, :]) ** 2).sum(axis=2)
    out = pal[np.argmin(dist, axis=1)][labels]
    lines = labels == 0
    out[lines] = color[lines]
    return out


def stroked_regions(labels: np.ndarray, hint_rgba: np.ndarray) -> np.ndarray:
    """Per region: does it hold any stroke pixel? (N+1,) bool; label 0 (lines) never does.

    The cheap half of region_stroke_colors, for callers that need no colour vote.
    """
    labels = np.asarray(labels)
    stroked = np.zeros(int(labels.max()) + 1 if labels.size else 1, bool)
    stroked[labels[_stroke_mask(np.asarray(hint_rgba)) & (labels > 0)]] = True
    return stroked


def region_stroke_colors(labels: np.ndarray, hint_rgba: np.ndarray,
                         min_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per region: (colour (N+1)x3 uint8, has strokes (N+1,) bool) from the RGBA hint strokes in it.

    A region's colour is its strokes' colour (the colour with the most pixels there when several; ties go
    to the smaller colour value, so the result is deterministic). With `min_share`, a region whose most
    common colour has less than that share of its stroke pixels gets none. Label 0 (lines) never has one.
    """
    labels = np.asarray(labels)
    hint_rgba = np.asarray(hint_rgba)
    if hint_rgba.ndim != 3 or hint_rgba.shape[2] != 4 or hint_rgba.shape[:2] != labels.shape:
        raise InputError(f"hint strokes {hint_rgba.shape} do not match labels {labels.shape} (need HxWx4)")
    strokes = _stroke_mask(hint_rgba) & (labels > 0)
    n = int(labels.max()) + 1 if labels.size else 1
    region_color = np.zeros((n, 3), np.uint8)
    has_color = np.zeros(n, bool)
    if strokes.any():
        lab = labels[strokes].astype(np.int64)
        code = _rgb_code(hint_rgba[..., :3][strokes]).astype(np.int64)
        pairs, votes = np.unique(lab << 24 | code, return_counts=True)
        pair_label = pairs >> 24
        # per label, the pair with most votes: sort by (label, -votes, code) and keep each label's first
        order = np.lexsort((pairs & 0xFFFFFF, -votes, pair_label))
        first = np.ones(len(order), bool)
        first[1:] = pair_label[order][1:] != pair_label[order][:-1]
        winners = order[first]
        if min_share > 0:
            totals = np.bincount(pair_label, weights=votes)
            winners = winners[votes[winners] >= min_share * totals[pair_label[winners]]]
        region_color[pair_label[winners]] = _unpack_code(pairs[winners] & 0xFFFFFF)
        has_color[pair_label[winners]] = True
    return region_color, has_color


def drop_slips(labels: np.ndarray, hint_rgba: np.ndarray, reach: float | None = None) -> np.ndarray:
    """RGBA strokes without the pixels that slipped over a line into a region the stroke is not meant for.

    A stroke (8-connected pixels of one colour) that runs a few pixels past a line would otherwise give the region
    beyond it its colour (hint fill, hint lock, the spread hint). Its pixels in a region are dropped when they are
    less than SLIP_SHARE of the stroke's pixels (those in regions), not its biggest part, and all within `reach` px
    of a line (default SLIP_REACH of the short side, so the same slip counts alike at the working size and at the
    frame's). A stroke drawn across a line on purpose (a fair part on each side, or reaching well into the
    region) counts on both sides; one drawn across many small regions keeps at least its biggest part.
    """
    labels = np.asarray(labels)
    hint_rgba = np.asarray(hint_rgba)
    reach = SLIP_REACH * min(labels.shape) if reach is None else reach
    strokes = _stroke_mask(hint_rgba)
    inside = strokes & (labels > 0)
    if not inside.any():
        return hint_rgba
    comp = _stroke_components(_rgb_code(hint_rgba[..., :3]), strokes)[inside]
    stroke_of, _, inverse, counts = _stroke_parts(comp, labels[inside])
    biggest = np.zeros(int(stroke_of.max()) + 1, np.int64)
    np.maximum.at(biggest, stroke_of, counts)
    depth = np.zeros(len(counts), np.float32)  # how far each stroke's part in a region gets from the lines
    distance = cv2.distanceTransform((labels > 0).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.maximum.at(depth, inverse, distance[inside])
    slipped = ((counts / np.bincount(comp)[stroke_of] < SLIP_SHARE) & (counts < biggest[stroke_of])
               & (depth <= reach))[inverse]
    if not slipped.any():
        return hint_rgba
    out = hint_rgba.copy()
    ys, xs = np.nonzero(inside)
    out[ys[slipped], xs[slipped]] = 0
    return out


def region_fill(labels: np.ndarray, hint_rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat engine: (HxWx3 uint8 colour, HxW bool filled) from region labels and RGBA hint strokes.

    Every region (label > 0) holding stroke pixels is filled with its strokes' colour (region_stroke_colors);
    regions without strokes and line pixels stay unfilled (black, False).
    """
    region_color, has_color = region_stroke_colors(labels, hint_rgba)
    labels = np.asarray(labels)
    filled = has_color[labels]
    out = region_color[labels]
    out[~filled] = 0
    return out, filled
