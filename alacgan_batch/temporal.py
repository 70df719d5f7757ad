"""Temporal stability of the network's colour: a region keeps its colour from one frame to the next.

The network colours every frame on its own, so a region's colour drifts from frame to frame even where its
strokes do not change (6.9 dE of flicker on held-out 12-frame shots, benchmarks/sequences.py), and now and then
jumps for a frame or two where propagation lost a region's strokes beside an occluder. The stabilizer follows
each region through the frames around it (the line-art flow and region tracking of hint propagation) and:

1. takes the median of the region's network colour (the median of its interior, regions.interiors, as the lock
   and flatten judge a region) over the WINDOW frames before and after it (the medoid: the colour closest to
   the others, so always one the region had), so a jump that lasts one or two frames is dropped, while a change
   that lasts is kept from the frame it starts. Where the region is followed through fewer frames on one side (a
   shot's first or last frames, a track that breaks) the window is one-sided, and a two-frame jump there can be
   the majority. A keyframe's colours are not replaced by the window's (they
   follow the artist's strokes);
2. moves that colour towards the colour the region was given in the frame before: an exponential moving average
   per tracked region. A jump of the median colour bigger than MAX_BLEND_DELTA_E from one frame to the next is
   taken as meant (a new hint colour, a region that is really another part) and left alone.

Every pixel of a region is shifted by the same amount, so the network's shading inside it is kept. A frame is
finished once the WINDOW frames after it are in (or its shot ends), so frames come out that many frames late.
Each decision depends on the frames within WINDOW + 1 of a frame, never on the blended colours before them, so
a run started LEAD_IN frames before a frame (a resume) colours it as a whole run does.

It runs on the network's working-size colour, before the frame is finished (compose), one frame at a time
in order; `flush` ends a shot.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .metrics import delta_e
from .propagate import line_flow_pair, track_regions
from .regions import assign_lines, interiors, region_medians, segment_regions

BLEND = 0.85  # share of the previous frame's region colour kept
MAX_BLEND_DELTA_E = 40.0  # CIE76: a region whose colour moves further than this changed on purpose
WINDOW = 2  # frames each side whose colours a region's median is taken over: a jump of up to 2 frames is dropped
# a colour's pull on the frame k frames later is BLEND**k of it: after this many frames it is under half a level of
# 255, and each frame's median looks WINDOW frames further back; a run that starts LEAD_IN frames before a frame
# (and goes on WINDOW frames after it) colours it as a run over the whole shot does (to rounding)
LEAD_IN = math.ceil(math.log(0.5 / 255) / math.log(BLEND)) + WINDOW + 1
FLOW_SHORT_SIDE = 256  # following whole regions needs no finer flow; the cost grows with the pixel count


@dataclass
class _Frame:
    key: Hashable
    color: np.ndarray | None  # the network's working-size colour, HxWx3 float [0, 1]; None once finished
    coverage: np.ndarray
    labels: np.ndarray
    medians: np.ndarray  # (regions, 3) float the network's own region colours (interiors); NaN where no pixels
    counts: np.ndarray  # pixels per region
    origin: np.ndarray  # per region: the region of the frame before it comes from, -1 none (or no frame before)
    anchor: bool  # a keyframe: its own colours are not replaced by the window's median
    successor: np.ndarray | None = None  # per region: the largest region of the next frame that comes from it
    window_medians: np.ndarray | None = None  # (regions, 3): median over the window (set when finished)
    colors: np.ndarray | None = None  # (regions, 3): the colours given (set when finished)


def _successors(origin: np.ndarray, counts: np.ndarray, n_source: int) -> np.ndarray:
    """Invert a frame's `origin` map: for each source region, the largest target region that comes from it."""
    successor = np.full(n_source, -1, np.int64)
    targets = np.flatnonzero(origin > 0)
    if len(targets):
        targets = targets[np.lexsort((counts[targets], origin[targets]))]  # by source, then by size
        last = np.r_[origin[targets][1:] != origin[targets][:-1], True]  # the largest of each source's group
        successor[origin[targets][last]] = targets[last]
    return successor


