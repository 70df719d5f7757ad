"""Small drawing and file helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def draw_frame(size: tuple[int, int], shift: int = 0) -> np.ndarray:
    """White paper with a black-outlined rectangle and circle (uint8 grey)."""
    height, width = size
    image = np.full((height, width), 255, np.uint8)
    cv2.rectangle(image, (width // 8 + shift, height // 8), (width // 2 + shift, height * 3 // 4), 0, 2)
    cv2.circle(image, (width * 3 // 4, height // 2), min(height, width) // 6, 0, 2, lineType=cv2.LINE_AA)
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write RGB/RGBA/grey (numpy RGB order) with cv2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)
    return path


def stroke_image(size: tuple[int, int], center: tuple[int, int], color: tuple[int, int, int], radius: int = 4):
    rgba = np.zeros((*size, 4), np.uint8)
    cv2.circle(rgba, center, radius, (*color, 255), -1)
    return rgba


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `alacgan ARGS` in-process as a user would; returns (exit code, stdout, stderr)."""
    import sys

    from alacgan_batch import cli

    old_argv = sys.argv
    sys.argv = ["alacgan", *map(str, args)]
    cli._state["debug"] = False
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err
