"""Colour-accuracy metrics measured per region of a label map.

Colourisation is judged per region (a part id in a label map), not per pixel: a region counts
as right when its median output colour is within a CIE76 deltaE threshold of the colour it
should have. Medians make the score robust to the anti-aliased fringe along lines and to small
blotches.

All colours are RGB on a 0-255 scale (uint8 arrays, or floats on the same scale).

``mask`` arguments: a boolean HxW array, True where a pixel should be measured. Pass the
non-line pixels (see :func:`non_line_mask`) so that the black ink drawn over the output, and the
colour bleeding next to it, do not count: pixels under lines belong to a region in the label map
but carry no colour information of their own. ``None`` measures every pixel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import cv2
import numpy as np
from skimage.color import rgb2lab

__all__ = [
    "delta_e",
    "flicker",
    "hint_region_accuracy",
    "non_line_mask",
    "propagation_accuracy",
    "region_accuracy",
    "region_colors",
]


def delta_e(rgb_a: np.ndarray | Sequence[float], rgb_b: np.ndarray | Sequence[float]) -> np.ndarray:
    """CIE76 deltaE (Euclidean distance in CIELAB, D65) between RGB colours of shape (..., 3).

    Inputs broadcast against each other; values are on a 0-255 scale whatever their dtype.
    Returns float64 of the broadcast shape without the last axis (0-d for single colours).
    """
    a = np.asarray(rgb_a, np.float64) / 255.0
    b = np.asarray(rgb_b, np.float64) / 255.0
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"expected RGB arrays (..., 3), got {a.shape} and {b.shape}")
    a, b = np.broadcast_arrays(a, b)
    # rgb2lab wants at least one spatial axis; a 2-D (N, 3) view works for any input shape
    lab_a = rgb2lab(np.clip(a, 0, 1).reshape(-1, 1, 3))
    lab_b = rgb2lab(np.clip(b, 0, 1).reshape(-1, 1, 3))
    return np.linalg.norm(lab_a - lab_b, axis=-1).reshape(a.shape[:-1])


def non_line_mask(lineart: np.ndarray, threshold: int = 200, grow: int = 1) -> np.ndarray:
    """True where ``lineart`` (HxW uint8, 255 = paper) is paper, with lines grown by ``grow`` px.

    Growing the lines also drops the anti-aliased fringe, where a colouriser's output mixes with
    the ink. ``threshold``: pixels darker than this are line.
    """
    if lineart.ndim == 3:
        lineart = cv2.cvtColor(lineart, cv2.COLOR_RGB2GRAY)
    line = (lineart < threshold).astype(np.uint8)
    if grow > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        line = cv2.dilate(line, k)
    return line == 0


def _check(image: np.ndarray, labels: np.ndarray, mask: np.ndarray | None) -> None:
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"mask {mask.shape} and labels {labels.shape} differ in size")


def _groups(labels: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat pixel indices sorted by label, the labels present and their start offsets/counts."""
    flat = labels.reshape(-1)
    idx = np.flatnonzero(mask.reshape(-1)) if mask is not None else np.arange(flat.size)
    order = idx[np.argsort(flat[idx], kind="stable")]
    ids, counts = np.unique(flat[order], return_counts=True)
    return order, ids, counts


def region_colors(image: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                  min_pixels: int = 1) -> dict[int, np.ndarray]:
    """Median RGB (float64, shape (3,)) of ``image`` over each label's pixels.

    Only pixels where ``mask`` is True count; labels with fewer than ``min_pixels`` counted
    pixels are left out.
    """
    _check(image, labels, mask)
    pix = image.reshape(-1, image.shape[-1])[:, :3]
    order, ids, counts = _groups(labels, mask)
    out: dict[int, np.ndarray] = {}
    start = 0
    for i, n in zip(ids, counts, strict=True):
        if n >= min_pixels:
            out[int(i)] = np.median(pix[order[start:start + n]], axis=0).astype(np.float64)
        start += n
    return out


