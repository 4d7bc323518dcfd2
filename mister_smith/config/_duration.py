"""Durations: ``float`` seconds, also written as ``"500ms"``, ``"30s"``, ``"2m"``, ``"1h"``."""

from __future__ import annotations

import math
import re
from typing import Annotated, Final

from mister_smith.errors import ConfigError


class _DurationMarker:
    """Marks a ``float`` annotation as a duration, so converters parse duration strings."""

    def __repr__(self) -> str:
        return "duration"


DURATION: Final = _DurationMarker()

Seconds = Annotated[float, DURATION]
"""A duration in seconds: a plain ``float`` to type checkers, a duration to converters.

:data:`~mister_smith.config.config_converter` structures it from a number of seconds or
a duration string (see :func:`parse_duration`).
"""

_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)", re.ASCII)
_FORMS = "use a number of seconds or e.g. '500ms', '1.5s', '2m', '1h', '1h30m'"


def seconds_from(value: object) -> float:
    """Read a duration; the :class:`ConfigError` raised on failure holds only the reason.

    Accepts a non-negative finite ``int``/``float`` (seconds), a string holding such a
    number, or a string of ``<number><unit>`` parts (units ``ms``, ``s``, ``m``, ``h``,
    ``d``) that are added together, e.g. ``"1m30s"``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"expected a duration ({_FORMS})")
    try:
        seconds = _parse_text(value) if isinstance(value, str) else float(value)
    except OverflowError:  # an int beyond the float range, e.g. 400 digits
        raise ConfigError("a duration must be finite") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigError("a duration must be finite")
    if seconds < 0:
        raise ConfigError("a duration must not be negative")
    return seconds


def _parse_text(text: str) -> float:
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ConfigError("a duration must not be negative")
    try:
        return float(stripped)
    except ValueError:
        pass
    total = 0.0
    position = 0
    while position < len(stripped):
        part = _PART.match(stripped, position)
        if part is None:
            raise ConfigError(f"not a duration ({_FORMS})")
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if position == 0:
        raise ConfigError(f"not a duration ({_FORMS})")
    return total


def parse_duration(value: str | float) -> float:
    """Return the duration ``value`` in seconds.

    ``value`` is a number of seconds or a string such as ``"500ms"``, ``"60s"``,
    ``"2m"``, ``"1h"``, ``"1.5s"``, ``"1h30m"`` or ``"45"`` (plain numbers are seconds).

    Raises:
        ConfigError: ``value`` is not a duration, or is negative, NaN or infinite.
    """
    try:
        return seconds_from(value)
    except ConfigError as exc:
        raise ConfigError(f"invalid duration {value!r}: {exc}") from None


def to_seconds(value: float | str) -> float | str:
    """attrs converter: a duration string or number becomes ``float`` seconds.

    A value that is not a duration is passed through unchanged so that the field's
    validator can reject it naming the field.
    """
    try:
        return seconds_from(value)
    except ConfigError:
        return value


def to_optional_seconds(value: float | str | None) -> float | str | None:
    """Like :func:`to_seconds`, but ``None`` and ``"none"`` mean "no limit" (``None``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    return to_seconds(value)
