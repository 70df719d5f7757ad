"""Named colorize settings (`presets/*.toml`): a preset fills in options the user did not give."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .tomlfiles import read_named_toml

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
# key -> the TOML type its value must have; the Colorizer checks the values themselves (engine names, ...)
PRESET_TYPES: dict[str, type] = {
    "short_side": int, "batch_size": int, "precision": str, "overlay_lines": bool, "device": str, "engine": str,
    "propagate": bool, "flatten": bool, "stabilize": bool, "lock_hints": bool, "background": str, "layers": bool,
    "on_missing_hints": str,
}
PRESET_KEYS = set(PRESET_TYPES)
_TYPE_NAMES = {int: "a whole number", str: "a string", bool: "true or false"}


def load_preset(name_or_path: str) -> dict:
    """Settings of a preset by name (`draft`) or path (`my.toml`); unknown names, keys or values are ConfigErrors."""
    path, data = read_named_toml(name_or_path, PRESET_DIR, "preset")
    settings = data.get("colorize", data)
    if not isinstance(settings, dict):
        raise ConfigError(f"preset {path}: [colorize] must be a table of settings, not {settings!r}")
    unknown = set(settings) - PRESET_KEYS - {"description"}
    if unknown:
        raise ConfigError(f"preset {path}: unknown settings {', '.join(sorted(unknown))}")
    settings = {k: v for k, v in settings.items() if k in PRESET_KEYS}
    for key, value in settings.items():
        _check_value(path, key, value)
    return settings


def _check_value(path: Path, key: str, value: object) -> None:
    """A value of the wrong type would surface later as a TypeError deep in the pipeline: refuse it here."""
    kind = PRESET_TYPES[key]
    # bool is an int subclass in Python: `short_side = true` must not pass as 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"preset {path}: {key} must be {_TYPE_NAMES[kind]}, not {value!r}")
    if key == "short_side":
        from .compose import check_short_side

        try:
            check_short_side(value)
        except ConfigError as exc:
            raise ConfigError(f"preset {path}: short_side: {exc}") from exc
    elif key == "batch_size" and value < 1:
        raise ConfigError(f"preset {path}: batch_size must be at least 1, not {value}")
