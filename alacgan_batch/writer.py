"""Atomic writes: every output appears complete or not at all (temp file in the same folder + rename)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .errors import OutputError

PARTIAL = ".partial"  # temp files are `.<stem>.<random>.partial<suffix>`, hidden, beside their target
# A live run holds a lock (flock) on each of its temp files until it publishes or discards it; a temp file no one
# holds was left by a run that was killed. The lock works across processes, containers and PID namespaces of one
# machine, and on NFS. Where a filesystem has no locks, a temp file untouched this long is taken as left behind
# (a live run writes its temp video with every frame, and a frame's temp PNG within a second):
STALE_PARTIAL_SECONDS = 3600
FRESH_PARTIAL_SECONDS = 2.0  # never cleared younger: the instant between creating a temp file and locking it
_held: dict[Path, int] = {}  # this process's temp files -> the descriptor holding each one's lock
_held_lock = threading.Lock()


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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{PARTIAL}{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write into {path.parent} ({exc.strerror or exc})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # a filesystem without locks: other runs fall back to the file's age
    with _held_lock:
        _held[Path(tmp_name)] = fd
    return Path(tmp_name)


def _release(tmp: Path) -> None:
    with _held_lock:
        fd = _held.pop(Path(tmp), None)
    if fd is not None:
        os.close(fd)


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temp file the usual permissions and put it in place in one step (rename)."""
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)
    _release(tmp)


def discard(tmp: Path) -> None:
    """Remove a temp file that will not be published, and let go of it."""
    Path(tmp).unlink(missing_ok=True)
    _release(tmp)


def _left_behind(path: Path) -> bool:
    """Is this temp file one no live run is writing? None holds its lock (see PARTIAL); on a filesystem without
    locks, it has not been touched for STALE_PARTIAL_SECONDS."""
    try:
        age = time.time() - path.stat().st_mtime
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if age < FRESH_PARTIAL_SECONDS:
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False  # a live run holds it
    except OSError:
        return age > STALE_PARTIAL_SECONDS
    finally:
        os.close(fd)


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
        discard(tmp)  # after publish: only lets go (the temp name is gone)


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
