"""Temporal stability of the network's colour: a region keeps its colour from one frame to the next.

The network colours every frame on its own, so a region's colour drifts from frame to frame even where its
strokes do not change (6.9 dE of flicker on held-out 12-frame shots, benchmarks/sequences.py). The
stabilizer follows each region of a frame back to the region it comes from in the frame before (the line-art
flow and region tracking of hint propagation) and moves the region's colour towards the colour that region
was given there: an exponential moving average per tracked region. Every pixel of a region is shifted by the
same amount, so the network's shading inside it is kept. A jump of the network's own colour of a region
bigger than MAX_BLEND_DELTA_E from one frame to the next is taken as meant (a new hint colour, a region that
is really another part) and left alone. That decision depends on the two frames only, never on the blended
colours before them, so a run started LEAD_IN frames before a frame (a resume) colours it as a whole run does.

It runs on the network's working-size colour, before the frame is finished (compose), one frame at a time
in order; `reset` starts a new shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .metrics import delta_e
from .propagate import line_flow_pair, track_regions
from .regions import assign_lines, region_medians, segment_regions

BLEND = 0.85  # share of the previous frame's region colour kept
MAX_BLEND_DELTA_E = 40.0  # CIE76: a region whose colour moves further than this changed on purpose
# a colour's pull on the frame k frames later is BLEND**k of it: after LEAD_IN frames it is under half a level of 255,
# so a run that starts this many frames before a frame colours it as a run from the shot's start does (to rounding)
LEAD_IN = math.ceil(math.log(0.5 / 255) / math.log(BLEND))
FLOW_SHORT_SIDE = 256  # following whole regions needs no finer flow; the cost grows with the pixel count


@dataclass
class _Frame:
    coverage: np.ndarray
    labels: np.ndarray
    colors: np.ndarray  # (regions, 3) float RGB 0-255 the regions were given; NaN where a region has no pixels
    medians: np.ndarray  # (regions, 3) the network's own region colours, before blending


class Stabilizer:
    """Blends each frame's region colours with those of the previous frame of the same shot.

    >>> stabilize = Stabilizer()
    >>> for color, coverage in frames_of_one_shot:   # working-size colour HxWx3 float [0,1], coverage HxW
    ...     color = stabilize(color, coverage)
    """

    def __init__(self, blend: float = BLEND, max_delta_e: float = MAX_BLEND_DELTA_E) -> None:
        if not 0.0 <= blend < 1.0:
            raise InputError(f"blend must be in [0, 1), got {blend}")
        self.blend = blend
        self.max_delta_e = max_delta_e
        self._previous: _Frame | None = None

    def reset(self) -> None:
        """Forget the previous frame: the next frame starts a shot."""
        self._previous = None

    def __call__(self, color: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        """Working-size colour (HxWx3 float in [0, 1]) and line coverage at that size -> stabilized colour."""
        if color.ndim != 3 or color.shape[2] != 3 or color.shape[:2] != coverage.shape:
            raise InputError(f"colour {color.shape} and line coverage {coverage.shape} do not match")
        previous = self._previous
        if previous is not None and previous.coverage.shape != coverage.shape:
            previous = None  # a frame of another size cannot follow this one
        labels = segment_regions(coverage)
        medians, counts = region_medians(np.round(np.clip(color, 0, 1) * 255).astype(np.uint8), labels)
        medians = medians.astype(np.float64)
        targets = medians.copy()
        if previous is not None:
            flow_fwd, flow_bwd = line_flow_pair(previous.coverage, coverage, FLOW_SHORT_SIDE)
            origin = track_regions(labels, previous.labels, flow_bwd, flow_fwd)
            tracked = np.flatnonzero((origin > 0) & (counts > 0))
            tracked = tracked[~np.isnan(previous.colors[origin[tracked], 0])]
            if len(tracked):
                before = previous.colors[origin[tracked]]
                # a meant change is a jump in the network's own colour, frame to frame; measured against the blended
                # colour it would depend on the frames before, and a run started later (a resume) could decide it
                # otherwise and never come back to the same colours
                close = delta_e(medians[tracked], previous.medians[origin[tracked]]) <= self.max_delta_e
                tracked, before = tracked[close], before[close]
                targets[tracked] = self.blend * before + (1.0 - self.blend) * medians[tracked]
        colors = np.where((counts > 0)[:, None], targets, np.nan)
        colors[0] = np.nan  # lines are not a region
        self._previous = _Frame(coverage, labels, colors, medians)
        shift = (targets - medians) / 255.0
        shift[0] = 0.0
        # line pixels move with their nearest region, so colour under a line does not show a seam
        return np.clip(color + shift[assign_lines(labels)].astype(np.float32), 0.0, 1.0).astype(color.dtype)
