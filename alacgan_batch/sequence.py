"""Frames in: finding the frames of a shot, ordering them by frame number, and reading images.

This is the project's one image reader (`read_image`); everything that opens a PNG/JPEG/TIFF goes here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
LINE_THRESHOLD = 0.5  # coverage at which a pixel counts as a drawn line (kept exactly as drawn)
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_number(name: str) -> int | None:
    """The frame number a file name carries: the last run of digits in its stem (`shot.0012.png` -> 12)."""
    match = _NUMBER.search(Path(name).stem)
    return int(match.group(1)) if match else None


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class FrameRef:
    """One frame of a sequence: its file, its frame number (if the name has one) and its position."""

    path: Path
    number: int | None
    index: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"frame {self.number}" if self.number is not None else f"frame {self.name}"


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    return [p for p in Path(folder).iterdir() if is_image(p)]


def discover_frames(source: Path) -> list[FrameRef]:
    """The frames of a folder (or a single image), ordered by frame number, then by natural name order."""
    source = Path(source)
    if source.is_file():
        paths = [source]
    elif source.is_dir():
        paths = list_images(source)
        if not paths:
            raise InputError(f"no frames in {source}: expected PNG, JPEG or TIFF images")
    else:
        raise InputError(f"input not found: {source}")
    paths.sort(key=lambda p: (frame_number(p.name) is None, frame_number(p.name) or 0, _natural_key(p.name)))
    return [FrameRef(p, frame_number(p.name), i) for i, p in enumerate(paths)]


def read_image(path: Path) -> np.ndarray:
    """An image as float32 HxWxC in [0, 1], C = 1 (grey), 3 (RGB) or 4 (RGBA); 8- or 16-bit sources."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot read {path}: not a readable image (corrupt or truncated?)")
    if image.dtype == np.uint8:
        scaled = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        scaled = image.astype(np.float32) / 65535.0
    elif image.dtype in (np.float32, np.float64):
        scaled = np.clip(image.astype(np.float32), 0.0, 1.0)
    else:
        raise InputError(f"cannot read {path}: unsupported pixel type {image.dtype}")
    if scaled.ndim == 2:
        return scaled[..., None]
    if scaled.shape[2] == 3:
        return cv2.cvtColor(scaled, cv2.COLOR_BGR2RGB)
    if scaled.shape[2] == 4:
        return cv2.cvtColor(scaled, cv2.COLOR_BGRA2RGBA)
    raise InputError(f"cannot read {path}: {scaled.shape[2]} channels")


@dataclass
class LineArt:
    """A line-art frame, flattened over white paper.

    `rgb` is what the artist sees (float, [0,1]); `coverage` says how much of each pixel is line
    (1 - min(R, G, B), so coloured trace lines count as lines); `alpha` is the input's alpha, if any.
    """

    rgb: np.ndarray
    coverage: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def line_mask(self) -> np.ndarray:
        return self.coverage >= LINE_THRESHOLD

    def rgb8(self) -> np.ndarray:
        return np.round(self.rgb * 255.0).astype(np.uint8)


def lineart_from_array(image: np.ndarray, bit_depth: int = 8) -> LineArt:
    """LineArt from a float image HxWxC in [0,1] (grey, RGB or RGBA; lines may live in the alpha channel)."""
    if image.ndim == 2:
        image = image[..., None]
    alpha = None
    if image.shape[2] in (2, 4):  # grey+alpha or RGBA: composite over white paper
        alpha = image[..., -1]
        color = image[..., :-1]
        color = color * alpha[..., None] + (1.0 - alpha[..., None])
    else:
        color = image
    if color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    color = np.ascontiguousarray(color, dtype=np.float32)
    coverage = 1.0 - color.min(axis=2)
    return LineArt(color, coverage, alpha, bit_depth)


def read_lineart(path: Path) -> LineArt:
    image = read_image(path)
    return lineart_from_array(image, bit_depth=16 if _is_16bit(path) else 8)


def _is_16bit(path: Path) -> bool:
    # PNG IHDR bit depth byte; other formats are read as 8-bit for output purposes
    with open(path, "rb") as handle:
        head = handle.read(25)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 25 and head[24] == 16
