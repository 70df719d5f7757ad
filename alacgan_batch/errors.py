"""Errors a user can cause. Each carries a one-line message and the CLI exit code it maps to.

Anything that is not an `AlacganError` is a bug and keeps its traceback (`alacgan --debug`).
"""

from __future__ import annotations


class AlacganError(Exception):
    """Base class: a problem with what the user gave us, reported in one line."""

    exit_code = 1


class InputError(AlacganError):
    """A frame, hint, video or dataset that cannot be used as given."""

    exit_code = 3


class ModelError(AlacganError):
    """A model file that is missing, truncated, or does not match the network."""

    exit_code = 4


class OutputError(AlacganError):
    """An output location that would overwrite inputs or earlier results."""

    exit_code = 5


class ConfigError(AlacganError):
    """A setting, preset or recipe that is unknown or inconsistent."""

    exit_code = 2
