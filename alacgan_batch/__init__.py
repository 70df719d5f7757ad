"""alacgan-batch: user-guided anime line-art colorization (AlacGAN, Ci et al. 2018) for frame sequences.

Public API for studio scripts (the CLI is a thin layer over the same calls):

    from alacgan_batch import Colorizer, colorize_sequence, load_generator
"""

from .checkpoints import load_generator, load_i2v, load_model, load_vgg16, resolve_model_files
from .errors import AlacganError, ConfigError, InputError, ModelError, OutputError
from .pipeline import Colorizer, ColorizeSummary, colorize_sequence

__version__ = "0.1.0"

__all__ = [
    "AlacganError",
    "ColorizeSummary",
    "Colorizer",
    "ConfigError",
    "InputError",
    "ModelError",
    "OutputError",
    "colorize_sequence",
    "load_generator",
    "load_i2v",
    "load_model",
    "load_vgg16",
    "resolve_model_files",
]
