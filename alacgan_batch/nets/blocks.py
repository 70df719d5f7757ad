"""The ResNeXt bottleneck (§3.3) shared by the generator and the discriminator."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.2  # §3.3: LeakyReLU with slope 0.2 after every convolution but the last


class ResNeXtBottleneck(nn.Module):
    """1x1 reduce -> grouped (optionally dilated or strided) 3x3 -> 1x1 expand, plus a shortcut.

    Parameter names (`conv_reduce`, `conv_conv`, `conv_expand`) follow the official checkpoints.
    A strided block uses a 4x4 kernel and an average-pooled shortcut, as the official code does.
    """

    def __init__(self, channels: int, cardinality: int = 32, dilation: int = 1, stride: int = 1) -> None:
        super().__init__()
        width = channels // 2
        self.conv_reduce = nn.Conv2d(channels, width, kernel_size=1, bias=False)
        self.conv_conv = nn.Conv2d(
            width,
            width,
            kernel_size=2 + stride,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=min(cardinality, width),
            bias=False,
        )
        self.conv_expand = nn.Conv2d(width, channels, kernel_size=1, bias=False)
        self.shortcut = nn.AvgPool2d(2, stride=2) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv_reduce(x), LEAKY_SLOPE)
        y = F.leaky_relu(self.conv_conv(y), LEAKY_SLOPE)
        return self.shortcut(x) + self.conv_expand(y)


def conv_act(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True) -> list:
    """A convolution and its LeakyReLU, as two entries of an nn.Sequential (keeps official indices)."""
    padding = (kernel_size - stride + 1) // 2 if stride > 1 else kernel_size // 2
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    ]
