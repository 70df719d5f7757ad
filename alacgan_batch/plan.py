"""The plan of a shot: its frames, its keyframes and the hint strokes each frame gets.

Keyframe hints are read and checked (file, frame, size) before any work starts, so a bad hint stops a
run before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .hints import HintSpec, assign_hints, read_strokes
from .sequence import FrameRef, discover_frames, read_image


@dataclass
class Plan:
    frames: list[FrameRef]
    keyframes: dict[int, Path] = field(default_factory=dict)  # frame index -> hint file
    _strokes: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def strokes_for(self, index: int) -> np.ndarray | None:
        """RGBA strokes for the frame at `index`, or None when it has no hints."""
        return self._strokes.get(index)

    @property
    def hinted(self) -> list[int]:
        return sorted(self._strokes)


def build_plan(source: Path, hints: Sequence[HintSpec | str | Path] = ()) -> Plan:
    frames = discover_frames(Path(source))
    keyframes = assign_hints(list(hints), frames) if hints else {}
    strokes = {}
    for index, hint_path in keyframes.items():
        size = read_image(frames[index].path).shape[:2]
        strokes[index] = read_strokes(hint_path, size)
    return Plan(frames, keyframes, strokes)
