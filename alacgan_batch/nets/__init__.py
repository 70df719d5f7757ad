"""The paper's networks (§3.3, Figure 3), one module each.

`generator.Generator` is G(X, H, F1(X)), `discriminator.Discriminator` is D(Y, F1(X)), and
`features` holds F1 (local features) and F2 (perceptual features).
"""

from .discriminator import Discriminator
from .features import Illustration2VecFeatures, LineArtFeatures, VGG16Features
from .generator import Generator, GeneratorConfig

__all__ = [
    "Discriminator",
    "Generator",
    "GeneratorConfig",
    "Illustration2VecFeatures",
    "LineArtFeatures",
    "VGG16Features",
]
