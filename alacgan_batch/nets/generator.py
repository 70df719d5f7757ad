"""The generator G(X, H, F1(X)) of §3.3 / Figure 3: a U-Net whose decoder is four ResNeXt sub-networks.

Encoder: the sketch X goes through to0..to4 (full -> 1/16 size); the colour hint H (already at 1/4 size)
is lifted by `toH` and joins the encoder at 1/4 size. Decoder: at 1/16 size the local features F1(X)
are concatenated, then each sub-network `tunnel4..tunnel1` fuses a skip connection, runs B_n ResNeXt
blocks and doubles the resolution with a sub-pixel convolution (PixelShuffle).

Module names and order match the official checkpoints (see `checkpoints.generator_filter_fn`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .blocks import LEAKY_SLOPE, ResNeXtBottleneck, conv_act

# §3.3 gives B_n = {20, 10, 10, 5}; the official code (and so its released weights) uses {20, 8, 8, 5}.
# Released checkpoints must load, so the official numbers are the default.
OFFICIAL_DEPTHS = (20, 8, 8, 5)
# Dilation of each block in tunnel4..tunnel1 as in the official code (§3.3: dilation in B_2, B_3, B_4).
OFFICIAL_DILATIONS = (
    (1,) * 20,
    (1, 1, 2, 2, 4, 4, 2, 1),
    (1, 1, 2, 2, 4, 4, 2, 1),
    (1, 2, 4, 2, 1),
)
OFFICIAL_CARDINALITY = (32, 32, 32, 16)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture settings; the defaults are the official released generator (21.9 M parameters)."""

    ngf: int = 64
    feature_channels: int = 512  # channels of F1(X): 512 for Illustration2Vec conv6 (§3.1)
    depths: tuple[int, int, int, int] = OFFICIAL_DEPTHS
    cardinality: tuple[int, int, int, int] = field(default=OFFICIAL_CARDINALITY)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("depths", "cardinality"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


def _dilations(level: int, depth: int) -> tuple[int, ...]:
    """The official dilation schedule of a sub-network, cycled when a reduced model has another depth."""
    schedule = OFFICIAL_DILATIONS[level]
    return tuple(schedule[i % len(schedule)] for i in range(depth))


def _sub_network(in_channels: int, channels: int, depth: int, cardinality: int, dilations) -> nn.Sequential:
    """Fuse the skip connection, run `depth` ResNeXt blocks, then upsample x2 with a sub-pixel conv."""
    blocks = nn.Sequential(*[ResNeXtBottleneck(channels, cardinality, dilation=d) for d in dilations[:depth]])
    out_channels = channels // 2  # after PixelShuffle(2): 4 * out / 4
    return nn.Sequential(
        *conv_act(in_channels, channels, 3),
        blocks,
        nn.Conv2d(channels, out_channels * 4, kernel_size=3, padding=1),
        nn.PixelShuffle(2),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


class Generator(nn.Module):
    """G(X, H, F1(X)) -> colour image in [-1, 1] (tanh), §3.3."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GeneratorConfig()
        ngf, depths, card = config.ngf, config.depths, config.cardinality

        self.toH = nn.Sequential(*conv_act(4, ngf, 7))  # colour hint, 1/4 size
        self.to0 = nn.Sequential(*conv_act(1, ngf // 2, 3))  # 1
        self.to1 = nn.Sequential(*conv_act(ngf // 2, ngf, 4, stride=2))  # 1/2
        self.to2 = nn.Sequential(*conv_act(ngf, ngf * 2, 4, stride=2))  # 1/4
        self.to3 = nn.Sequential(*conv_act(ngf * 3, ngf * 4, 4, stride=2))  # 1/8, after joining the hint
        self.to4 = nn.Sequential(*conv_act(ngf * 4, ngf * 8, 4, stride=2))  # 1/16

        self.tunnel4 = _sub_network(ngf * 8 + config.feature_channels, ngf * 8, depths[0], card[0],
                                    _dilations(0, depths[0]))  # -> 1/8
        self.tunnel3 = _sub_network(ngf * 8, ngf * 4, depths[1], card[1], _dilations(1, depths[1]))  # -> 1/4
        self.tunnel2 = _sub_network(ngf * 4, ngf * 2, depths[2], card[2], _dilations(2, depths[2]))  # -> 1/2
        self.tunnel1 = _sub_network(ngf * 2, ngf, depths[3], card[3], _dilations(3, depths[3]))  # -> 1
        self.exit = nn.Conv2d(ngf, 3, kernel_size=3, padding=1)

    def forward(self, sketch: torch.Tensor, hint: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """sketch Bx1xHxW in [-1,1]; hint Bx4x(H/4)x(W/4); features BxCx(H/16)x(W/16); H, W multiples of 16."""
        hint = self.toH(hint)
        x0 = self.to0(sketch)
        x1 = self.to1(x0)
        x2 = self.to2(x1)
        x3 = self.to3(torch.cat([x2, hint], 1))
        x4 = self.to4(x3)

        x = self.tunnel4(torch.cat([x4, features], 1))
        x = self.tunnel3(torch.cat([x, x3], 1))
        x = self.tunnel2(torch.cat([x, x2], 1))
        x = self.tunnel1(torch.cat([x, x1], 1))
        return torch.tanh(self.exit(torch.cat([x, x0], 1)))
