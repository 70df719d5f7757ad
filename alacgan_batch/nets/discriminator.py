"""The critic D(Y, F1(X)) of §3.3 / Figure 3 (SRGAN-like, ResNeXt blocks without dilation).

It sees a colour image and the local features of its sketch (not the sketch itself, §3.1), and
outputs one unbounded WGAN critic value per image. The final 4x4 valid convolution and linear layer
fix the input at 512x512 for the official layout; `image_size` sets the head for smaller training crops.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ResNeXtBottleneck, conv_act

CARDINALITY = 8  # official code


class Discriminator(nn.Module):
    def __init__(self, ndf: int = 64, feature_channels: int = 512, image_size: int = 512) -> None:
        super().__init__()
        if image_size % 128:
            raise ValueError(f"discriminator image size must be a multiple of 128, got {image_size}")
        self.image_size = image_size

        def pair(channels: int) -> list[nn.Module]:  # keep resolution, then halve it
            return [ResNeXtBottleneck(channels, CARDINALITY), ResNeXtBottleneck(channels, CARDINALITY, stride=2)]

        self.feed = nn.Sequential(
            *conv_act(3, ndf, 7, bias=False),
            *conv_act(ndf, ndf, 4, stride=2, bias=False),  # 1/2
            *pair(ndf),  # 1/4
            *conv_act(ndf, ndf * 2, 1, bias=False),
            *pair(ndf * 2),  # 1/8
            *conv_act(ndf * 2, ndf * 4, 1, bias=False),
            *pair(ndf * 4),  # 1/16: the size of F1(X)
        )
        head_size = image_size // 128  # 4 for 512x512 inputs
        self.feed2 = nn.Sequential(
            *conv_act(ndf * 4 + feature_channels, ndf * 8, 3, bias=False),
            *pair(ndf * 8),  # 1/32
            *pair(ndf * 8),  # 1/64
            *pair(ndf * 8),  # 1/128
            ResNeXtBottleneck(ndf * 8, CARDINALITY),
            nn.Conv2d(ndf * 8, ndf * 8, kernel_size=head_size, bias=False),  # -> 1x1
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.out = nn.Linear(ndf * 8, 1)

    def forward(self, color: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = self.feed(color)
        x = self.feed2(torch.cat([x, features], 1))
        return self.out(x.flatten(1))
