"""alacgan-batch: user-guided anime line-art colorization (AlacGAN, Ci et al. 2018) for frame sequences.

Public API for studio scripts (the CLI is a thin layer over the same calls):

    from alacgan_batch import Colorizer, colorize_sequence, load_generator
"""

from importlib import import_module

from .errors import AlacganError, ConfigError, InputError, ModelError, OutputError

__version__ = "0.1.0"

# imported on first use (PEP 562): `import alacgan_batch` stays light, so the `alacgan` command has its
# Ctrl-C and SIGTERM handlers in place before torch loads (a Ctrl-C then is a one-line stop, not a traceback)
_LAZY = {
    "ColorizeSummary": ".pipeline",
    "Colorizer": ".pipeline",
    "colorize_sequence": ".pipeline",
    "load_generator": ".checkpoints",
    "load_i2v": ".checkpoints",
    "load_model": ".checkpoints",
    "load_vgg16": ".checkpoints",
    "resolve_model_files": ".checkpoints",
}

__all__ = ["AlacganError", "ConfigError", "InputError", "ModelError", "OutputError", *_LAZY]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
