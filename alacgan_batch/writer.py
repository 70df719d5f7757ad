"""Atomic writes: every output appears complete or not at all (temp file in the same folder + rename)."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .errors import OutputError

PARTIAL = ".partial"  # temp files are `.<stem>.@<host>-<pid>.<random>.partial<suffix>`, hidden, beside their target
# a temp file of another machine (or of no known owner) is taken as left behind once untouched this long: a live
# run writes its temp video with every frame, and a frame's temp PNG within a second
STALE_PARTIAL_SECONDS = 3600
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
_OWNER = re.compile(r"\.@([A-Za-z0-9_]+)-(\d+)\.")


def _file_mode() -> int:
    """The mode a plain open() would give a new file (0666 less the umask); mkstemp's 0600 would hide outputs
    from other users and render-farm accounts."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # read once: os.umask can only be read by setting it, which is not thread-safe


def temp_beside(path: Path) -> Path:
    """A new empty temp file in `path`'s folder (created with the folder if needed), named as a partial of it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.@{_HOST}-{os.getpid()}.",
                                        suffix=f"{PARTIAL}{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write into {path.parent} ({exc.strerror or exc})") from exc
    os.close(fd)
    return Path(tmp_name)


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temp file the usual permissions and put it in place in one step (rename)."""
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)


def _left_behind(path: Path) -> bool:
    """Is this temp file one no live run is writing? Its owner (this machine, a process that is gone) says so;
    one of another machine's runs, or of no known owner, once it has not been touched for STALE_PARTIAL_SECONDS.
    Another run writing into the same folder keeps its temp file."""
    owner = _OWNER.search(path.name)
    if owner is not None and owner.group(1) == _HOST:
        pid = int(owner.group(2))
        if pid == os.getpid():
            return False  # this process's own: written now by another call, or removed by its own cleanup
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, another user's
            return False
        return False
    try:
        return time.time() - path.stat().st_mtime > STALE_PARTIAL_SECONDS
    except OSError:
        return False


def remove_partials(folder: Path, stem: str = "*", recursive: bool = False) -> list[Path]:
    """Delete temp files that a killed run left in `folder` (those of outputs named `stem`); returns them.
    Temp files of runs still writing (into the same folder, or into one below it) are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{stem}.*{PARTIAL}*"
    stale = [p for p in (folder.rglob(pattern) if recursive else folder.glob(pattern)) if _left_behind(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        publish(tmp, path)
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
