"""Carry an artist's colour strokes from a shot's keyframes to every other frame, following the motion.

Flow between line drawings: plain optical flow sees almost nothing in them (thin lines on flat paper), so
it is computed on a clipped distance transform of the lines, which gives every paper pixel a "how far to
the nearest line" texture that moves with the drawing. Strokes are forward-splatted along that flow one
frame at a time, dropping pixels whose forward and backward flows disagree (occlusion) or that land on a
line, and snapped so a stroke stays inside one region of the new frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import cv2
import numpy as np
from scipy.ndimage import find_objects

from .errors import InputError
from .regions import (
    STROKE_ALPHA,
    _check_coverage,
    _rgb_code,
    _stroke_components,
    _stroke_mask,
    _stroke_parts,
    assign_lines,
    region_stroke_colors,
    segment_regions,
    stroked_regions,
)
from .sequence import LINE_THRESHOLD

_MIN_FEATURE_CLIP = 16.0  # px: distance-transform clip, raised for big frames (see _line_feature)

# 8 neighbours, nearest first: where a splat leaves a one-pixel hole, it takes a neighbour's stroke
_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
_COUNT_PAIRS_MAX = 1 << 22  # region pairs counted in a dense table up to this many (32 MiB of int64)


def _check_hint(hint_rgba: np.ndarray, shape: tuple[int, ...], what: str = "hint strokes") -> np.ndarray:
    hint_rgba = np.asarray(hint_rgba)
    if hint_rgba.ndim != 3 or hint_rgba.shape[2] != 4 or hint_rgba.shape[:2] != tuple(shape):
        raise InputError(f"{what} are {hint_rgba.shape}, need {shape[0]}x{shape[1]}x4 RGBA")
    if hint_rgba.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 RGBA, got {hint_rgba.dtype}")
    return hint_rgba


def _line_feature(coverage: np.ndarray) -> np.ndarray:
    """uint8 image for flow: distance to the nearest line, clipped and scaled, with sub-pixel line edges.

    Flat paper gets a gradient that moves with the lines; the clip (1/16 of the short side, at least
    16 px) keeps far-away lines from dominating and leaves 256 levels for the range that matters.
    """
    lines = coverage >= LINE_THRESHOLD
    clip = max(_MIN_FEATURE_CLIP, min(coverage.shape) / 16.0)
    dist = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, 5)
    np.minimum(dist, clip + 1, out=dist)  # past the clip is white anyway; a frame with no lines is all 'infinitely' far
    # antialiased coverage shifts the edge by a fraction of a pixel, so the valley is not quantised to pixels
    soft = np.where(lines, 1.0 - coverage, dist + 0.5 - coverage)
    return np.clip(soft * (255.0 / clip), 0, 255).astype(np.uint8)


def _dis_flow(feature_a: np.ndarray, feature_b: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(feature_a, feature_b, None)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`values` (HxWxC) interpolated from the pixels with weight 1 into those with weight 0 (push-pull)."""
    nums = [values * weight[..., None]]
    dens = [weight]
    while min(dens[-1].shape) > 8:
        nums.append(cv2.pyrDown(nums[-1]))
        dens.append(cv2.pyrDown(dens[-1]))
    est = nums[-1] / np.maximum(dens[-1], 1e-6)[..., None]
    for num, den in zip(reversed(nums[:-1]), reversed(dens[:-1]), strict=True):
        up = cv2.pyrUp(est, dstsize=(den.shape[1], den.shape[0]))
        alpha = np.clip(den * 2, 0, 1)[..., None]  # trust a level's own average once half its weight is there
        est = alpha * (num / np.maximum(den, 1e-6)[..., None]) + (1 - alpha) * up
    return est


