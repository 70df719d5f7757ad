"""Inference in batches: F1 and G on the chosen device and precision.

Items are padded to a multiple of 16 (the generator halves the size four times), grouped into batches
of equal size, run under `torch.inference_mode`, and cropped back. On CUDA the nets run in half
precision via autocast (convolutions in fp16, the tanh output and reductions in fp32), channels-last.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .checkpoints import ColorizationModel
from .errors import ConfigError
from .hints import HINT_SCALE, spread_strokes, strokes_to_hint

SIZE_MULTIPLE = 16  # four stride-2 convolutions in G; F1 ends at 1/16 (§3.1)
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (torch was built for "
                          f"{'CUDA' if torch.version.cuda else 'CPU only'})")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def default_batch_size(device: torch.device) -> int:
    # On CPU a batch buys little (the convolutions already use every core); on a GPU it fills the device.
    return 8 if device.type == "cuda" else 2


def select_precision(name: str, device: torch.device) -> torch.dtype:
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}: use {', '.join(PRECISIONS)}")
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; use fp32 on CPU")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float) -> torch.Tensor:
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), value=value) if pad_h or pad_w else x


@dataclass
class WorkItem:
    """One frame for the network: sketch HxW in [-1,1]; strokes (colour HxWx3 [0,1], mask HxW) or None."""

    key: Hashable
    sketch: np.ndarray
    strokes: tuple[np.ndarray, np.ndarray] | None = None


def batch_items(items: Iterable[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    """Consecutive items of the same frame size, at most `size` at a time."""
    batch: list[WorkItem] = []
    for item in items:
        if batch and (len(batch) == size or item.sketch.shape != batch[0].sketch.shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


class Engine:
    """Runs F1 + G over work items in batches on one device."""

    def __init__(self, model: ColorizationModel, device: str = "auto", batch_size: int | None = None,
                 precision: str = "auto") -> None:
        self.device = select_device(device)
        self.dtype = select_precision(precision, self.device)
        self.batch_size = batch_size or default_batch_size(self.device)
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        self.model = model.to(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # frames of a shot share one size: tuned kernels pay off
            self.model.generator.to(memory_format=torch.channels_last)
            self.model.features.to(memory_format=torch.channels_last)

    @property
    def precision_name(self) -> str:
        return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]

    def infer(self, sketch: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        """Padded batch: sketch Bx1xHxW, hint Bx4x(H/4)x(W/4) -> colour Bx3xHxW in [-1, 1] (float32)."""
        autocast = self.dtype != torch.float32
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
            features = self.model.features(sketch)
            return self.model.generator(sketch, hint, features).float()

    def _batch_tensors(self, items: list[WorkItem]) -> tuple[torch.Tensor, torch.Tensor]:
        sketch = torch.from_numpy(np.stack([it.sketch for it in items]))[:, None]
        height, width = sketch.shape[-2:]
        rgb = torch.zeros(len(items), 3, height, width)
        mask = torch.zeros(len(items), 1, height, width)
        spread = self.model.spec.hint_spread
        fill_rgb = torch.zeros_like(rgb) if spread else None
        fill_mask = torch.zeros_like(mask) if spread else None
        for i, item in enumerate(items):
            if item.strokes is not None:
                rgb[i] = torch.from_numpy(item.strokes[0]).permute(2, 0, 1)
                mask[i, 0] = torch.from_numpy(item.strokes[1])
                if spread:  # as the model was trained: strokes also fill their closed regions
                    colors, filled = spread_strokes(*item.strokes, (item.sketch + 1.0) * 0.5)
                    fill_rgb[i] = torch.from_numpy(colors).permute(2, 0, 1)
                    fill_mask[i, 0] = torch.from_numpy(filled)
        sketch = pad_to_multiple(sketch, SIZE_MULTIPLE, value=1.0)  # white paper
        rgb, mask = pad_to_multiple(rgb, SIZE_MULTIPLE, 0.0), pad_to_multiple(mask, SIZE_MULTIPLE, 0.0)
        fills = None
        if spread:
            fills = (pad_to_multiple(fill_rgb, SIZE_MULTIPLE, 0.0), pad_to_multiple(fill_mask, SIZE_MULTIPLE, 0.0))
        hint = strokes_to_hint(rgb, mask, spread=fills)
        assert hint.shape[-1] * HINT_SCALE == sketch.shape[-1]
        non_blocking = self.device.type == "cuda"
        sketch = sketch.to(self.device, non_blocking=non_blocking)
        hint = hint.to(self.device, non_blocking=non_blocking)
        if self.device.type == "cuda":
            sketch = sketch.contiguous(memory_format=torch.channels_last)
            hint = hint.contiguous(memory_format=torch.channels_last)
        return sketch, hint

    def run_batch(self, items: list[WorkItem]) -> list[np.ndarray]:
        """Colours (HxWx3 float32 in [0,1], each item's own size) for items of one size."""
        height, width = items[0].sketch.shape
        sketch, hint = self._batch_tensors(items)
        out = self.infer(sketch, hint)[:, :, :height, :width]
        out = ((out + 1.0) * 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        return list(out)

    def run(self, items: Iterable[WorkItem]) -> Iterator[tuple[Hashable, np.ndarray]]:
        for batch in batch_items(items, self.batch_size):
            yield from zip((it.key for it in batch), self.run_batch(batch), strict=True)
