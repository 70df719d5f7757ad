"""Feature networks: F1, the local features of a sketch (§3.1), and F2, the perceptual features (§3.2).

- `Illustration2VecFeatures`: F1 as in the paper, Illustration2Vec up to the ReLU after its 6th
  convolution: 512 channels at 1/16 of the sketch size. Pretrained weights come from the user
  (`i2v.pth`); unlike the official code it accepts any sketch size that is a multiple of 16.
- `LineArtFeatures`: the project's own F1 for models trained without Illustration2Vec weights: a small
  VGG-style stack to the same 1/16 size, trained together with the generator.
- `VGG16Features`: F2, VGG16 up to relu2_2 (the 4th convolution, after activation), for the content loss.

Buffer and parameter names match the official NetI / NetF state dicts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# §3.1 / official NetI: per-channel mean of the Illustration2Vec training images, 0..255 scale.
I2V_MEAN = (164.76139251, 167.47864617, 181.13838569)
# Official NetF: ImageNet normalisation written for inputs in [-1, 1]: (x*0.5 - mean) / std.
VGG_MEAN = (0.485 - 0.5, 0.456 - 0.5, 0.406 - 0.5)
VGG_STD = (0.229, 0.224, 0.225)

# Illustration2Vec children 0..14 (VGG-like): channels of each conv; "M" is a 2x2 max-pool (ceil mode).
I2V_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512)
# VGG16 features children 0..8: conv, relu, conv, relu, pool, conv, relu, conv, relu (ends at relu2_2).
VGG16_LAYOUT = (64, 64, "M", 128, 128)


def _vgg_stack(in_channels: int, layout: tuple) -> nn.Sequential:
    """Conv3x3+ReLU for each int, MaxPool2d(2, ceil) for each "M"; indices as torchvision/I2V number them."""
    layers: list[nn.Module] = []
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers)


class Illustration2VecFeatures(nn.Module):
    """F1(X) = ReLU(conv6) of Illustration2Vec: Bx1xHxW sketch in [-1,1] -> Bx512x(H/16)x(W/16)."""

    out_channels = 512

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(I2V_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.model = _vgg_stack(3, I2V_LAYOUT)

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(sketch, 2, 2)  # the official model sees the sketch at half size
        x = (x * 0.5 + 0.5) * 255.0
        x = x.expand(-1, 3, -1, -1) - self.mean
        return self.model(x)


class LineArtFeatures(nn.Module):
    """The project's own F1: Bx1xHxW sketch in [-1,1] -> BxCx(H/16)x(W/16), ReLU like Illustration2Vec."""

    def __init__(self, out_channels: int = 128, width: int = 32) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.model = _vgg_stack(1, (width, "M", width * 2, "M", width * 4, "M", out_channels))

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        return self.model(F.avg_pool2d(sketch, 2, 2))


class VGG16Features(nn.Module):
    """F2(Y) = VGG16 relu2_2 of a colour image in [-1,1]: Bx3xHxW -> Bx128x(H/2)x(W/2) (§3.2)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(VGG_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(VGG_STD, dtype=torch.float32).view(1, 3, 1, 1))
        self.model = _vgg_stack(3, VGG16_LAYOUT)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model((image * 0.5 - self.mean) / self.std)
