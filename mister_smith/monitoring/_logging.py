"""``log_level`` applied to the ``mister_smith`` logger tree."""

from __future__ import annotations

import logging
from typing import Final

from ..config import LOG_LEVELS, MonitoringSettings

LOGGER_NAME: Final = "mister_smith"
"""The root of the library's loggers (``mister_smith.supervision``, ...)."""


def apply_log_level(level: str | int | MonitoringSettings, *, logger: str = LOGGER_NAME) -> int:
    """Set the level of the ``mister_smith`` logger (and so of every logger under it).

    Args:
        level: ``"debug"``, ``"info"``, ``"warning"``, ``"error"`` or ``"critical"``
            (any case), a :mod:`logging` level number, or settings whose
            ``log_level`` to use.
        logger: The logger to set (default ``"mister_smith"``).

    Returns:
        The numeric level applied.

    Raises:
        ValueError: an unknown level name.
    """
    if isinstance(level, MonitoringSettings):
        level = level.log_level
    if isinstance(level, str):
        name = level.lower()
        if name not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        level = logging.getLevelNamesMapping()[name.upper()]
    logging.getLogger(logger).setLevel(level)
    return level
