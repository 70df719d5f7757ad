"""Frames in: finding the frames of a shot, ordering them by frame number, and reading images.

This is the project's one image reader (`read_image`); everything that opens a PNG/JPEG/TIFF goes here.

A shot is a folder, a single image, or a frame pattern parsed by fileseq:

- `shot.####.png`: one digit per `#` (4 here, as in Nuke/Houdini); a lone `#` is fileseq's 4-digit padding,
  so the strings fileseq prints (`shot.1001-1100#.png`) read back the same;
- `shot.@@@@.png` (one digit per `@`), `shot.%04d.png` (printf), `shot.$F4.png` (Houdini);
- an explicit range before the padding: `shot.1001-1100#.png`, `shot.1-50x2@@@@.png`.

Frames keep their real numbers (1001, 1002, ...); holes in a range are reported, never renumbered.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import fileseq
import numpy as np

from .errors import ConfigError, InputError, OutputError

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


class FrameList(list):
    """The frames `discover_frames` found: a plain list of FrameRef, plus what was asked for but absent.

    `missing` holds the frame numbers inside the requested range that have no file (only ever non-empty
    with `on_missing="skip"`); `pattern` names the sequence (`shot.####.png`) when there is one.
    """

    def __init__(self, frames: Iterable[FrameRef] = (), missing: Iterable[int] = (), pattern: str | None = None):
        super().__init__(frames)
        self.missing: list[int] = sorted(set(missing))
        self.pattern = pattern


ON_MISSING = ("error", "skip")


def discover_frames(source: Path | str, frames: str | None = None, on_missing: str = "error") -> FrameList:
    """The frames of a folder, a single image or a frame pattern, ordered by frame number.

    `frames` selects frame numbers in fileseq FrameSet syntax (`1001-1100`, `1001-1100x2`, `1,5,9-12`).
    Numbers inside the wanted range without a file are missing: `on_missing="error"` raises InputError
    naming them, `"skip"` returns the frames present and lists the rest in the result's `.missing`.
    The wanted range is `frames`, else a pattern's explicit range, else first..last frame on disk (for a
    folder only when its frames form one zero-padded sequence such as shot.0001.png, shot.0002.png, ...;
    loose names like f1.png, f10.png are just ordered).
    """
    if on_missing not in ON_MISSING:
        raise ConfigError(f"unknown on_missing {on_missing!r}: use one of {', '.join(ON_MISSING)}")
    wanted = _parse_frameset(frames) if frames is not None else None
    text = str(source)
    source = Path(source)
    if source.is_file() or source.is_dir():
        refs, missing, pattern = _discover_paths(source, wanted)
        label = pattern or str(source)
    elif is_pattern(text):
        refs, missing = _discover_pattern(text, wanted)
        pattern, label = text, Path(text).name
    else:
        raise InputError(f"input not found: {source}")
    if missing and on_missing == "error":
        raise InputError(f"{_missing_text(missing)} in {label}")
    if not refs:
        raise InputError(f"none of frames {frames} in {label}" if frames is not None else f"no frames in {label}")
    return FrameList(refs, missing, pattern)


def missing_frames(source: Path | str, frames: str | None = None) -> list[int]:
    """Frame numbers missing from `source` (see `discover_frames`), without raising for them."""
    return discover_frames(source, frames, on_missing="skip").missing


def _parse_frameset(frames: str) -> set[int]:
    try:
        numbers = set(fileseq.FrameSet(str(frames).replace(" ", "")))
    except fileseq.MaxSizeException:
        raise ConfigError(f"frame range {frames!r} spans more than {fileseq.constants.MAX_FRAME_SIZE:,} frames; "
                          "give the range the shot has") from None
    except (fileseq.FileSeqException, ValueError):
        raise ConfigError(f"cannot read frame range {frames!r}: use e.g. 1001-1100, 1001-1100x2 or 1,5,9-12") \
            from None
    if not numbers:
        raise ConfigError(f"frame range {frames!r} selects no frames")
    return {int(n) for n in numbers}


def _discover_paths(source: Path, wanted: set[int] | None) -> tuple[list[FrameRef], list[int], str | None]:
    """A folder or a single image: every image, ordered by number then natural name (as always)."""
    if source.is_file():
        paths = [source]
    else:
        paths = list_images(source)
        if not paths:
            raise InputError(f"no frames in {source}: expected PNG, JPEG or TIFF images")
    paths.sort(key=lambda p: (frame_number(p.name) is None, frame_number(p.name) or 0, _natural_key(p.name)))
    _check_one_sequence(source, paths)
    pattern, missing = None, []
    if wanted is not None:
        # explicit selection: by number, whatever the names look like
        paths = [p for p in paths if frame_number(p.name) in wanted]
        missing = sorted(wanted - {frame_number(p.name) for p in paths})
    elif source.is_dir():
        found = frame_sequences(paths)
        _refuse_strays(source, paths, found)
        if found:  # the folder is one zero-padded sequence: first..last frame on disk is the range to check
            present = {frame_number(p.name) for p in paths}
            missing = sorted(set(range(min(present), max(present) + 1)) - present)
            pattern = str(source / found[0][1]) if _pattern_can_name(*found[0]) else None
    return [FrameRef(p, frame_number(p.name), i) for i, p in enumerate(paths)], missing, pattern


def _check_one_sequence(source: Path, paths: list[Path]) -> None:
    """Two files with one frame number (shot.1 and shot.0001, or bg.0001 and shot.0001) are two sequences: they
    would be interleaved into one shot and coloured onto one output name."""
    numbers = [frame_number(p.name) for p in paths]
    seen: dict[int, Path] = {}
    for path, number in zip(paths, numbers, strict=True):
        if number is not None and number in seen:
            raise InputError(f"{seen[number].name} and {path.name} in {source} are both frame {number}: give a "
                             "pattern (e.g. 'shot.####.png') to choose one sequence")
        if number is not None:
            seen[number] = path


def frame_sequences(paths: list[Path]) -> list[tuple[list[Path], str]]:
    """The zero-padded frame sequences among `paths` (one folder's images): each its files in frame order and its
    pattern (`shot.####.png`). Files are of one sequence when their names differ only in the frame number; a
    sequence is zero-padded as `_padded` says. A single file is one only when it is the folder's one numbered
    image and its number starts with a 0 (`shot.0001.png` beside `ref.png`; not `b05.png` among `a1`, `a2`)."""
    groups: dict[tuple[str, str], list[tuple[Path, re.Match]]] = {}
    for path in paths:
        match = _NUMBER.search(path.stem)
        if match:
            key = (path.stem[:match.start()], path.stem[match.end():] + path.suffix.lower())
            groups.setdefault(key, []).append((path, match))
    found = []
    for (head, _), group in groups.items():
        digits = [match.group(1) for _, match in group]
        if _padded(digits) and (len(group) > 1 or (len(groups) == 1 and digits[0].startswith("0"))):
            group.sort(key=lambda item: int(item[1].group(1)))
            # the pattern as the files spell it (`.PNG`): the key's lower-cased extension would match none of them
            first, match = group[0]
            tail = first.stem[match.end():] + first.suffix
            found.append(([path for path, _ in group], f"{head}{'#' * min(len(d) for d in digits)}{tail}"))
    return found


def sequence_in_folder(paths: list[Path]) -> tuple[list[Path], str] | None:
    """The one zero-padded frame sequence among `paths` (one folder's images), in frame order, and its pattern
    (`shot.####.png`); images of other names are left out. None when there is no such sequence, or several."""
    found = frame_sequences(paths)
    return found[0] if len(found) == 1 else None


def _refuse_strays(source: Path, paths: list[Path], found: list[tuple[list[Path], str]]) -> None:
    """An image beside a zero-padded frame sequence that is not one of its frames (a reference sheet, a thumbnail,
    `model_v12.png`) would be coloured as one of the shot's frames, strokes carried into it, and the sequence's
    holes unchecked; two sequences (`bg.####`, `fg.####`) would be interleaved into one shot. Both are refused,
    naming the pattern to give. Folders of loosely named drawings (a2, a10, b) hold no such sequence and are
    coloured as they are. `found`: the folder's frame_sequences."""
    if len(found) > 1:
        patterns = ", ".join(pattern for _, pattern in found)
        raise InputError(f"{source} holds {len(found)} frame sequences ({patterns}): give the pattern of the one "
                         f"to colour, e.g. '{source / found[0][1]}'")
    if found and len(found[0][0]) < len(paths):
        frames, pattern = found[0]
        stray = next(p for p in paths if p not in set(frames))
        what = "has no frame number" if frame_number(stray.name) is None else "is not a frame of its name"
        choose = f", or give the pattern '{source / pattern}'" if _pattern_can_name(frames, pattern) else ""
        raise InputError(f"{stray.name} in {source} {what}, beside the frame sequence {pattern}: move it out{choose}")


def _pattern_can_name(frames: list[Path], pattern: str) -> bool:
    """Can a pattern argument name all these frames? Only with the number last before the extension
    (shot.####.png, not shot_####_color.png: a sequence's frames may carry text after it, a pattern may not) and
    one spelling of the extension (a pattern's `.PNG` finds no `.png`)."""
    return Path(pattern).stem.endswith("#") and len({p.suffix for p in frames}) == 1


def _padded(digits: list[str]) -> bool:
    """Frame numbers as written (`0012`) zero-padded to one width? Numbers that outgrow it (9999 -> 10000) carry
    no leading zero; unpadded names (f1, f9, f10) are numbered files, not a fixed-width frame sequence."""
    width = min(len(d) for d in digits)
    return width > 1 and all(len(d) == width or not d.startswith("0") for d in digits)


def _discover_pattern(text: str, wanted: set[int] | None) -> tuple[list[FrameRef], list[int]]:
    pattern = parse_pattern(text)
    folder = Path(pattern.dirname() or ".")
    label = Path(text).name
    if not folder.is_dir():
        raise InputError(f"input not found: folder {folder} of {label}")
    if pattern.extension().lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"{label}: frames must be PNG, JPEG or TIFF images")
    in_range = {int(n) for n in pattern.frameSet()} if pattern.frameSet() is not None else None
    if wanted is not None and in_range is not None and not wanted <= in_range:
        raise ConfigError(f"frames {_compact(sorted(wanted - in_range))} are outside {label}")
    try:
        # strict padding: shot.####.png finds shot.0999.png and shot.10000.png but not shot.01000.png
        on_disk = fileseq.FileSequence.findSequenceOnDisk(
            str(folder / f"{pattern.basename()}{pattern.padding()}{pattern.extension()}"),
            strictPadding=True, pad_style=pattern.padStyle())
    except fileseq.FileSeqException:
        on_disk = None
    found: dict[int, Path] = {}
    if on_disk is not None and on_disk.frameSet() is not None:
        for number in on_disk.frameSet():
            path = Path(on_disk.frame(number))
            if is_image(path):
                found[int(number)] = path
    required = wanted if wanted is not None else in_range
    if required is None:
        if not found:
            raise InputError(f"no frames match {label} in {folder}")
        required = set(range(min(found), max(found) + 1))  # holes on disk count as missing
    numbers = sorted(n for n in found if n in required)
    missing = sorted(required - set(found))
    return [FrameRef(found[n], n, i) for i, n in enumerate(numbers)], missing


def _compact(numbers: list[int], limit: int = 12) -> str:
    """`[1003, 1007, 1008, 1009]` -> `1003, 1007-1009` (runs; long lists are cut after `limit` runs)."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    if len(parts) > limit:
        parts = [*parts[:limit], "..."]
    return ", ".join(parts)


def _missing_text(numbers: list[int]) -> str:
    word = "frame" if len(numbers) == 1 else f"{len(numbers)} frames" if len(numbers) > 3 else "frames"
    return f"missing {word} {_compact(numbers)}"


# --- frame patterns ------------------------------------------------------------------------------


def _pad_style(name: str) -> object:
    """fileseq's padding style for a pattern name: a run of `#` is one digit each, a lone `#` is 4 digits."""
    return fileseq.PAD_STYLE_HASH1 if "##" in name else fileseq.PAD_STYLE_HASH4


def is_pattern(text: Path | str) -> bool:
    """True when the file name holds frame padding (`####`, `@@@@`, `%04d`, `$F4`), optionally with a range."""
    name = Path(str(text)).name
    if not name:
        return False
    try:
        sequence = fileseq.FileSequence(name, pad_style=_pad_style(name))
    except (fileseq.FileSeqException, ValueError):
        return False
    padding = sequence.padding()
    # fileseq also parses plain numbered names (shot.1001.png) as one-frame sequences with implied padding;
    # only padding written in the name makes a pattern
    return bool(padding) and name.endswith(padding + sequence.extension())


def parse_pattern(text: Path | str) -> fileseq.FileSequence:
    """The fileseq sequence of a pattern (see `is_pattern`); ConfigError when `text` is not one."""
    text = str(text)
    if not is_pattern(text):
        raise ConfigError(f"{text} is not a frame pattern: expected e.g. shot.####.png or shot.%04d.png")
    return fileseq.FileSequence(text, pad_style=_pad_style(Path(text).name))


def output_path(frame: FrameRef, output: Path | str, default_ext: str = ".png") -> Path:
    """Where a frame's result goes: the frame's number in an output pattern, else `<folder>/<stem><ext>`.

    `out/shot.####.png` + frame 1001 -> out/shot.1001.png (the pattern's padding and extension; a pattern
    without an extension gets `default_ext`); a folder `out` + shot.1001.tif -> out/shot.1001.png.
    """
    if not is_pattern(output):
        return Path(output) / f"{frame.path.stem}{default_ext}"
    pattern = parse_pattern(output)
    name = Path(str(output)).name
    if frame.number is None:
        raise OutputError(f"{frame.name} has no frame number to put in {name}; write to a folder instead")
    frame_set = pattern.frameSet()
    if frame_set is not None and frame.number not in frame_set:
        raise OutputError(f"frame {frame.number} is outside the range of {name}")
    path = Path(pattern.frame(frame.number))
    return path if pattern.extension() else path.with_name(path.name + default_ext)


def read_image(path: Path) -> np.ndarray:
    """An image as float32 HxWxC in [0, 1], C = 1 (grey), 3 (RGB) or 4 (RGBA); 8- or 16-bit sources."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except (cv2.error, MemoryError) as exc:
        # a header claiming a huge size (50000x50000) trips OpenCV's pixel limit or exhausts memory
        raise InputError(f"cannot read {path}: not a readable image (size in its header too large, or "
                         "corrupt)") from exc
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
    return lineart_from_array(image, bit_depth=bit_depth(path))


def bit_depth(path: Path | str) -> int:
    """16 for PNG/TIFF files with more than 8 bits per sample, else 8 (the depth outputs are written at).

    Reads only the header (PNG IHDR, TIFF BitsPerSample); other formats are 8-bit as far as cv2 is concerned.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(26)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 25:
                return 16 if head[24] > 8 else 8
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                bits = _tiff_bits_per_sample(handle, "<" if head[:2] == b"II" else ">")
                if bits is not None:
                    return 16 if bits > 8 else 8
            elif head[:4] not in (b"II+\x00", b"MM\x00+"):
                return 8
    except (OSError, struct.error):
        return 8
    # BigTIFF or an unusual header: ask the decoder
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (cv2.error, MemoryError):
        return 8  # unreadable: read_image reports it
    return 8 if image is None or image.dtype == np.uint8 else 16


def _tiff_bits_per_sample(handle, order: str) -> int | None:
    """BitsPerSample (tag 258) of a classic TIFF's first image; 1 when absent, as TIFF 6.0 says."""
    handle.seek(4)
    (offset,) = struct.unpack(order + "I", handle.read(4))
    handle.seek(offset)
    (count,) = struct.unpack(order + "H", handle.read(2))
    for _ in range(count):
        tag, kind, values, field = struct.unpack(order + "HHI4s", handle.read(12))
        if tag != 258:
            continue
        if kind != 3:  # BitsPerSample is SHORT; anything else is a header we do not trust
            return None
        if values <= 2:  # fits in the entry itself
            return struct.unpack(order + "H", field[:2])[0]
        handle.seek(struct.unpack(order + "I", field)[0])
        return struct.unpack(order + "H", handle.read(2))[0]
    return 1
