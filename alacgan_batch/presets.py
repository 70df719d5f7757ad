"""Named colorize settings (`presets/*.toml`): a preset fills in options the user did not give."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .tomlfiles import read_named_toml

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
PRESET_KEYS = {"short_side", "batch_size", "precision", "overlay_lines", "device", "engine", "propagate", "flatten",
               "stabilize", "background", "layers", "on_missing_hints"}


def load_preset(name_or_path: str) -> dict:
    """Settings of a preset by name (`draft`) or path (`my.toml`); unknown names or keys are ConfigErrors."""
    path, data = read_named_toml(name_or_path, PRESET_DIR, "preset")
    settings = data.get("colorize", data)
    unknown = set(settings) - PRESET_KEYS - {"description"}
    if unknown:
        raise ConfigError(f"preset {path}: unknown settings {', '.join(sorted(unknown))}")
    return {k: v for k, v in settings.items() if k in PRESET_KEYS}
