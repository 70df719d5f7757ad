"""Named colorize settings (`presets/*.toml`): a preset fills in options the user did not give."""

from __future__ import annotations

from pathlib import Path

import tomllib

from .errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
PRESET_KEYS = {"short_side", "batch_size", "precision", "overlay_lines", "device", "engine", "propagate", "flatten",
               "background", "layers", "on_missing_hints"}


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> dict:
    """Settings of a preset by name (`draft`) or path (`my.toml`); unknown names or keys are ConfigErrors."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name_or_path!r}: choose from {', '.join(available_presets())} "
                          "or give a .toml path")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"preset {path} is not valid TOML: {exc}") from exc
    settings = data.get("colorize", data)
    unknown = set(settings) - PRESET_KEYS - {"description"}
    if unknown:
        raise ConfigError(f"preset {path}: unknown settings {', '.join(sorted(unknown))}")
    return {k: v for k, v in settings.items() if k in PRESET_KEYS}
