"""Shared fixtures: a tiny random model in our format, and a small line-art sequence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import draw_frame, write_image

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


@pytest.fixture
def frames_dir(tmp_path) -> Path:
    """Five 72x100 frames named shot.0001.png .. shot.0005.png (non-multiple-of-16, non-square)."""
    folder = tmp_path / "lineart"
    for i in range(1, 6):
        write_image(folder / f"shot.{i:04d}.png", draw_frame((72, 100), shift=i))
    return folder
