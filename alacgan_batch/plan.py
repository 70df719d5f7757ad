"""The plan of a shot: frames, cuts, keyframes, and the hint strokes every frame gets.

One pass over the line art at working resolution: each frame's line coverage is kept (on disk, as
8-bit PNG, so a long video does not fill memory) and shot cuts are found. Keyframe hints are checked
(file, frame, size), then carried by motion to every frame of their shot (`propagate.propagate_hints`);
propagation never crosses a cut. The strokes of every frame are kept on disk for the colour pass.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .compose import strokes_at, working_size
from .errors import ConfigError, InputError
from .hints import HintSpec, assign_hints, read_strokes
from .sequence import FrameRef
from .sources import FolderSource, FrameSource

MISSING_HINT_MODES = ("auto", "error")


@dataclass
class PlanOptions:
    short_side: int | None = 512
    propagate: bool = True  # carry keyframe strokes to the other frames; False: keyframes only
    detect_cuts: bool | None = None  # None: for videos; a folder or pattern is taken as one shot, as delivered
    on_missing_hints: str = "auto"  # a shot without hints: "auto" colours it without, "error" stops

    def __post_init__(self) -> None:
        if self.on_missing_hints not in MISSING_HINT_MODES:
            raise ConfigError(f"--on-missing-hints must be auto or error, not {self.on_missing_hints!r}")


@dataclass
class Plan:
    frames: list[FrameRef]
    sizes: list[tuple[int, int]]  # full (height, width) per frame
    working_sizes: list[tuple[int, int]]
    shots: list[range]
    keyframes: dict[int, Path]
    unhinted_shots: list[range]
    workdir: Path
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def strokes_for(self, index: int) -> np.ndarray | None:
        """RGBA strokes at the frame's working size, or None when the frame gets no hints."""
        path = self.workdir / "strokes" / f"{index:06d}.png"
        if not path.exists():
            return None
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)

    def coverage_for(self, index: int) -> np.ndarray:
        """Line coverage (float32 [0,1]) at the frame's working size."""
        image = cv2.imread(str(self.workdir / "coverage" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        return (image / 255.0).astype(np.float32)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def strokes_to_working(strokes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Full-size RGBA strokes -> RGBA strokes at the working size (thin strokes kept, see compose.strokes_at)."""
    color, mask = strokes_at(strokes, size)
    rgba = np.zeros((*size, 4), np.uint8)
    rgba[..., :3] = np.round(color * 255.0).astype(np.uint8)
    rgba[..., 3] = (mask > 0) * 255
    return rgba


def _save(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    cv2.imwrite(str(path), image)


def build_plan(source: FrameSource, hints: Sequence[HintSpec | str | Path] = (),
               options: PlanOptions | None = None, progress: Callable[[str, int, int], None] | None = None,
               keep_coverage: bool = False) -> Plan:
    """Read the line art once, find cuts, check hints, and propagate strokes within each shot.

    A folder with no hints and no cut detection has nothing to plan: its frames are not read here (only
    by the colour pass), unless `keep_coverage` asks for the working-size line art (contact sheets).
    `progress(phase, done, total)`: phase "plan" while the frames are read, "propagate" while strokes are
    carried (frames of shots with nothing to carry count as done at once).
    """
    options = options or PlanOptions()
    # a folder's frames are known up front: check the hints before the long pass
    keyframes = assign_hints(list(hints), source.frames) if hints and isinstance(source, FolderSource) else None

    tmp = tempfile.TemporaryDirectory(prefix="alacgan-plan-")
    try:
        return _plan_into(tmp, source, hints, options, progress, keep_coverage, keyframes)
    except BaseException:  # a refused shot or a Ctrl-C while planning leaves no plan folder behind
        tmp.cleanup()
        raise


def _plan_into(tmp: tempfile.TemporaryDirectory, source: FrameSource, hints: Sequence[HintSpec | str | Path],
               options: PlanOptions, progress: Callable[[str, int, int], None] | None, keep_coverage: bool,
               keyframes: dict[int, Path] | None) -> Plan:
    """build_plan's work, in the scratch folder `tmp`, which the returned Plan owns; `keyframes`: the hints
    already assigned to a folder's frames, or None to assign them once the frames are read."""
    from .video import CutDetector

    workdir = Path(tmp.name)
    (workdir / "coverage").mkdir()
    (workdir / "strokes").mkdir()
    detect = options.detect_cuts if options.detect_cuts is not None else not isinstance(source, FolderSource)
    if not hints and not detect and not keep_coverage and isinstance(source, FolderSource):
        shots = [range(len(source.frames))]
        if options.on_missing_hints == "error":
            raise InputError("no hints given, and --on-missing-hints error asks for them")
        return Plan(list(source.frames), [], [], shots, {}, list(shots), workdir, _tmp=tmp)
    detector = CutDetector() if detect else None
    frames, sizes, wsizes, cuts = [], [], [], []
    total = len(source)
    for ref, lineart in source:
        index = len(frames)
        wsize = working_size(lineart.size, options.short_side)
        coverage = cv2.resize(lineart.coverage, (wsize[1], wsize[0]), interpolation=cv2.INTER_AREA) \
            if wsize != lineart.size else lineart.coverage
        coverage8 = np.round(np.clip(coverage, 0, 1) * 255).astype(np.uint8)
        _save(workdir / "coverage" / f"{index:06d}.png", coverage8)
        if detector is not None and detector.push(255 - coverage8) and index > 0:
            cuts.append(index)
        frames.append(ref)
        sizes.append(lineart.size)
        wsizes.append(wsize)
        if progress:
            progress("plan", index + 1, max(total, index + 1))
    if not frames:
        raise InputError("no frames to colour")
    if keyframes is None:
        keyframes = assign_hints(list(hints), frames) if hints else {}

    key_strokes = {i: strokes_to_working(read_strokes(p, sizes[i]), wsizes[i]) for i, p in keyframes.items()}
    bounds = [0, *cuts, len(frames)]
    shots = [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    plan = Plan(frames, sizes, wsizes, shots, dict(keyframes), [], workdir, _tmp=tmp)

    def keep(index: int, strokes: np.ndarray) -> None:  # a frame without strokes has no file
        if strokes[..., 3].any():
            _save(workdir / "strokes" / f"{index:06d}.png", strokes)

    def propagated(done: int) -> None:
        if progress:
            progress("propagate", done, len(frames))

    for shot in shots:
        keys = {i - shot.start: s for i, s in key_strokes.items() if i in shot}
        if not keys:
            if options.on_missing_hints == "error":
                raise InputError(f"shot at frames {frames[shot.start].label}..{frames[shot.stop - 1].label} has no "
                                 "hints; add a hint there or pass --on-missing-hints auto")
            plan.unhinted_shots.append(shot)
        elif options.propagate and len(shot) > 1:
            from .propagate import propagate_hints

            changed = next((i for i in shot if wsizes[i] != wsizes[shot.start]), None)
            if changed is not None:  # strokes cannot be carried between frames of different shapes
                raise InputError(f"{frames[changed].label} is {sizes[changed][1]}x{sizes[changed][0]} but "
                                 f"{frames[shot.start].label}, in the same shot, is {sizes[shot.start][1]}x"
                                 f"{sizes[shot.start][0]}: frames of one shot must share a shape")
            # coverages are read from disk as propagation reaches them, strokes written as they are final:
            # memory follows the longest stretch between keyframes, not the shot
            propagate_hints(_ShotCoverage(plan, shot), keys,
                            on_frame=lambda j, strokes, shot=shot: keep(shot.start + j, strokes),
                            progress=lambda done, shot=shot: propagated(shot.start + done))
        else:
            for j, strokes in keys.items():
                keep(shot.start + j, strokes)
        propagated(shot.stop)
    return plan


class _ShotCoverage(Sequence):
    """The working-size coverages of one shot, read from the plan's files when indexed."""

    def __init__(self, plan: Plan, shot: range) -> None:
        self.plan, self.shot = plan, shot

    def __len__(self) -> int:
        return len(self.shot)

    def __getitem__(self, j: int) -> np.ndarray:
        return self.plan.coverage_for(self.shot[j])


