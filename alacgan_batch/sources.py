"""Where frames come from: a folder or pattern of images, or a video. One interface for both.

A source yields `(FrameRef, LineArt)` in order and can be iterated more than once (the plan reads the
line art once to follow the motion, the colour pass reads it again), so a long video is never held in
memory: it is decoded twice, streaming.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sequence import (
    FrameRef,
    LineArt,
    discover_frames,
    frame_number,
    lineart_from_array,
    list_images,
    read_lineart,
    sequence_in_folder,
)


@dataclass
class FolderSource:
    """Frames of a folder, a single image, or a sequence pattern (`shot.####.png`)."""

    frames: list[FrameRef]
    root: Path
    input_alpha: bool = False
    kind: str = "sequence"

    @classmethod
    def open(cls, source: Path | str, frames: str | None = None, on_missing: str = "error") -> FolderSource:
        refs = discover_frames(source, frames=frames, on_missing=on_missing)
        root = Path(source) if Path(source).is_dir() else (refs[0].path.parent if refs else Path(source).parent)
        return cls(list(refs), root)

    @classmethod
    def open_selection(cls, source: Path | str, frames: str, on_missing: str = "error"
                       ) -> tuple[FolderSource, set[int]]:
        """`--frames`: the whole sequence the frames are selected from, and the positions of the selected ones.

        A run plans over the whole sequence (keyframes outside the selection, strokes carried through the frames
        around it, the stabilizer's lead-in) and writes only the selected frames, so they come out as a run over
        the whole sequence writes them. The selection is checked as `open` checks it; holes outside it are
        bridged, and an unnumbered image beside a padded sequence is left out.
        """
        chosen = {ref.path.resolve() for ref in discover_frames(source, frames=frames, on_missing=on_missing)}
        found = sequence_in_folder(list_images(Path(source))) if Path(source).is_dir() else None
        if found is not None:  # a folder holding one padded sequence: that sequence (a stray sheet is not the shot's)
            whole = cls([FrameRef(p, frame_number(p.name), i) for i, p in enumerate(found[0])], Path(source))
        else:  # what a run without --frames reads
            whole = cls.open(source, on_missing="skip")
        return whole, {ref.index for ref in whole.frames if ref.path.resolve() in chosen}

    def __iter__(self) -> Iterator[tuple[FrameRef, LineArt]]:
        for ref in self.frames:
            yield ref, read_lineart(ref.path)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def inputs(self) -> set[Path]:
        return {f.path.resolve() for f in self.frames}


@dataclass
class VideoSource:
    """Frames of a video, decoded one at a time; frame numbers count from 0 in video order."""

    path: Path
    info: object = field(repr=False)
    frames: list[FrameRef] | None = None  # known after the first pass
    kind: str = "video"

    @classmethod
    def open(cls, path: Path | str) -> VideoSource:
        from .video import probe

        path = Path(path)
        return cls(path, probe(path))

    @property
    def root(self) -> Path:
        return self.path.parent

    def __iter__(self) -> Iterator[tuple[FrameRef, LineArt]]:
        from .video import VideoReader

        refs = []
        with VideoReader(self.path) as reader:
            for index, image in enumerate(reader):
                ref = FrameRef(self.path, index, index)
                refs.append(ref)
                yield ref, lineart_from_array(image.astype(np.float32) / 255.0)
        self.frames = refs

    def __len__(self) -> int:
        if self.frames is not None:
            return len(self.frames)
        return self.info.frame_count or 0

    @property
    def inputs(self) -> set[Path]:
        return {self.path.resolve()}


FrameSource = FolderSource | VideoSource
