"""Small helpers for reading the field annotations of the settings classes."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin


def optional_inner(annotation: object) -> Any | None:
    """``X`` for an ``X | None`` annotation, otherwise ``None``."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    arguments = get_args(annotation)
    others = [argument for argument in arguments if argument is not type(None)]
    if len(arguments) == 2 and len(others) == 1:
        return others[0]
    return None


def means_none(value: object) -> bool:
    """Whether a raw value stands for "not set": ``None`` or the string ``"none"``.

    TOML has no null, so :func:`~mister_smith.config.dump_config` writes ``None`` as
    ``"none"``; environment variables use the same word.
    """
    return value is None or (isinstance(value, str) and value.strip().lower() == "none")
