"""`alacgan hints preview`: a contact sheet of every frame with its propagated strokes over the line art.

An artist checks it before a long run: each thumbnail shows where the keyframe strokes landed; keyframes
have a blue frame, frames of a shot without hints a red one. A sizeable region that no stroke reaches (a
forearm that shows only between the keyframes, a region propagation lost) is hatched orange: the network
guesses its colour, and the flat engine leaves it empty, so that frame wants a hint of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .compose import resize
from .errors import OutputError
from .hints import HintSpec, hint_files
from .plan import PlanOptions, build_plan
from .sources import FolderSource, VideoSource
from .writer import write_png

THUMB_WIDTH = 320
LABEL_HEIGHT = 22
KEYFRAME_COLOR = (40, 90, 230)
UNHINTED_COLOR = (220, 40, 40)
BARE_COLOR = (255, 140, 0)
# a region of 0.2% of the frame (130 px at 256x256, a small forearm) left without strokes is worth the artist's
# look; smaller ones are mostly slivers beside lines and occluders, too many to list and too small to hint
BARE_SHARE = 0.002


@dataclass
class ContactSheet:
    """What `contact_sheet` wrote: the sheet, and the frames (by label) holding a region no stroke reaches."""

    path: Path
    bare_frames: list[str] = field(default_factory=list)


def bare_regions(coverage: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """HxW bool: the regions of the line art (regions.segment_regions) of at least BARE_SHARE of the frame that
    hold no stroke pixel."""
    from .regions import segment_regions, stroked_regions

    labels = segment_regions(coverage)
    stroked = stroked_regions(labels, strokes)
    big = np.bincount(labels.ravel(), minlength=stroked.size) >= BARE_SHARE * labels.size
    big[0] = False  # lines
    return (big & ~stroked)[labels]


def _hatch(picture: np.ndarray, mask: np.ndarray) -> None:
    """Diagonal stripes over `mask`, so a bare region reads at thumbnail size whatever its own colour."""
    ys, xs = np.nonzero(mask)
    stripe = (ys + xs) % 8 < 3
    picture[ys[stripe], xs[stripe]] = BARE_COLOR


def contact_sheet(source: Path | str, hints: Sequence[HintSpec | str | Path], output: Path | str,
                  columns: int = 6, propagate: bool = True, short_side: int = 512,
                  progress: Callable[[str, int, int], None] | None = None) -> ContactSheet:
    """Write the contact sheet PNG for `source` with `hints`; returns its path and the frames of hinted shots
    that hold a region no stroke reaches (hatched in the sheet)."""
    from .propagate import hint_overlay
    from .sinks import is_video_file

    path = Path(source)
    frame_source = VideoSource.open(path) if is_video_file(path) else FolderSource.open(path)
    output = Path(output)
    if output.resolve() in frame_source.inputs | hint_files(hints):
        raise OutputError(f"contact sheet {output} would overwrite an input of it; choose another with -o")
    if output.suffix.lower() != ".png":
        raise OutputError(f"contact sheet {output}: the sheet is a PNG, name it .png")
    if output.is_dir():
        raise OutputError(f"contact sheet {output} is a folder; name a .png file")
    if isinstance(frame_source, FolderSource) and output.resolve().parent == frame_source.root.resolve():
        raise OutputError(f"contact sheet {output} is in the input folder, where later runs would read it as a "
                          "frame; choose another with -o")
    plan = build_plan(frame_source, hints, PlanOptions(short_side=short_side, propagate=propagate),
                      progress=progress, keep_coverage=True)
    try:
        unhinted = {i for shot in plan.unhinted_shots for i in shot}
        tiles, bare_frames = [], []
        for index, ref in enumerate(plan.frames):
            coverage = plan.coverage_for(index)
            strokes = plan.strokes_for(index)
            if strokes is None:
                strokes = np.zeros((*coverage.shape, 4), np.uint8)
            picture = hint_overlay(coverage, strokes)
            bare = bare_regions(coverage, strokes) if index not in unhinted else None  # unhinted: framed red
            if bare is not None and bare.any():
                _hatch(picture, bare)
                bare_frames.append(ref.label)
            height = round(picture.shape[0] * THUMB_WIDTH / picture.shape[1])
            thumb = resize(picture, (height, THUMB_WIDTH))
            border = KEYFRAME_COLOR if index in plan.keyframes else UNHINTED_COLOR if index in unhinted else None
            if border is not None:
                cv2.rectangle(thumb, (0, 0), (THUMB_WIDTH - 1, height - 1), border, 3)
            label = np.full((LABEL_HEIGHT, THUMB_WIDTH, 3), 255, np.uint8)
            text = ref.label + ("  key" if index in plan.keyframes else "")
            cv2.putText(label, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(np.vstack([thumb, label]))
    finally:
        plan.cleanup()
    tile_h = max(t.shape[0] for t in tiles)
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full((rows * (tile_h + 4), min(columns, len(tiles)) * (THUMB_WIDTH + 4), 3), 200, np.uint8)
    for i, tile in enumerate(tiles):
        y, x = (i // columns) * (tile_h + 4), (i % columns) * (THUMB_WIDTH + 4)
        sheet[y:y + tile.shape[0], x:x + THUMB_WIDTH] = tile
    write_png(output, sheet)
    return ContactSheet(output, bare_frames)
