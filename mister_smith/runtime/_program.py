"""Running a runtime as the process's program: signals, SIGHUP reloads, and a root that
gave up reported before it is re-raised."""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import trio

from ..config import AgentConfig, load_config
from ..errors import ConfigError, SupervisionError, root_cause
from ..events import ErrorOccurred
from ._manager import ConfigLoader, RuntimeManager

logger = logging.getLogger("mister_smith.runtime")

T = TypeVar("T")


def run(
    main: Callable[[RuntimeManager], Awaitable[T]],
    config: AgentConfig | None = None,
    *,
    handle_signals: bool = True,
    config_file: str | Path | None = None,
) -> T | None:
    """Run ``await main(runtime)`` in a fresh Trio run that owns the process.

    SIGINT and SIGTERM trigger a graceful shutdown (``None`` is returned then). With
    ``config_file``, the configuration is loaded from it (defaults < file <
    environment) unless ``config`` is given, and SIGHUP re-reads it and applies it live
    (:meth:`RuntimeManager.reconfigure`; a refused or invalid file is logged and the
    runtime keeps its configuration). An escalation reaching the root is logged with
    its root cause, reported as an :class:`~mister_smith.events.ErrorOccurred` event,
    and re-raised after the orderly shutdown.
    """
    loader: ConfigLoader | None = None
    if config_file is not None:
        loader = functools.partial(load_config, config_file)
        if config is None:
            config = loader()

    async def amain() -> T | None:
        result: list[T] = []
        runtimes: list[RuntimeManager] = []
        try:
            async with RuntimeManager.open(config, config_loader=loader) as runtime:
                runtimes.append(runtime)
                async with trio.open_nursery() as nursery:
                    if handle_signals:
                        await nursery.start(_shutdown_on_signal, runtime)
                        if loader is not None:
                            await nursery.start(reload_on_sighup, runtime)
                    result.append(await main(runtime))
                    nursery.cancel_scope.cancel()
        except SupervisionError as exc:
            cause = root_cause(exc)
            if runtimes:
                runtimes[0].events.emit(
                    ErrorOccurred(
                        source="root",
                        component="root",
                        error_type=type(exc).__name__,
                        message=f"{exc} (root cause: {type(cause).__name__}: {cause})",
                        severity=exc.severity,
                    )
                )
            logger.exception(
                "runtime: the root gave up (root cause: %s: %s)", type(cause).__name__, cause
            )
            raise
        return result[0] if result else None

    return trio.run(amain)


async def _shutdown_on_signal(
    runtime: RuntimeManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            logger.warning("runtime: received signal %s, shutting down", signum)
            await runtime.graceful_shutdown(timeout=_SIGNAL_SHUTDOWN_TIMEOUT)
            return


async def reload_on_sighup(
    runtime: RuntimeManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve SIGHUP: each one re-reads the configuration with the runtime's
    ``config_loader`` and applies it live (:meth:`RuntimeManager.reload`); a refused or
    invalid configuration is logged and the runtime keeps the one it has. Start it with
    ``await nursery.start(reload_on_sighup, runtime)`` (main thread only)."""
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        async for _ in signals:
            try:
                await runtime.reload(trigger="signal")
            except (ConfigError, OSError) as exc:
                logger.error("runtime: SIGHUP reload refused: %s", exc)  # noqa: TRY400


_SIGNAL_SHUTDOWN_TIMEOUT = 30.0
"""The wider design's graceful-shutdown bound on SIGTERM/SIGINT (seconds)."""
