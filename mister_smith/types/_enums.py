"""Small enums shared by configuration and supervision (kept on the ground floor)."""

from __future__ import annotations

import enum


class Restart(enum.Enum):
    """When a supervised child is restarted after it exits (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always restarted, whether it raised or returned."""
    TRANSIENT = "transient"
    """Restarted only after it raised (not after a normal return or a shutdown)."""
    TEMPORARY = "temporary"
    """Never restarted."""


class StrategyKind(enum.Enum):
    """Which siblings a supervisor restarts with a failed child (OTP's strategies)."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