def _areas(labels: np.ndarray, mask: np.ndarray | None) -> dict[int, int]:
    ids, counts = np.unique(labels if mask is None else labels[mask], return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def _weighted_share(medians: Mapping[int, np.ndarray], targets: Mapping[int, np.ndarray],
                    areas: Mapping[int, int], threshold: float) -> float:
    ids = [i for i in targets if i in medians and areas.get(i, 0) > 0]
    if not ids:
        return float("nan")
    de = delta_e(np.array([medians[i] for i in ids]), np.array([targets[i] for i in ids], np.float64))
    w = np.array([areas[i] for i in ids], np.float64)
    return float(w[de <= threshold].sum() / w.sum())


def region_accuracy(output: np.ndarray, target_colors: Mapping[int, Sequence[float] | np.ndarray],
                    labels: np.ndarray, threshold: float = 15.0, only: Iterable[int] | None = None,
                    mask: np.ndarray | None = None) -> float:
    """Share of region area whose median ``output`` colour is within ``threshold`` deltaE of its target.

    Area-weighted over the regions that are in ``target_colors`` (and in ``only``, if given) and
    present in ``labels`` (under ``mask``). Areas count only masked-in pixels. Returns NaN when no
    region qualifies.
    """
    targets = {int(k): np.asarray(v, np.float64) for k, v in target_colors.items()}
    if only is not None:
        keep = {int(i) for i in only}
        targets = {k: v for k, v in targets.items() if k in keep}
    return _weighted_share(region_colors(output, labels, mask), targets, _areas(labels, mask), threshold)


def _stroke_pixels(hint_rgba: np.ndarray) -> np.ndarray:
    if hint_rgba.ndim != 3 or hint_rgba.shape[-1] != 4:
        raise ValueError(f"expected an HxWx4 RGBA hint image, got {hint_rgba.shape}")
    return hint_rgba[..., 3] > 0


def hint_region_accuracy(output: np.ndarray, hint_rgba: np.ndarray, labels: np.ndarray,
                         threshold: float = 15.0, mask: np.ndarray | None = None) -> float:
    """Did the colouriser follow the hints? Area-weighted share of hinted regions coloured as hinted.

    A region is hinted when it holds stroke pixels (alpha > 0); its target is the median colour of
    those stroke pixels. ``mask`` limits which output pixels are measured (strokes are read
    everywhere). NaN when there are no strokes.
    """
    _check(hint_rgba, labels, mask)
    strokes = _stroke_pixels(hint_rgba)
    targets = region_colors(hint_rgba[..., :3], labels, strokes)
    return _weighted_share(region_colors(output, labels, mask), targets, _areas(labels, mask), threshold)


def propagation_accuracy(hint_rgba: np.ndarray, labels: np.ndarray,
                         part_colors: Mapping[int, Sequence[float] | np.ndarray],
                         threshold: float = 15.0) -> float:
    """Share of stroke pixels (alpha > 0) lying in a region whose part colour is within ``threshold``.

    Scores hints that were carried to another frame: a stroke that drifted onto a neighbouring
    part no longer agrees with that part's colour. Pixels on ids missing from ``part_colors``
    count as wrong. NaN when there are no strokes.
    """
    _check(hint_rgba, labels, None)
    strokes = _stroke_pixels(hint_rgba)
    n = int(strokes.sum())
    if n == 0:
        return float("nan")
    uniq, inv = np.unique(labels[strokes], return_inverse=True)
    known = np.array([int(i) in part_colors for i in uniq])
    table = np.array([np.asarray(part_colors[int(i)], np.float64) if k else np.zeros(3)
                      for i, k in zip(uniq, known, strict=True)])
    ok = known[inv] & (delta_e(hint_rgba[..., :3][strokes], table[inv]) <= threshold)
    return float(ok.sum() / n)


def flicker(outputs: Sequence[np.ndarray], labels: Sequence[np.ndarray],
            mask_lines: Sequence[np.ndarray | None] | None = None, min_pixels: int = 1,
            by_area: bool = False) -> float:
    """Temporal colour instability: mean deltaE of a region's median colour from frame t to t+1.

    Averaged over every (region, t) pair where the region is present in both frames.
    ``mask_lines``: one boolean mask per frame, True where a pixel is measured (i.e. not under a
    line; see :func:`non_line_mask`), same convention as ``mask`` elsewhere; ``None`` for all.
    Regions with fewer than ``min_pixels`` measured pixels in a frame are skipped there.
    ``by_area``: weight each pair by the region's smaller measured area of the two frames, so a
    sliver of a few pixels beside an occluder counts for its few pixels, not as much as a torso:
    closer to the flicker a viewer sees. NaN when no region spans two consecutive frames.
    """
    if len(outputs) != len(labels):
        raise ValueError(f"{len(outputs)} outputs but {len(labels)} label maps")
    if mask_lines is not None and len(mask_lines) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs but {len(mask_lines)} masks")
    masks = [None] * len(outputs) if mask_lines is None else list(mask_lines)
    cols = [region_colors(o, lab, m, min_pixels) for o, lab, m in zip(outputs, labels, masks, strict=True)]
    areas = [_areas(lab, m) for lab, m in zip(labels, masks, strict=True)] if by_area else None
    a, b, weights = [], [], []
    for t, (c0, c1) in enumerate(zip(cols[:-1], cols[1:], strict=True)):
        for i in c0.keys() & c1.keys():
            a.append(c0[i])
            b.append(c1[i])
            weights.append(min(areas[t][i], areas[t + 1][i]) if areas else 1)
    if not a:
        return float("nan")
    return float(np.average(delta_e(np.array(a), np.array(b)), weights=weights))
