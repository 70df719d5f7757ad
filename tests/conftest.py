"""Shared fixtures: a tiny random model in our format, and small line-art sequences drawn with cv2."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from alacgan_batch.checkpoints import ModelSpec, save_model
from alacgan_batch.nets import Generator, GeneratorConfig, LineArtFeatures

TINY = GeneratorConfig(ngf=16, feature_channels=32, depths=(2, 2, 2, 2))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised reduced model (own line-art features), saved the project's way."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, Generator(TINY), LineArtFeatures(32, 8), ModelSpec(TINY, "lineart", 8, "tiny"))
    return path


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


@pytest.fixture
def frames_dir(tmp_path) -> Path:
    """Five 72x100 frames named shot.0001.png .. shot.0005.png (non-multiple-of-16, non-square)."""
    folder = tmp_path / "lineart"
    for i in range(1, 6):
        write_image(folder / f"shot.{i:04d}.png", draw_frame((72, 100), shift=i))
    return folder


def stroke_image(size: tuple[int, int], center: tuple[int, int], color: tuple[int, int, int], radius: int = 4):
    rgba = np.zeros((*size, 4), np.uint8)
    cv2.circle(rgba, center, radius, (*color, 255), -1)
    return rgba


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