class Stabilizer:
    """Steadies each region's colour over the frames of a shot around it.

    >>> stabilize = Stabilizer()
    >>> for key, color, coverage in frames_of_one_shot:  # working-size colour HxWx3 float [0,1], coverage HxW
    ...     for done_key, done_color in stabilize.push(key, color, coverage):
    ...         write(done_key, done_color)                # frames come out in order, WINDOW frames late
    >>> for done_key, done_color in stabilize.flush():    # the shot's last frames
    ...     write(done_key, done_color)
    """

    def __init__(self, blend: float = BLEND, max_delta_e: float = MAX_BLEND_DELTA_E, window: int = WINDOW) -> None:
        if not 0.0 <= blend < 1.0:
            raise InputError(f"blend must be in [0, 1), got {blend}")
        if window < 0:
            raise InputError(f"window must be at least 0, got {window}")
        self.blend = blend
        self.max_delta_e = max_delta_e
        self.window = window
        self._frames: list[_Frame] = []  # the last finished frames the window needs, then the ones waiting
        self._waiting = 0

    def describe(self) -> dict:
        """What decides its colours, for a run's manifest: frames made by another stabilizer must not be resumed."""
        return {"window": self.window, "blend": self.blend, "max_delta_e": self.max_delta_e, "median": "medoid",
                "region_color": "interior median",
                "keyframes": "out of the window"}

    def push(self, key: Hashable, color: np.ndarray, coverage: np.ndarray,
             anchor: bool = False) -> list[tuple[Hashable, np.ndarray]]:
        """Add the next frame of the shot -> the frames finished by it, (key, stabilized colour), in order.

        `anchor`: a keyframe, whose network colours follow the artist's own strokes: the window's median does
        not replace them (the blend with the frame before still applies), and the frames around it use them."""
        if color.ndim != 3 or color.shape[2] != 3 or color.shape[:2] != coverage.shape:
            raise InputError(f"colour {color.shape} and line coverage {coverage.shape} do not match")
        done = self.flush() if self._frames and self._frames[-1].coverage.shape != coverage.shape else []
        labels = segment_regions(coverage)
        # a region's colour is its interior's, by the lock's and flatten's rule (here at the working size): a
        # whole-region median moves with the share of dark rim along its lines, and the shift that steadied it
        # would move the interior
        medians, _ = region_medians(np.round(np.clip(color, 0, 1) * 255).astype(np.uint8), interiors(labels))
        counts = np.bincount(labels.ravel(), minlength=len(medians))
        medians = np.where((counts > 0)[:, None], medians.astype(np.float64), np.nan)
        medians[0] = np.nan  # lines are not a region
        origin = np.full(len(counts), -1, np.int64)
        if self._frames:
            before = self._frames[-1]
            flow_fwd, flow_bwd = line_flow_pair(before.coverage, coverage, FLOW_SHORT_SIDE)
            origin = track_regions(labels, before.labels, flow_bwd, flow_fwd)
            before.successor = _successors(origin, counts, len(before.counts))
        self._frames.append(_Frame(key, color, coverage, labels, medians, counts, origin, anchor))
        self._waiting += 1
        while self._waiting > self.window:
            done.append(self._finish_next())
        return done

    def flush(self) -> list[tuple[Hashable, np.ndarray]]:
        """The frames still waiting, finished: the shot has ended. The next frame pushed starts a new shot."""
        done = [self._finish_next() for _ in range(self._waiting)]
        self._frames = []
        return done

    def _finish_next(self) -> tuple[Hashable, np.ndarray]:
        position = len(self._frames) - self._waiting
        frame = self._frames[position]
        # a keyframe's colours are not replaced by the window's (they follow the artist's strokes); they are blended
        # like any frame's: with propagation the frames before carry the same strokes, so the blend moves them
        # little, while exempting them put a jump before each keyframe (about 0.3 dE more flicker at 12 frames)
        frame.window_medians = frame.medians.copy() if frame.anchor else self._window_median(position)
        targets = frame.window_medians.copy()
        if position > 0:
            before = self._frames[position - 1]
            tracked = np.flatnonzero(frame.origin > 0)
            tracked = tracked[~np.isnan(targets[tracked, 0]) & ~np.isnan(before.colors[frame.origin[tracked], 0])]
            if len(tracked):
                source = frame.origin[tracked]
                # a meant change is a jump in the network's own (window median) colour, frame to frame; measured
                # against the blended colour it would depend on the frames before, and a run started later (a
                # resume) could decide it otherwise and never come back to the same colours
                close = delta_e(targets[tracked], before.window_medians[source]) <= self.max_delta_e
                tracked, source = tracked[close], source[close]
                targets[tracked] = self.blend * before.colors[source] + (1.0 - self.blend) * targets[tracked]
        frame.colors = targets
        self._waiting -= 1
        keep = max(0, position + 1 - max(self.window, 1))  # what the next frame's window and blend look at
        self._frames = self._frames[keep:]
        shift = np.nan_to_num(targets - frame.medians) / 255.0
        # line pixels move with their nearest region, so colour under a line does not show a seam
        color = np.clip(frame.color + shift[assign_lines(frame.labels)].astype(np.float32), 0.0, 1.0)
        color, frame.color = color.astype(frame.color.dtype), None  # kept on for its window only by its regions
        return frame.key, color

    def _window_median(self, position: int) -> np.ndarray:
        """Per region of the frame at `position`: the median of its network colour over the frames around it (up
        to WINDOW each side, followed back by `origin` and on by `successor`) when it is followed through 2 of
        them or more; else its own. The median of colours is the medoid, the one closest to the others (CIE76,
        summed), so it is a colour the region had; ties keep the frame's own."""
        frame = self._frames[position]
        regions = np.arange(len(frame.counts))
        seen = [frame.medians]
        for step in (-1, 1):
            follow, at = regions, position
            for _ in range(self.window):
                link = self._frames[at].origin if step < 0 else self._frames[at].successor
                at += step
                if at < 0 or at >= len(self._frames) or link is None:
                    break
                follow = np.where(follow >= 0, link[np.maximum(follow, 0)], -1)
                seen.append(np.where((follow >= 0)[:, None], self._frames[at].medians[np.maximum(follow, 0)], np.nan))
        candidates = np.stack(seen)  # (frames, regions, 3), NaN where the region was not followed there
        inside = ~np.isnan(candidates[..., 0])
        some = np.flatnonzero(inside.sum(axis=0) >= 3)
        out = frame.medians.copy()
        if len(some):
            colors, inside = np.nan_to_num(candidates[:, some]), inside[:, some]
            distance = delta_e(colors[:, None], colors[None, :])  # (frames, frames, regions)
            cost = np.where(inside, (distance * inside[None]).sum(axis=1), np.inf)
            out[some] = colors[np.argmin(cost, axis=0), np.arange(len(some))]
        return out
