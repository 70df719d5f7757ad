"""Atomic writes: every output appears complete or not at all (temp file in the same folder + rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .errors import OutputError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, data: object) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB/RGBA/grey uint8 or uint16 image (channels in RGB order)."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"could not encode a {image.shape} {image.dtype} image as PNG")
    return buffer.tobytes()


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB(A) or grey image as PNG, atomically."""
    write_bytes_atomic(path, encode_png(image))
