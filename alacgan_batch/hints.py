"""Colour hints (§3.4): stroke images -> the 4-channel hint tensor H, and which hint belongs to which frame.

A hint image is RGBA (strokes opaque on a transparent background) the size of its frame; an RGB image
with a white background is accepted too (non-white pixels are strokes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .errors import InputError
from .regions import drop_slips, region_fill, segment_regions
from .sequence import FrameRef, frame_number, is_image, list_images, read_image

HINT_SCALE = 4  # §3.4: hints live at quarter resolution
# Beyond the paper: weight (mask channel) of hint pixels spread from a stroke over its closed region; drawn
# strokes weigh 1. Below 1 so the network can tell a drawn colour from a guessed one (a region may leak).
SPREAD_WEIGHT = 0.5


def strokes_to_hint(rgb: torch.Tensor, mask: torch.Tensor, thin: bool = True,
                    spread: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """§3.4: stroke colours Bx3xHxW in [0,1] and stroke mask Bx1xHxW in {0,1} -> hint Bx4x(H/4)x(W/4).

    The stroke image is downsampled to quarter resolution by max-pooling, then half of its pixels are
    removed "with an interval of one": a checkerboard (pixels with odd x+y) is zeroed in colour and mask,
    which keeps the strokes' extent in both directions while matching the sparse training hints.
    Channels 0-2 are the colour in [-1, 1] times the mask, channel 3 is the mask.

    `spread` (colours Bx3xHxW, mask Bx1xHxW from `spread_strokes`) fills every quarter-resolution pixel
    that lies wholly inside a region with strokes and holds no stroke, at weight SPREAD_WEIGHT.
    """
    mask = (mask > 0.5).to(rgb.dtype)
    color = F.max_pool2d(rgb * mask, HINT_SCALE)
    down_mask = F.max_pool2d(mask, HINT_SCALE)
    if thin:
        h, w = down_mask.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, device=rgb.device), torch.arange(w, device=rgb.device),
                                indexing="ij")
        down_mask = down_mask * ((yy + xx) % 2 == 0).to(rgb.dtype)
    if spread is not None:
        fill_rgb, fill_mask = spread
        fill_mask = (fill_mask > 0.5).to(rgb.dtype)
        # only blocks wholly inside a filled region: a block on a line would average two colours
        inside = (F.avg_pool2d(fill_mask, HINT_SCALE) > 0.999) & (down_mask == 0)
        fill_color = F.avg_pool2d(fill_rgb * fill_mask, HINT_SCALE)
        color = torch.where(inside, fill_color, color)
        down_mask = torch.where(inside, torch.full_like(down_mask, SPREAD_WEIGHT), down_mask)
    return torch.cat([(color * 2 - 1) * down_mask, down_mask], dim=1)


def spread_strokes(rgb: np.ndarray, mask: np.ndarray, sketch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beyond the paper: each closed region of the sketch that holds strokes takes their colour everywhere.

    rgb HxWx3 in [0,1], mask HxW, sketch HxW in [0,1] (1 = paper) -> (colour HxWx3 float32, filled HxW
    float32) for `strokes_to_hint(spread=...)`. Regions are `regions.segment_regions` of the sketch (gaps
    closed), coloured by `regions.region_fill` (the colour with most stroke pixels in the region). A
    single stroke then reaches all of a large region, such as a background, which a network of the
    starter's size does not learn to do from sparse hints alone.
    """
    labels = segment_regions(np.clip(1.0 - sketch, 0.0, 1.0))
    strokes = np.zeros(mask.shape + (4,), np.uint8)
    strokes[..., :3] = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    strokes[..., 3] = np.where(mask > 0.5, 255, 0).astype(np.uint8)
    fill, filled = region_fill(labels, drop_slips(labels, strokes))  # a slip over a line fills nothing beyond it
    return fill.astype(np.float32) / 255.0, filled.astype(np.float32)


