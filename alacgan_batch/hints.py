"""Colour hints (§3.4): stroke images -> the 4-channel hint tensor H, and which hint belongs to which frame.

A hint image is RGBA (strokes opaque on a transparent background) the size of its frame; an RGB image
with a white background is accepted too (non-white pixels are strokes).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

HINT_SCALE = 4  # §3.4: hints live at quarter resolution


def strokes_to_hint(rgb: torch.Tensor, mask: torch.Tensor, thin: bool = True) -> torch.Tensor:
    """§3.4: stroke colours Bx3xHxW in [0,1] and stroke mask Bx1xHxW in {0,1} -> hint Bx4x(H/4)x(W/4).

    The stroke image is downsampled to quarter resolution by max-pooling, then half of its pixels are
    removed "with an interval of one": a checkerboard (pixels with odd x+y) is zeroed in colour and mask,
    which keeps the strokes' extent in both directions while matching the sparse training hints.
    Channels 0-2 are the colour in [-1, 1] times the mask, channel 3 is the mask.
    """
    mask = (mask > 0.5).to(rgb.dtype)
    color = F.max_pool2d(rgb * mask, HINT_SCALE)
    down_mask = F.max_pool2d(mask, HINT_SCALE)
    if thin:
        h, w = down_mask.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, device=rgb.device), torch.arange(w, device=rgb.device),
                                indexing="ij")
        down_mask = down_mask * ((yy + xx) % 2 == 0).to(rgb.dtype)
    return torch.cat([(color * 2 - 1) * down_mask, down_mask], dim=1)


def empty_hint(batch: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A hint with no strokes for frames of height x width (multiples of 4)."""
    return torch.zeros(batch, 4, height // HINT_SCALE, width // HINT_SCALE, device=device)