def _round_trip_ok(flow: np.ndarray, other: np.ndarray, tolerance: float) -> np.ndarray:
    """HxW bool: following `flow` and then `other` comes back within `tolerance` px."""
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    back = cv2.remap(other, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    return np.hypot(flow[..., 0] + back[..., 0], flow[..., 1] + back[..., 1]) <= tolerance


def _flow_pair(feature_a: np.ndarray, feature_b: np.ndarray,
               tolerance: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """DIS flows a->b and b->a, with the guesswork on bare paper replaced.

    Farther than the clip distance from every line the feature is flat: DIS has nothing to match there
    and the two directions drift apart, so strokes on open paper (backgrounds, big fills) would fail the
    forward-backward check with no occlusion at all. Those pixels, where they are also inconsistent, get
    the flow interpolated from the consistent pixels around them. Pixels near lines keep their DIS flow,
    so a real occlusion (which happens at lines) still fails the check.
    """
    f_ab = _dis_flow(feature_a, feature_b)
    f_ba = _dis_flow(feature_b, feature_a)
    ok_a = _round_trip_ok(f_ab, f_ba, tolerance)
    ok_b = _round_trip_ok(f_ba, f_ab, tolerance)
    for flow, ok, feature in ((f_ab, ok_a, feature_a), (f_ba, ok_b, feature_b)):
        guess = ~ok & (feature >= 255)
        if guess.any() and ok.any():
            flow[guess] = _push_pull(flow, ok.astype(np.float32))[guess]
    return f_ab, f_ba


def _check_drawings(coverage_a: np.ndarray, coverage_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coverage_a = _check_coverage(coverage_a, "coverage_a")
    coverage_b = _check_coverage(coverage_b, "coverage_b")
    if coverage_a.shape != coverage_b.shape:
        raise InputError(f"frames differ in size: {coverage_a.shape} and {coverage_b.shape}")
    return coverage_a, coverage_b


def line_flow(coverage_a: np.ndarray, coverage_b: np.ndarray) -> np.ndarray:
    """Dense flow from drawing a to drawing b: HxWx2 float32, flow[y, x] = (dx, dy).

    Pixel (x, y) of a moves to (x + dx, y + dy) in b. DIS optical flow (OpenCV, medium preset) on the
    clipped distance transform of each frame's lines.
    """
    coverage_a, coverage_b = _check_drawings(coverage_a, coverage_b)
    return _dis_flow(_line_feature(coverage_a), _line_feature(coverage_b))


def line_flow_pair(coverage_a: np.ndarray, coverage_b: np.ndarray,
                   short_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flows a -> b and b -> a between two drawings (as line_flow), with bare paper made consistent (_flow_pair).

    With `short_side`, frames larger than that are matched on their features shrunk to it and the flows scaled
    back up: a fraction of the cost, and fine enough to follow whole regions (not single stroke pixels).
    """
    coverage_a, coverage_b = _check_drawings(coverage_a, coverage_b)
    feature_a, feature_b = _line_feature(coverage_a), _line_feature(coverage_b)
    height, width = coverage_a.shape
    scale = short_side / min(height, width) if short_side else 1.0
    if scale >= 1.0:
        return _flow_pair(feature_a, feature_b)
    small = (max(1, round(width * scale)), max(1, round(height * scale)))  # cv2 wants (width, height)
    flows = _flow_pair(cv2.resize(feature_a, small, interpolation=cv2.INTER_AREA),
                       cv2.resize(feature_b, small, interpolation=cv2.INTER_AREA))
    return tuple(cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / scale)
                 for f in flows)  # type: ignore[return-value]


def _sample_bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """field (HxWxC) at float positions, bilinear, clamped at the border -> NxC."""
    h, w = field.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.intp), w - 2) if w > 1 else np.zeros(len(x), np.intp)
    y0 = np.minimum(np.floor(y).astype(np.intp), h - 2) if h > 1 else np.zeros(len(y), np.intp)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    ax = (x - x0)[:, None]
    ay = (y - y0)[:, None]
    top = field[y0, x0] * (1 - ax) + field[y0, x1] * ax
    bottom = field[y1, x0] * (1 - ax) + field[y1, x1] * ax
    return top * (1 - ay) + bottom * ay


def _fill_pinholes(code: np.ndarray, comp: np.ndarray, allowed: np.ndarray) -> None:
    """Nearest rounding leaves 1 px holes where the motion stretches; give them a neighbour's stroke.

    Only holes the 3x3 closing of the splat fills, so the strokes never grow outwards. In place.
    """
    painted = comp > 0
    closed = cv2.morphologyEx(painted.view(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    holes = closed & ~painted & allowed
    if not holes.any():
        return
    h, w = comp.shape
    ys, xs = np.nonzero(holes)
    pending = np.ones(len(ys), bool)
    for dy, dx in _NEIGHBOURS:
        ny = np.clip(ys + dy, 0, h - 1)
        nx = np.clip(xs + dx, 0, w - 1)
        take = pending & painted[ny, nx]
        code[ys[take], xs[take]] = code[ny[take], nx[take]]
        comp[ys[take], xs[take]] = comp[ny[take], nx[take]]
        pending &= ~take


def _snap_to_regions(comp: np.ndarray, labels: np.ndarray) -> None:
    """Keep each stroke only in the region holding most of its pixels (ties: lower region id). In place."""
    on = comp > 0
    if not on.any():
        return
    pair_comp, pair_region, inverse, votes = _stroke_parts(comp[on], labels[on])
    order = np.lexsort((pair_region, -votes, pair_comp))
    first = np.ones(len(order), bool)
    first[1:] = pair_comp[order][1:] != pair_comp[order][:-1]
    winner = np.zeros(int(comp.max()) + 1, np.int64)
    winner[pair_comp[order][first]] = pair_region[order][first]
    keep = (winner[pair_comp] == pair_region)[inverse]
    ys, xs = np.nonzero(on)
    comp[ys[~keep], xs[~keep]] = 0


def _count_pairs(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(keys, return_counts=True) for non-negative keys below `size`, by counting when that is cheap.

    Region-pair keys (a * n_b + b) span a small range; a bincount is linear where sorting is not.
    """
    if size > _COUNT_PAIRS_MAX:
        return np.unique(keys, return_counts=True)
    counts = np.bincount(keys, minlength=size)
    present = np.flatnonzero(counts)
    return present, counts[present]


def _back_projection(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel lands by `flow` (from its frame to the other), rounded -> HxW flat index of that pixel of
    the other frame (clipped to the frame) and HxW bool: whether it lies inside the frame. With the backward
    flow: where each target pixel comes from; with the forward flow (track_regions_forward): where it goes."""
    height, width = flow.shape[:2]
    sx = np.rint(np.arange(width) + flow[..., 0])  # float64, as the stroke pixels' own positions
    sy = np.rint(np.arange(height)[:, None] + flow[..., 1])
    inside = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
    flat = np.clip(sy, 0, height - 1).astype(np.intp) * width + np.clip(sx, 0, width - 1).astype(np.intp)
    return flat, inside


def _regions_correspond(labels_source: np.ndarray, labels_target: np.ndarray, flow_fwd: np.ndarray,
                        flow_bwd: np.ndarray, ys: np.ndarray, xs: np.ndarray, ry: np.ndarray, rx: np.ndarray,
                        fb_tolerance: float, min_share: float) -> np.ndarray:
    """Per stroke pixel: does the target region it lands in come (by the backward flow) from its source region?

    Catches occlusions the pixelwise forward-backward check misses: on line drawings an occluder's flat
    interior can look like the occluded shape's, so both flows may agree on a wrong match. Each target
    region is followed back pixel by pixel (round trips only); a stroke pixel is kept if at least
    `min_share` of its landing region comes from the region the pixel left. A moved or split region comes
    wholly from it; an occluder or a newly opened gap comes from elsewhere. (A small region merged into a
    big one fails too: its strokes are dropped rather than risk a wrong colour.)
    """
    src = labels_source[ys, xs].astype(np.int64)
    if (src == 0).any():
        # a keyframe stroke drawn over a line: count it for the nearest region
        src = assign_lines(labels_source)[ys, xs].astype(np.int64)
    dst = labels_target[ry, rx].astype(np.int64)
    n_target = int(labels_target.max()) + 1
    n_source = int(labels_source.max()) + 1
    # whole frames at once: elementwise work and flat gathers cost less than picking the receiving regions
    flat, trip = _back_projection(flow_bwd)
    there = flow_fwd.reshape(-1, 2)[flat]
    # where the two flows disagree the back-projection says nothing about where the region came from
    trip &= np.hypot(flow_bwd[..., 0] + there[..., 0], flow_bwd[..., 1] + there[..., 1]) <= fb_tolerance
    came_from = np.where(trip, labels_source.ravel()[flat], 0).astype(np.int64)
    t_lab = labels_target.astype(np.int64)
    pairs, counts = _count_pairs((t_lab * n_source + came_from).ravel(), n_target * n_source)
    shares = counts / np.bincount(t_lab.ravel(), minlength=n_target)[pairs // n_source]
    keys = dst * n_source + src
    at = np.minimum(np.searchsorted(pairs, keys), len(pairs) - 1)
    return (pairs[at] == keys) & (shares[at] >= min_share)


def _rgba(code: np.ndarray, mask: np.ndarray) -> np.ndarray:
    code = np.where(mask, code, 0)  # masking the code first is cheaper than clearing 4 channels by mask
    out = np.empty((*code.shape, 4), np.uint8)
    out[..., 0] = code >> 16
    out[..., 1] = code >> 8
    out[..., 2] = code
    out[..., 3] = mask
    out[..., 3] *= 255
    return out


def warp_strokes(hint_rgba: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray,
                 coverage_target: np.ndarray, labels_target: np.ndarray | None = None,
                 fb_tolerance: float = 1.5, labels_source: np.ndarray | None = None,
                 region_share: float = 0.25) -> np.ndarray:
    """Move RGBA strokes one frame along the motion -> RGBA strokes for the target frame.

    flow_fwd: source -> target flow, flow_bwd: target -> source. Each stroke pixel is forward-splatted to
    its rounded target position and dropped when the backward flow there does not bring it back within
    `fb_tolerance` px (it got occluded) or when it lands on a line of the target. Single-pixel holes the
    splat leaves inside a stroke are filled from a neighbour. With `labels_target` (segment_regions of the
    target), each stroke (8-connected pixels of one colour in the source) keeps only its pixels in the
    target region that receives most of them, so no warped stroke straddles a line. With `labels_source`
    too, a pixel is also dropped when less than `region_share` of its landing region comes back (by the
    backward flow) to the region it left: the occluder case where both flows agree on a wrong match.
    propagate_hints passes both.
    """
    coverage_target = _check_coverage(coverage_target, "coverage_target")
    shape = coverage_target.shape
    hint_rgba = _check_hint(hint_rgba, shape)
    for name, flow in (("flow_fwd", flow_fwd), ("flow_bwd", flow_bwd)):
        if flow.shape != (*shape, 2):
            raise InputError(f"{name} is {flow.shape}, need {shape[0]}x{shape[1]}x2")
    for name, lab in (("labels_target", labels_target), ("labels_source", labels_source)):
        if lab is not None and lab.shape != shape:
            raise InputError(f"{name} is {lab.shape}, need {shape}")
    h, w = shape
    mask = _stroke_mask(hint_rgba)
    code_src = _rgb_code(hint_rgba[..., :3])
    code = np.zeros(shape, np.int32)
    comp = np.zeros(shape, np.int32)
    if not mask.any():
        return np.zeros_like(hint_rgba)
    comp_src = _stroke_components(code_src, mask)

    ys, xs = np.nonzero(mask)
    fwd = flow_fwd[ys, xs].astype(np.float32)
    tx = xs + fwd[:, 0]
    ty = ys + fwd[:, 1]
    rx = np.rint(tx).astype(np.intp)
    ry = np.rint(ty).astype(np.intp)
    ok = (rx >= 0) & (rx < w) & (ry >= 0) & (ry < h)
    # forward-backward check at the unrounded target position: going there and back should be a round trip
    back = _sample_bilinear(flow_bwd, tx, ty)
    ok &= np.hypot(fwd[:, 0] + back[:, 0], fwd[:, 1] + back[:, 1]) <= fb_tolerance
    rx_c = np.clip(rx, 0, w - 1)
    ry_c = np.clip(ry, 0, h - 1)
    ok &= coverage_target[ry_c, rx_c] < LINE_THRESHOLD
    if labels_target is not None:
        ok &= labels_target[ry_c, rx_c] > 0
        if labels_source is not None and ok.any():
            ok &= _regions_correspond(labels_source, labels_target, flow_fwd, flow_bwd, ys, xs, ry_c, rx_c,
                                      fb_tolerance, region_share)
    # several sources landing on one pixel: the last in raster order wins (deterministic)
    code[ry[ok], rx[ok]] = code_src[ys[ok], xs[ok]]
    comp[ry[ok], rx[ok]] = comp_src[ys[ok], xs[ok]]

    allowed = coverage_target < LINE_THRESHOLD
    if labels_target is not None:
        allowed &= labels_target > 0
    _fill_pinholes(code, comp, allowed)
    if labels_target is not None:
        _snap_to_regions(comp, labels_target)
    return _rgba(code, comp > 0)


def _merge(primary: np.ndarray, secondary: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Strokes of two keyframes for one frame; `primary` (the nearer keyframe's) wins disagreements.

    A secondary stroke pixel is dropped where primary has a stroke pixel, and in regions where primary
    has strokes but none of that colour; everywhere else both keyframes' strokes are kept.
    """
    p_mask = _stroke_mask(primary)
    s_mask = _stroke_mask(secondary) & ~p_mask
    out = primary.copy()
    out[~p_mask] = 0
    if not s_mask.any():
        return out
    p_lab = labels[p_mask].astype(np.int64)
    p_keys = p_lab << 24 | _rgb_code(primary[..., :3][p_mask])
    s_lab = labels[s_mask].astype(np.int64)
    s_keys = s_lab << 24 | _rgb_code(secondary[..., :3][s_mask])
    owned = np.isin(s_lab, p_lab[p_lab > 0])
    keep = ~owned | np.isin(s_keys, p_keys)
    ys, xs = np.nonzero(s_mask)
    out[ys[keep], xs[keep]] = secondary[ys[keep], xs[keep]]
    out[ys[keep], xs[keep], 3] = 255
    return out


REGION_CARRY_SHARE = 0.5  # a region takes a colour from the previous frame's region that supplies this much of it
REGION_CARRY_AREA = (0.33, 3.0)  # ... and only when the two regions are of similar size (no merges or splits)
REGION_CARRY_MEASURED = 0.25  # with round-trip checked flows: at least this share of the region is measured
ROUND_TRIP_TOLERANCE = 1.5  # px, as warp_strokes' forward-backward check
# The sweep over finished frames checks flows both ways, so it may also follow a region that shrinks or grows a
# lot (an occluder passing over it): measured on held-out 12-frame shots, flicker 2.96 -> 2.15 dE.
SWEEP_AREA = (0.05, 20.0)


def _paint_cores(strokes: np.ndarray, labels: np.ndarray, source: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Strokes plus, in each region r with source[r] >= 0, its core painted color[source[r]].

    The core is the pixels at least half the region's inner radius from its lines, so a carried stroke never
    touches a line.
    """
    if not (source >= 0).any():
        return strokes
    inner = cv2.distanceTransform((labels > 0).astype(np.uint8), cv2.DIST_L2, 3)
    radius = np.zeros(len(source), np.float32)
    np.maximum.at(radius, labels.ravel(), inner.ravel())
    core = (source[labels] >= 0) & (inner >= np.maximum(1.0, 0.5 * radius[labels]))
    out = strokes.copy()
    out[core, :3] = color[source[labels[core]]]
    out[core, 3] = 255
    return out


def track_regions(labels_target: np.ndarray, labels_source: np.ndarray, flow_bwd: np.ndarray,
                  flow_fwd: np.ndarray | None = None, area: tuple[float, float] = REGION_CARRY_AREA,
                  only: np.ndarray | None = None) -> np.ndarray:
    """Which region of the source frame each region of the target frame comes from -> int64 (n_target,), -1: none.

    A target region comes from the source region into which the backward flow (target -> source) maps at least
    REGION_CARRY_SHARE of its pixels, when the two are of similar size (`area` bounds target/source area). With
    `flow_fwd` (source -> target) only pixels whose flows agree both ways count, and they must make up
    REGION_CARRY_MEASURED of the target region. `only` (bool per target region) limits the work to those regions.
    Label 0 (lines) is never tracked.
    """
    n_target = int(labels_target.max()) + 1
    n_source = int(labels_source.max()) + 1
    tracked = np.full(n_target, -1, np.int64)
    origin = labels_source.ravel()[_back_projection(flow_bwd)[0]]  # off the frame: the nearest edge pixel
    valid = labels_target > 0
    if only is not None:
        valid &= only[labels_target]
    area_target = np.bincount(labels_target.ravel(), minlength=n_target)
    measured = area_target
    if flow_fwd is not None:  # only pixels whose flows agree both ways say where the region came from
        valid &= _round_trip_ok(flow_bwd, flow_fwd, ROUND_TRIP_TOLERANCE)
        measured = np.bincount(labels_target[valid].ravel(), minlength=n_target)
    if not valid.any():
        return tracked
    pairs, counts = _count_pairs(labels_target[valid].astype(np.int64) * n_source + origin[valid],
                                 n_target * n_source)
    target, source = pairs // n_source, pairs % n_source
    area_source = np.bincount(labels_source.ravel(), minlength=n_source)
    ratio = area_target[target] / np.maximum(area_source[source], 1)
    keep = (source > 0) & (counts >= REGION_CARRY_SHARE * measured[target]) \
        & (measured[target] >= REGION_CARRY_MEASURED * area_target[target]) \
        & (ratio >= area[0]) & (ratio <= area[1])
    tracked[target[keep]] = source[keep]
    return tracked


# Followed forward (track_regions_forward), where the backward flow lost a region: on 96 held-out 12-frame shots
# (6 sets of 16) flicker 2.03 -> 1.99 dE, no set worse, 86% of the regions so coloured right. Counting the source
# pixels instead of the distinct target pixels they land on (a converging splat covers less than it sends): 81-85%
# right, and a wrong colour carried on down the chain made a set worse. Share and cover 0.6-0.7 and way back
# 0.1-0.25 gave the same flicker to within 0.01 dE; 0.25 is warp_strokes' region_share. A share above one half
# lets a source region be a candidate for one target region only.
FORWARD_SHARE = 0.7  # share of the source region the forward flow carries into the target region ...
FORWARD_COVER = 0.7  # ... landing on at least this share of the target region's pixels (each counted once) ...
FORWARD_BACK_SHARE = 0.25  # ... and at least this share of the target region the backward flow maps into the source


def track_regions_forward(labels_target: np.ndarray, labels_source: np.ndarray, flow_fwd: np.ndarray,
                          flow_bwd: np.ndarray, area: tuple[float, float] = REGION_CARRY_AREA,
                          only: np.ndarray | None = None, sources: np.ndarray | None = None) -> np.ndarray:
    """track_regions the other way round: each source region followed forward -> int64 (n_target,), -1: none.

    Where a thin part swings fast, DIS can follow it from the frame it starts in but not back to it, so
    track_regions loses it. A target region comes from the source region of similar size (`area`) whose pixels
    the forward flow (source -> target) carries FORWARD_SHARE of into it, landing on FORWARD_COVER of its
    pixels, when the backward flow (target -> source) maps FORWARD_BACK_SHARE of it into that source region.
    The cover and the way back refuse a region that turns up where another was (an arm swinging down over the
    place the skirt had). `only` (bool per target region) limits the work to those regions, `sources` (bool
    per source region) the regions that may be followed. Label 0 (lines) is never tracked.
    """
    n_target = int(labels_target.max()) + 1
    n_source = int(labels_source.max()) + 1
    tracked = np.full(n_target, -1, np.int64)
    lands, inside = _back_projection(flow_fwd)  # per source pixel: the target pixel it lands on
    lands = lands.ravel()
    source = labels_source.ravel().astype(np.int64)
    landing = labels_target.ravel()[lands].astype(np.int64)
    valid = inside.ravel() & (source > 0) & (landing > 0)
    if only is not None:
        valid &= only[landing]
    if sources is not None:
        valid &= sources[source]
    if not valid.any():
        return tracked
    keys = source[valid] * n_target + landing[valid]
    pairs, counts = _count_pairs(keys, n_source * n_target)
    pair_source, pair_target = pairs // n_target, pairs % n_target
    area_source = np.bincount(source, minlength=n_source)
    area_target = np.bincount(labels_target.ravel(), minlength=n_target)
    ratio = area_target[pair_target] / np.maximum(area_source[pair_source], 1)
    candidate = (counts >= FORWARD_SHARE * area_source[pair_source]) & (ratio >= area[0]) & (ratio <= area[1])
    if not candidate.any():
        return tracked
    # distinct target pixels each candidate pair's source pixels land on
    member = np.isin(keys, pairs[candidate])
    distinct = np.unique(keys[member] * labels_target.size + lands[valid][member]) // labels_target.size
    hit_keys, hits = np.unique(distinct, return_counts=True)
    covered = np.zeros(len(pairs), np.int64)
    covered[np.searchsorted(pairs, hit_keys)] = hits
    # the way back: the share of each candidate target region the backward flow maps into the candidate source
    wanted = np.zeros(n_target, bool)
    wanted[pair_target[candidate]] = True
    asked = wanted[labels_target]
    origin = labels_source.ravel()[_back_projection(flow_bwd)[0][asked]]
    back_pairs, back_counts = _count_pairs(labels_target[asked].astype(np.int64) * n_source + origin,
                                           n_target * n_source)
    back_keys = pair_target * n_source + pair_source
    at = np.minimum(np.searchsorted(back_pairs, back_keys), len(back_pairs) - 1)
    back = np.where(back_pairs[at] == back_keys, back_counts[at], 0)
    keep = candidate & (covered >= FORWARD_COVER * area_target[pair_target]) \
        & (back >= FORWARD_BACK_SHARE * area_target[pair_target])
    # two sources covering one target region: the one sending more pixels (then the lower id) wins
    order = np.lexsort((pair_source[keep], -counts[keep]))
    winners, first = np.unique(pair_target[keep][order], return_index=True)
    tracked[winners] = pair_source[keep][order][first]
    return tracked


# A region the backward flow maps into a source region is not its continuation when that source region's continuation
# is already in the frame: where an occluder moved away, the background it uncovers is mapped back into it (flow does
# not follow a fast occluder), and would take its colour. On 96 held-out 12-frame shots (6 sets of 16) flicker 1.99 ->
# 1.90 dE, no set worse (on 2 other sets of 96: 2.08 -> 1.99, 1.70 -> 1.61); of the in-between regions whose final
# colour changed, 102 wrong colours went (88 left bare, 14 now right) for 42 right ones left bare. Shares of 0.6 to
# 0.8 gave the same to within 0.01 dE.
CONTINUED_SHARE = 0.7  # share of a source region the forward flow carries into target regions holding its colour


def _continued_sources(labels_target: np.ndarray, target_color: np.ndarray, target_colored: np.ndarray,
                       labels_source: np.ndarray, source_color: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Per source region: does the forward flow carry CONTINUED_SHARE of it into target regions of its colour?"""
    lands, inside = _back_projection(forward)
    source = labels_source.ravel()
    sent = inside.ravel() & (source > 0)
    n_source, n_target = len(source_color), len(target_color)
    # colours compared once per (source, target) region pair, not per pixel
    pairs, counts = _count_pairs(source[sent].astype(np.int64) * n_target + labels_target.ravel()[lands.ravel()[sent]],
                                 n_source * n_target)
    from_region, to_region = np.divmod(pairs, n_target)
    same = target_colored[to_region] & np.all(target_color[to_region] == source_color[from_region], axis=1)
    held = np.bincount(from_region[same], weights=counts[same], minlength=n_source)
    return held >= CONTINUED_SHARE * np.bincount(source, minlength=n_source)


def carry_region_colors(strokes: np.ndarray, labels_target: np.ndarray, strokes_source: np.ndarray,
                        labels_source: np.ndarray, flow_bwd: np.ndarray, flow_fwd: np.ndarray | None = None,
                        area: tuple[float, float] = REGION_CARRY_AREA, forward: np.ndarray | None = None,
                        matched: np.ndarray | None = None) -> np.ndarray:
    """Give strokes to regions that lost theirs: region-consistent colour from one frame to the next.

    Warped strokes wear down over long chains (occlusion checks drop pixels, small strokes vanish). A region
    of the target frame with no strokes left takes the colour of the source-frame region it comes from
    (track_regions, with `flow_fwd` and `area` as there) when that region is coloured. With `forward` (the
    source -> target flow), a region track_regions does not place is followed forward (track_regions_forward,
    with REGION_CARRY_AREA whatever `area` is: its flows are not checked both ways).
    `matched` (int64 per target region, -1 none: lost_region_sources) gives a region without strokes the colour
    of the source region its outline was matched to, first (one already painted so keeps its strokes).
    A source region whose continuation is known gives its colour to no other region: one `matched` to a region,
    and, with `forward`, one the forward flow carries CONTINUED_SHARE of into regions that hold its colour.
    The carried stroke is the region's core (pixels at least half its inner radius from its lines), so it
    never touches a line.
    """
    target_color, has_strokes = region_stroke_colors(labels_target, strokes)
    source_color, source_colored = region_stroke_colors(labels_source, strokes_source)
    carried = np.full(len(has_strokes), -1, np.int64)
    continued = np.zeros(len(source_colored), bool)
    if matched is not None:
        known = (matched >= 0) & source_colored[np.maximum(matched, 0)]
        carried = np.where(~has_strokes & known, matched, -1)
        continued[matched[known]] = True
    placed = has_strokes | (carried >= 0)
    if forward is not None:
        target_color[carried >= 0] = source_color[carried[carried >= 0]]
        continued |= _continued_sources(labels_target, target_color, placed, labels_source, source_color, forward)
    givers = source_colored & ~continued
    tracked = track_regions(labels_target, labels_source, flow_bwd, flow_fwd, area, only=~placed)
    # tracked back to a region without colour, or to one continued elsewhere: none
    carried = np.where(givers[np.maximum(tracked, 0)] & (tracked >= 0), tracked, carried)
    if forward is not None:
        lost = ~placed & (tracked < 0)  # tracked back to a region without colour or continued: left as it is
        if lost[1:].any():
            followed = track_regions_forward(labels_target, labels_source, forward, flow_bwd, only=lost,
                                             sources=givers)
            carried = np.where(carried >= 0, carried, followed)
    return _paint_cores(strokes, labels_target, carried, source_color)


LOST_REGION_MAX_SHARE = 0.05  # regions up to this share of the frame are tried at the shifts of flow around them
MATCH_SUPPORT = 0.5  # share of a region's outline that must land on lines of the other frame
# ... and for a shift tried after the best one's landing failed: a runner-up is one of many shifts, and a chance
# fit (a sliver's straight sides on a bar's parallel lines) lands in the wrong part more often than not below
# this (on 32 held-out 12-frame shots, runners-up at 0.5-0.8 landed in the right part 23% of the time, at 0.8
# or more 73%, as often as best fits do). With 0.5 for them too: flicker 1.99 -> 1.94, propagation accuracy
# 0.972 -> 0.952; with 0.8: 1.96 and 0.971
MATCH_SUPPORT_RUNNER_UP = 0.8
MATCH_PURITY = 0.6  # share of the region that must land in one region of the other frame
MATCH_AREA = (0.05, 20.0)  # target/source area ratio allowed (a region half hidden by an occluder is small)
_RING = np.ones((5, 5), np.uint8)  # 2 px around a region: its outline and what lies just outside
# Bigger regions (the wide search):
MATCH_REACH = 1 / 8  # every shift up to this share of the short side is tried
# thousands of shifts tried: chance fits score higher, so the wide search asks more (the benchmark's fast
# occluders all matched at >= 0.8: the same strokes with 0.5 or 0.8 on 32 held-out shots)
MATCH_SUPPORT_WIDE = 0.8
OUTLINE_MIN_SPREAD = 3.0  # px: the outline must be more than one straight line (its width across, 1 std)
_MATCH_OUTLINE_SAMPLE = 400  # outline pixels scored per shift
_SHIFT_BLOCK = 1024  # shifts _outline_support scores together (one row of outline pixels each: bounded memory)


def _straight(ys: np.ndarray, xs: np.ndarray) -> bool:
    """Do the points lie along one straight line (spread across their main direction under OUTLINE_MIN_SPREAD px)?"""
    points = np.stack([xs, ys], 1).astype(np.float64)
    spread = np.linalg.eigvalsh(np.cov(points, rowvar=False))  # variances along the two principal directions
    return bool(np.sqrt(max(spread[0], 0.0)) < OUTLINE_MIN_SPREAD)


def _outline_support(near_line: np.ndarray, ys: np.ndarray, xs: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Per shift (dx, dy) of `shifts` (Sx2 int): the share of outline pixels (ys, xs) that land where near_line.

    A block of shifts at a time, one row of outline pixels per shift: few gathers, bounded memory.
    """
    height, width = near_line.shape
    support = np.empty(len(shifts))
    for start in range(0, len(shifts), _SHIFT_BLOCK):
        block = shifts[start:start + _SHIFT_BLOCK]
        support[start:start + len(block)] = near_line[np.clip(ys + block[:, 1:], 0, height - 1),
                                                      np.clip(xs + block[:, :1], 0, width - 1)].mean(axis=1)
    return support


def _outline_support_grid(near_line: np.ndarray, ys: np.ndarray, xs: np.ndarray, reach: int) -> np.ndarray:
    """_outline_support at every shift with |dx|, |dy| <= reach, in the order of
    np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2) for grid = -reach..reach (dy major).

    One correlation of the outline with the line mask around it (cv2.matchTemplate) instead of a gather per
    shift: the wide search scores tens of thousands of shifts. The window is gathered with clipped indices,
    as _outline_support clips, and the counts are whole numbers, so rounding the float result gives them
    exactly: the same shares.
    """
    height, width = near_line.shape
    top, left = int(ys.min()), int(xs.min())
    template = np.zeros((int(ys.max()) - top + 1, int(xs.max()) - left + 1), np.float32)
    template[ys - top, xs - left] = 1.0
    rows = np.clip(np.arange(top - reach, top + template.shape[0] + reach), 0, height - 1)
    cols = np.clip(np.arange(left - reach, left + template.shape[1] + reach), 0, width - 1)
    window = near_line[np.ix_(rows, cols)].astype(np.float32)
    counts = np.rint(cv2.matchTemplate(window, template, cv2.TM_CCORR)).astype(np.int64)
    return (counts / len(ys)).ravel()


def match_lost_regions(strokes: np.ndarray, labels_target: np.ndarray, coverage_target: np.ndarray,
                       strokes_source: np.ndarray, labels_source: np.ndarray, coverage_source: np.ndarray,
                       flow_bwd: np.ndarray, only: Literal["big", "small"] | None = None) -> np.ndarray:
    """Give strokes to regions still without any, by finding where their outline was in the other frame.

    Each region lost_region_sources matches (same arguments) gets the colour of its source region, painted in
    its core.
    """
    matched = lost_region_sources(strokes, labels_target, coverage_target, strokes_source, labels_source,
                                  coverage_source, flow_bwd, only)
    return _paint_matches(strokes, labels_target, matched, strokes_source, labels_source)


def _paint_matches(strokes: np.ndarray, labels_target: np.ndarray, matched: np.ndarray, strokes_source: np.ndarray,
                   labels_source: np.ndarray) -> np.ndarray:
    """`strokes` with each region `matched` (lost_region_sources) painted, in its core, its source region's colour."""
    return _paint_cores(strokes, labels_target, matched, region_stroke_colors(labels_source, strokes_source)[0])


def _big_regions(labels: np.ndarray, area: np.ndarray | None = None) -> np.ndarray:
    """Per region: bigger than LOST_REGION_MAX_SHARE of the frame (lost_region_sources' wide search). `area`: the
    regions' pixel counts, where already counted."""
    area = np.bincount(labels.ravel()) if area is None else area
    return area > LOST_REGION_MAX_SHARE * labels.size


def lost_region_sources(strokes: np.ndarray, labels_target: np.ndarray, coverage_target: np.ndarray,
                        strokes_source: np.ndarray, labels_source: np.ndarray, coverage_source: np.ndarray,
                        flow_bwd: np.ndarray, only: Literal["big", "small"] | None = None) -> np.ndarray:
    """The source region each target region still without strokes comes from, found by where its outline was
    in the other frame -> int64 (n_target,), -1: none (match_lost_regions gives them its colour).

    Flow is smooth: next to an occluder that moves fast, it drags a small region along with the occluder, and
    the region's strokes are dropped or its colour is not carried. Such a region (up to LOST_REGION_MAX_SHARE
    of the frame) is matched as a whole instead: a few candidate shifts (none, the region's own median flow,
    and each neighbouring region's, each +-1 px) are scored by the share of the region's outline that lands on
    a line of the source frame; the best one of at least MATCH_SUPPORT takes the region to the source region
    holding MATCH_PURITY of it, whose colour it gets (area ratio within MATCH_AREA). Where that landing does not
    hold up (split between regions, in one without colour or of another size) the next best shift is tried if it
    has MATCH_SUPPORT_RUNNER_UP: a sliver beside a fast bar fits the bar's parallel lines at the bar's shift
    too, and lands in the bar.
    The region keeping still beside a moving occluder keeps the lines of its far side, which the occluder's
    shift does not.
    A bigger region without strokes is most often the fast occluder itself, which flow does not follow at all:
    it is scored at every shift within MATCH_REACH of the short side (nearest its own flow among equals) and
    needs MATCH_SUPPORT_WIDE. One whose outline is a single straight line is left alone: that fits anywhere
    along a parallel edge, such as the old place of the occluder beside it.
    flow_bwd: target -> source. `only`: "big" matches only the bigger regions (the wide search), "small" only
    the others.
    """
    height, width = labels_target.shape
    n_target = int(labels_target.max()) + 1
    has_strokes = stroked_regions(labels_target, strokes)
    area_target = np.bincount(labels_target.ravel(), minlength=n_target)
    big = _big_regions(labels_target, area_target)
    lost = np.flatnonzero(~has_strokes & (area_target >= 4))
    lost = lost[lost > 0]
    if only is not None:
        lost = lost[big[lost] if only == "big" else ~big[lost]]
    matched = np.full(n_target, -1, np.int64)
    source_colored = region_stroke_colors(labels_source, strokes_source)[1]
    if not len(lost) or not source_colored.any():
        return matched
    area_source = np.bincount(labels_source.ravel(), minlength=len(source_colored))
    # a match needs a coloured source region holding MATCH_PURITY of the region within the area bounds: where
    # there is none (a big region no keyframe hinted, left to the network), no shift is worth scoring
    colored_areas = np.sort(area_source[1:][source_colored[1:]])
    near_source_line = cv2.distanceTransform((coverage_source < LINE_THRESHOLD).astype(np.uint8),
                                             cv2.DIST_L2, 3) <= ROUND_TRIP_TOLERANCE
    target_lines = coverage_target >= LINE_THRESHOLD
    boxes = find_objects(labels_target)
    median_flow: dict[int, tuple[int, int]] = {}

    def region_flow(r: int) -> tuple[int, int]:  # rounded median flow of region r, computed once
        if r not in median_flow:
            box = boxes[r - 1]
            inside = labels_target[box] == r
            dx, dy = np.median(flow_bwd[box][inside], axis=0)
            median_flow[r] = (int(round(float(dx))), int(round(float(dy))))
        return median_flow[r]

    for r in lost:
        smallest = max(MATCH_PURITY, 1 / MATCH_AREA[1]) * area_target[r]
        if np.searchsorted(colored_areas, smallest) == \
                np.searchsorted(colored_areas, area_target[r] / MATCH_AREA[0], side="right"):
            continue
        box = boxes[r - 1]
        y0, y1 = max(box[0].start - 4, 0), min(box[0].stop + 4, height)
        x0, x1 = max(box[1].start - 4, 0), min(box[1].stop + 4, width)
        crop = labels_target[y0:y1, x0:x1]
        inside = crop == r
        ring = cv2.dilate(inside.view(np.uint8), _RING) > 0
        by, bx = np.nonzero(ring & target_lines[y0:y1, x0:x1])
        if len(by) < 8:  # too little outline to match
            continue
        if big[r]:
            # a big region lost by flow: an occluder sweeping across faster than flow follows; its outline is
            # distinctive enough to search every shift within reach (a sample of it, for speed). Not so an
            # outline that is one straight line (a background strip beside a pillar): it fits anywhere along
            # the pillar's old edges.
            if _straight(by, bx):
                continue
            reach = max(8, round(MATCH_REACH * min(height, width)))
            grid = np.arange(-reach, reach + 1)
            shifts = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
            step = max(1, len(by) // _MATCH_OUTLINE_SAMPLE)
            support = _outline_support_grid(near_source_line, by[::step] + y0, bx[::step] + x0, reach)
            own = np.array(region_flow(int(r)))
        else:
            neighbours = np.unique(crop[cv2.dilate(ring.view(np.uint8), _RING) > 0])
            flows = {(0, 0), region_flow(int(r))} | {region_flow(int(q)) for q in neighbours if q not in (0, r)}
            shifts = np.array(sorted({(dx + a, dy + b) for dx, dy in flows for a in (-1, 0, 1) for b in (-1, 0, 1)}))
            support = _outline_support(near_source_line, by + y0, bx + x0, shifts)
            own = None
        if own is None:
            # the shifts best first (of equals, the first: the shifts are sorted, so the result is deterministic);
            # where a landing does not hold up below, the next is tried, if it fits well enough for a runner-up
            tries = np.argsort(-support, kind="stable")
            need = np.full(len(tries), MATCH_SUPPORT_RUNNER_UP)
            need[0] = MATCH_SUPPORT
            tries = tries[support[tries] >= need]
        else:  # of equally good shifts (a plain bar fits anywhere along itself), only the one nearest flow
            top = np.flatnonzero(support == support.max())
            best = int(top[np.argmin(np.abs(shifts[top] - own).sum(1))])
            tries = [best] if support[best] >= MATCH_SUPPORT_WIDE else []
        ys, xs = np.nonzero(inside)
        for k in tries:
            dx, dy = (int(v) for v in shifts[k])
            landed = labels_source[np.clip(ys + y0 + dy, 0, height - 1), np.clip(xs + x0 + dx, 0, width - 1)]
            ids, counts = np.unique(landed, return_counts=True)
            source = int(ids[np.argmax(counts)])
            ratio = area_target[r] / max(int(area_source[source]), 1)
            if source > 0 and counts.max() >= MATCH_PURITY * len(ys) and source_colored[source] \
                    and MATCH_AREA[0] <= ratio <= MATCH_AREA[1]:
                matched[r] = source
                break
    return matched


def propagate_hints(coverages: Sequence[np.ndarray], key_hints: dict[int, np.ndarray],
                    labels: Sequence[np.ndarray | None] | None = None,
                    progress: Callable[[int], None] | None = None, carry_regions: bool = True,
                    on_frame: Callable[[int, np.ndarray], None] | None = None) -> list[np.ndarray] | None:
    """One RGBA stroke image per frame of a shot, carried by motion from the keyframes' strokes.

    coverages: the shot's line art in order; key_hints: frame index -> RGBA strokes of that keyframe.
    A keyframe keeps its strokes exactly (its unstroked regions: see below). Other frames get strokes
    chained frame to frame (warp_strokes, with occlusion dropping and region snapping at every step) from
    the nearest keyframe on each side; where the two disagree (same pixel, or same region in different
    colours) the nearer keyframe wins, the earlier one on a tie. Frames outside the keyframes take the
    nearest one's strokes. Each flow is computed once (at most n-1 forward + n-1 backward) and kept only
    while its stretch of the shot is being worked on. `labels` (segment_regions of each frame) are computed
    when not given. With `carry_regions`, a region whose strokes were all lost on the way takes the colour
    of the region it comes from (carry_region_colors), so colours stay with their regions over long chains;
    a big one (a fast occluder, which flow does not follow) is first matched as a whole by its outline
    (match_lost_regions). Then, between two keyframes, the finished frames get one matching pass each way
    (small regions flow could not follow, matched as a whole), and last one sweep each way that gives a
    region still without strokes the colour of the region it comes from in the frame beside it (round-trip
    checked flows, any area ratio; a region the chain or that pass matched by its outline goes on in its
    match and gives its colour to no other). Beyond the keyframes every step is matched so. The keyframes take part
    in the matching and the sweep: their own strokes stay exactly as drawn, and a region the artist left
    without strokes there may take the colour it has in the frame beside it (a part hinted on one keyframe
    only keeps its colour on the other).
    `progress(done)` is called with the number of finished frames each time one is finished, and between
    two keyframes also as the chains advance (each step counts half a frame), so it never stalls for a long
    stretch; it never goes down and ends at n.

    Memory: `coverages` is read by index, only while its stretch of the shot is worked on, so it may be a
    lazy sequence (the plan's files on disk). With `on_frame(index, strokes)` each frame's strokes are
    handed out as soon as they are final and not kept (the function returns None); without it they are
    returned as a list. Either way what is held is bounded by the longest stretch between keyframes.
    """
    n = len(coverages)
    if n == 0:
        return [] if on_frame is None else None
    coverage_cache = {0: _check_coverage(coverages[0], "coverage of frame 0")}
    shape = coverage_cache[0].shape

    def cov(i: int) -> np.ndarray:
        if i not in coverage_cache:
            c = _check_coverage(coverages[i], f"coverage of frame {i}")
            if c.shape != shape:
                raise InputError(f"frame {i} is {c.shape[1]}x{c.shape[0]}, frame 0 is {shape[1]}x{shape[0]}")
            coverage_cache[i] = c
        return coverage_cache[i]

    if labels is not None and len(labels) != n:
        raise InputError(f"{len(labels)} label maps for {n} frames")
    keys = sorted(key_hints)
    for k in keys:
        if not 0 <= k < n:
            raise InputError(f"hint for frame {k}, but the shot has frames 0..{n - 1}")
        _check_hint(key_hints[k], shape, f"hint strokes of frame {k}")

    results: list[np.ndarray | None] | None = [None] * n if on_frame is None else None
    done = reported = 0

    def report(count: int) -> None:  # never backwards: chains report ahead of the frames they finish
        nonlocal reported
        if progress is not None and count > reported:
            reported = count
            progress(count)

    def finish(i: int, strokes: np.ndarray) -> None:
        nonlocal done
        if results is None:
            on_frame(i, strokes)
        else:
            results[i] = strokes
        done += 1
        report(done)

    if not keys:
        for i in range(n):
            finish(i, np.zeros((*shape, 4), np.uint8))
        return results  # type: ignore[return-value]

    features: dict[int, np.ndarray] = {}
    label_cache: dict[int, np.ndarray] = {}
    flows: dict[tuple[int, int], np.ndarray] = {}

    def feature(i: int) -> np.ndarray:
        if i not in features:
            features[i] = _line_feature(cov(i))
        return features[i]

    def labels_of(i: int) -> np.ndarray:
        if labels is not None and labels[i] is not None:
            return np.asarray(labels[i])
        if i not in label_cache:
            label_cache[i] = segment_regions(cov(i))
        return label_cache[i]

    def flow(a: int, b: int) -> np.ndarray:
        if (a, b) not in flows:
            # both directions at once: the pair is made consistent together, each computed once
            flows[(a, b)], flows[(b, a)] = _flow_pair(feature(a), feature(b))
        return flows[(a, b)]

    def match(i: int, j: int, strokes: np.ndarray, strokes_j: np.ndarray,
              only: Literal["big", "small"] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frame i's strokes with its lost regions matched from frame j's (match_lost_regions), and the matches."""
        sources = lost_region_sources(strokes, labels_of(i), cov(i), strokes_j, labels_of(j), cov(j), flow(i, j),
                                      only)
        return _paint_matches(strokes, labels_of(i), sources, strokes_j, labels_of(j)), sources

    def walk(start: int, stop: int, outer: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Strokes of keyframe `start` carried step by step to each frame up to `stop` (exclusive).

        At each step, a big region that lost its strokes (a fast occluder) is first matched by its outline
        (lost_region_sources' wide search): flow does not follow it, and following the flow back it lands in
        the strip of background of its size beside it, whose colour it took. Then regions still without
        strokes take their colour by flow (carry_region_colors), the background the occluder uncovered not its.
        `outer`: a walk beyond the first or last keyframe, whose frames are final as they come, so the small
        regions still lost are matched at each step (between keyframes that is done once both chains are merged).
        """
        step = 1 if stop > start else -1
        current = key_hints[start]
        for i in range(start + step, stop, step):
            if _stroke_mask(current).any():  # nothing left to carry: skip the flows
                prev = i - step
                warped = warp_strokes(current, flow(prev, i), flow(i, prev), cov(i), labels_of(i),
                                      labels_source=labels_of(prev))
                if carry_regions:
                    moved = lost_region_sources(warped, labels_of(i), cov(i), current, labels_of(prev), cov(prev),
                                                flow(i, prev), only="big")
                    if not outer:
                        chain_matches[i, prev] = moved
                    carried = carry_region_colors(warped, labels_of(i), current, labels_of(prev), flow(i, prev),
                                                  forward=flow(prev, i), matched=moved)
                    # the big regions were searched for above, with the same frames: only the small ones are left
                    current = match(i, prev, carried, current, only="small")[0] if outer else carried
                else:
                    current = warped
            yield i, current

    def forget(keep: Callable[[int], bool]) -> None:
        # a stretch of the shot is done: its flows, features, labels and coverages are not needed again
        for cache in (features, label_cache, coverage_cache):
            for j in [j for j in cache if not keep(j)]:
                del cache[j]
        for pair in [p for p in flows if not (keep(p[0]) and keep(p[1]))]:
            del flows[pair]

    # (frame, frame before it in a chain between keyframes) -> the chain's outline matches there: the sweep
    # keeps their sources continued
    chain_matches: dict[tuple[int, int], np.ndarray] = {}
    # a keyframe keeps its strokes exactly; its regions without strokes may still be matched from a neighbour
    keyframe_strokes = {k: key_hints[k].copy() for k in keys}
    # before the first keyframe and after the last, one chain: each frame is final as soon as it is reached
    for i, strokes in walk(keys[0], -1, outer=True):
        finish(i, strokes)
        forget(lambda j, i=i: j <= i or j == keys[0])  # keys[0] starts the next walk too
    forget(lambda j: j >= keys[0])
    for k1, k2 in zip(keys, keys[1:], strict=False):
        # the frames between two keyframes are final only once both chains are through; each chain step
        # counts half a frame on the way there
        steps = 0

        def chain(start: int, stop: int, base: int = done) -> dict[int, np.ndarray]:
            nonlocal steps
            reached = {}
            for i, strokes in walk(start, stop):
                reached[i] = strokes
                steps += 1
                report(base + steps // 2)
            return reached

        forward = chain(k1, k2)
        backward = chain(k2, k1)  # reuses the forward chain's flows (computed both ways at once)
        merged = {i: _merge(forward[i], backward[i], labels_of(i)) if i - k1 <= k2 - i
                  else _merge(backward[i], forward[i], labels_of(i)) for i in range(k1 + 1, k2)}
        del forward, backward
        if carry_regions:  # both chains may lose a region the frames beside it kept: sweep once each way
            merged[k1], merged[k2] = keyframe_strokes[k1], keyframe_strokes[k2]
            # keyframes included: a region left without strokes there is filled like any other frame's
            passes = ((range(k1 + 1, k2 + 1), -1), (range(k2 - 1, k1 - 1, -1), 1))
            for order, step in passes:  # the outline match first: the stricter test, as in the chains
                for i in order:
                    merged[i], moved = match(i, i + step, merged[i], merged[i + step])
                    # a big region matched here or in the chain (the wide search: all of it moved) continues its
                    # source, in the sweep as in the chains: that source gives its colour to no other region. A
                    # small one is often a piece of its source (an arm beside the body), which goes on in others
                    moved = np.where(_big_regions(labels_of(i)), moved, -1)
                    chained = chain_matches.get((i, i + step))
                    chain_matches[i, i + step] = moved if chained is None else np.where(moved >= 0, moved, chained)
            for order, step in passes:
                for i in order:
                    j = i + step
                    merged[i] = carry_region_colors(merged[i], labels_of(i), merged[j], labels_of(j), flow(i, j),
                                                    flow(j, i), area=SWEEP_AREA, forward=flow(j, i),
                                                    matched=chain_matches.pop((i, j)))
            keyframe_strokes[k1], keyframe_strokes[k2] = merged.pop(k1), merged.pop(k2)
        finish(k1, keyframe_strokes.pop(k1))
        for i in range(k1 + 1, k2):
            finish(i, merged.pop(i))
        forget(lambda j, k2=k2: j >= k2)
    finish(keys[-1], keyframe_strokes.pop(keys[-1]))
    for i, strokes in walk(keys[-1], n, outer=True):
        finish(i, strokes)
        forget(lambda j, i=i: j >= i)
    return results  # type: ignore[return-value]


def hint_overlay(coverage: np.ndarray, hint_rgba: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB picture for contact sheets: the line art (dark on white) with the strokes over it."""
    coverage = _check_coverage(coverage)
    hint_rgba = _check_hint(hint_rgba, coverage.shape)
    paper = (1.0 - np.clip(coverage, 0.0, 1.0))[..., None] * 255.0
    alpha = hint_rgba[..., 3:4].astype(np.float32) / 255.0
    # strokes at full alpha are drawn solid; partial alpha (never from this module) blends
    alpha = np.where(alpha >= STROKE_ALPHA / 255.0, 1.0, alpha)
    out = hint_rgba[..., :3].astype(np.float32) * alpha + paper * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
