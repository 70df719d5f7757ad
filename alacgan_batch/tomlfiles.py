"""Named TOML settings files (colorize presets, training recipes): found by name in a folder, or by path."""

from __future__ import annotations

from pathlib import Path

import tomllib

from .errors import ConfigError


def read_named_toml(name_or_path: str, folder: Path, kind: str) -> tuple[Path, dict]:
    """(path, data) of `folder/<name>.toml` or of a .toml path; unknown names and bad TOML are ConfigErrors."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.is_file()):
        path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
        raise ConfigError(f"unknown {kind} {name_or_path!r}: choose from {names} or give a .toml path")
    try:
        text = path.read_text(encoding="utf-8")  # TOML is UTF-8 by definition, whatever the locale
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {kind} {path}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}") \
            from exc
    try:
        return path, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{kind} {path} is not valid TOML: {exc}") from exc