def empty_hint(batch: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A hint with no strokes for frames of height x width (multiples of 4)."""
    return torch.zeros(batch, 4, height // HINT_SCALE, width // HINT_SCALE, device=device)


# --- hint files and the frames they belong to -----------------------------------------------------




WHITE_LEVEL = 0.98  # in an RGB hint image, pixels at least this white in every channel are paper
_AT_FRAME = re.compile(r"^(?P<path>.+)@(?P<frame>-?\d+)$")


@dataclass(frozen=True)
class HintSpec:
    """A hint file and, when written as `key.png@12`, the frame it names."""

    path: Path
    frame: int | None = None

    @classmethod
    def parse(cls, text: str | Path) -> HintSpec:
        match = _AT_FRAME.match(str(text))
        if match and not Path(str(text)).exists():
            return cls(Path(match.group("path")), int(match.group("frame")))
        return cls(Path(text))


def _expand(specs: list[HintSpec]) -> list[tuple[HintSpec, bool]]:
    """Folders become one spec per image; the flag says whether a lone unnumbered file may go to frame 0."""
    out = []
    for spec in specs:
        if spec.path.is_dir():
            if spec.frame is not None:
                raise InputError(f"--hints {spec.path}@{spec.frame}: a folder of hints cannot name one frame")
            images = sorted(list_images(spec.path))
            if not images:
                raise InputError(f"hint folder {spec.path} holds no images")
            out += [(HintSpec(p), False) for p in images]
        elif is_image(spec.path):
            out.append((spec, True))
        elif spec.path.exists():
            raise InputError(f"hint {spec.path} is not a PNG, JPEG or TIFF image")
        else:
            raise InputError(f"hint not found: {spec.path}")
    return out


def hint_files(specs: Sequence[HintSpec | str | Path]) -> set[Path]:
    """The resolved path of every hint file `specs` name (folders expanded): inputs no output may replace."""
    parsed = [s if isinstance(s, HintSpec) else HintSpec.parse(s) for s in specs]
    return {spec.path.resolve() for spec, _ in _expand(parsed)}


def assign_hints(specs: list[HintSpec | str | Path], frames: list[FrameRef]) -> dict[int, Path]:
    """Which hint file belongs to which frame (by position in `frames`).

    `key.png@N` names frame number N (or the N-th frame, from 0, when frames carry no numbers); otherwise
    the frame with the same file name, then the frame whose number the hint's name carries; a single
    unnumbered hint file belongs to the first frame.
    """
    parsed = [s if isinstance(s, HintSpec) else HintSpec.parse(s) for s in specs]
    expanded = _expand(parsed)
    by_name = {f.path.stem: f for f in frames}
    by_number = {f.number: f for f in frames if f.number is not None}
    numbered = bool(by_number)
    assigned: dict[int, Path] = {}
    for spec, lone_allowed in expanded:
        if spec.frame is not None:
            target = by_number.get(spec.frame) if numbered else (
                frames[spec.frame] if 0 <= spec.frame < len(frames) else None)
            if target is None:
                raise InputError(f"hint {spec.path}@{spec.frame}: the sequence has no frame {spec.frame}")
        elif spec.path.stem in by_name:
            target = by_name[spec.path.stem]
        elif frame_number(spec.path.name) is not None and numbered:
            number = frame_number(spec.path.name)
            target = by_number.get(number)
            if target is None:
                raise InputError(f"hint {spec.path} is for frame {number}, which the sequence does not have")
        elif lone_allowed and len(expanded) == 1:
            target = frames[0]
        else:
            raise InputError(f"cannot tell which frame hint {spec.path} belongs to: give it a frame's name or "
                             f"number, or write {spec.path}@N")
        if target.index in assigned:
            raise InputError(f"two hints for {target.label}: {assigned[target.index]} and {spec.path}")
        assigned[target.index] = spec.path
    return assigned


def read_strokes(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A hint image as HxWx4 uint8 RGBA strokes (alpha 255 on strokes, 0 elsewhere), checked against the frame size.

    RGBA: opaque pixels are strokes. RGB/grey: pixels that are not paper-white are strokes.
    """
    image = read_image(path)
    if image.shape[:2] != tuple(size):
        raise InputError(f"hint {path} is {image.shape[1]}x{image.shape[0]} but its frame is {size[1]}x{size[0]}")
    if image.shape[2] in (2, 4):
        mask = image[..., -1] >= 0.5
        color = image[..., :-1]
    else:
        color = image
        mask = color.min(axis=2) < WHITE_LEVEL
    if not mask.any():  # most often an export without its alpha, or of the wrong layer: it would blank its frame
        raise InputError(f"hint {path} has no strokes (every pixel is transparent, or paper-white without alpha)")
    if color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    rgba = np.zeros((*image.shape[:2], 4), np.uint8)
    rgba[..., :3] = np.round(color * 255.0).astype(np.uint8) * mask[..., None]
    rgba[..., 3] = mask * 255
    return rgba
