"""The ``max_memory`` watchdog: a root child that fails through supervision when this
process's resident memory passes the limit."""

from __future__ import annotations

from contextlib import aclosing

import psutil
import trio
from trio_util import periodic

from ..errors import ErrorSeverity, RecoveryStrategy, ResourceError

MEMORY_CHECK_INTERVAL = 1.0
"""Seconds between two RSS readings of the ``max_memory`` watchdog."""


async def memory_watchdog(limit: int) -> None:
    """Raise :class:`ResourceError` when this process's RSS exceeds ``limit`` bytes
    (read every ``MEMORY_CHECK_INTERVAL`` seconds, start to start)."""
    process = psutil.Process()
    async with aclosing(periodic(MEMORY_CHECK_INTERVAL)) as ticks:
        async for _ in ticks:
            rss = await trio.to_thread.run_sync(lambda: process.memory_info().rss)
            if rss > limit:
                raise ResourceError(
                    f"resident memory {rss} bytes exceeds max_memory {limit} bytes",
                    severity=ErrorSeverity.HIGH,
                    recovery_strategy=RecoveryStrategy.Escalate(),
                )
