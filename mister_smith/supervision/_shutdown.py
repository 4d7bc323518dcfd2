"""How a supervisor's children stop: one run within its grace, all of them in reverse
start order, and the shield that keeps a nested shutdown within its parent's grace."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import trio

from ..events import EventBus, ShutdownStuck
from ._child import Child, ChildEnd, ChildState, _current_run, _Run

logger = logging.getLogger("mister_smith.supervision")

STUCK_MARGIN = 0.01
"""Extra seconds past a child's grace deadline before it is reported stuck."""


async def stop_run(child: Child, supervisor: str, events: EventBus) -> None:
    """Stop ``child``'s current run and wait up to its ``shutdown_timeout`` for it to end.

    A run still going after that is reported (``ShutdownStuck``, an error log) and left
    to the caller (see :func:`stop_all`). A child stopping itself returns at once: it
    exits when this call returns.
    """
    run = child._run
    if run is None or run.finished:
        return
    now = trio.current_time()
    run.stop_requested = True
    run.grace_deadline = now + child.shutdown_timeout
    child.state = ChildState.STOPPING
    run.scope.cancel()
    if _current_run.get() is run:
        return
    with trio.move_on_at(run.grace_deadline + STUCK_MARGIN):
        await run.wait_finished()
    if not run.finished:
        report_stuck(child.name, trio.current_time() - now, supervisor, events)


def report_stuck(child: str, waited: float, supervisor: str, events: EventBus) -> None:
    """Report that ``child`` is still running ``waited`` seconds after it was asked to
    stop (``ShutdownStuck``, an error log)."""
    logger.error("supervisor %s: child %s did not stop within %.3f s", supervisor, child, waited)
    events.emit(ShutdownStuck(source=supervisor, supervisor=supervisor, child=child, waited=waited))


async def stop_all(
    children: Sequence[Child],
    supervisor: str,
    events: EventBus,
    cut: list[tuple[_Run, float]],
) -> None:
    """Stop ``children`` one by one in reverse order, each within its grace; if this is
    cut short (the caller's deadline passed), cancel the rest at once.

    The runs cancelled at once (not yet reported stuck) are appended to ``cut``, with
    when the shutdown began: see :func:`report_outliving`.
    """
    began = trio.current_time()
    reported: list[_Run] = []  # by stop_run: they overran their grace
    try:
        for child in reversed(children):
            await stop_run(child, supervisor, events)
            run = child._run
            if run is not None and not run.finished:
                reported.append(run)
            child.state = ChildState.STOPPED
            child._terminate(ChildEnd.SHUT_DOWN)
    finally:
        # The runs' scopes are shielded, so only this reaches them. One scheduling round
        # first lets a child finishing at this very instant finish.
        if any(c._run is not None and not c._run.finished for c in children):
            with trio.CancelScope(shield=True):
                await trio.lowlevel.checkpoint()
        now = trio.current_time()
        for child in children:
            run = child._run
            if run is not None and not run.finished:
                if run not in reported:
                    cut.append((run, began))
                run.stop_requested = True
                run.grace_deadline = min(run.grace_deadline, now)
                run.scope.cancel()
                for grace in run.grace_scopes or ():
                    grace.cancel()
            child.state = ChildState.STOPPED
            child._terminate(ChildEnd.SHUT_DOWN)


async def report_outliving(
    cut: list[tuple[_Run, float]], supervisor: str, events: EventBus
) -> None:
    """Report the runs in ``cut`` that a hard stop did not end either.

    A shutdown bounded by a deadline (``stop(timeout=...)``, an escalation timeout)
    cancels what it has not stopped by then and returns at its bound. A run that
    ignores that cancellation outlives the shutdown: it is given :data:`STUCK_MARGIN`
    to end, then reported as :func:`stop_run` reports one that overran its own grace.
    Shielded: this runs while the supervisor closes, perhaps cancelled.
    """
    with trio.CancelScope(shield=True):
        with trio.move_on_after(STUCK_MARGIN):
            for run, _ in cut:
                await run.wait_finished()
        now = trio.current_time()
        for run, began in cut:
            if not run.finished:
                report_stuck(run.child.name, now - began, supervisor, events)
    cut.clear()


def grace_shield() -> trio.CancelScope:
    """A shielded scope for a supervisor's shutdown. Nested under a stopping parent's
    child it ends at that child's grace deadline (and a hard stop reaches in)."""
    outer = _current_run.get()
    if outer is None or not outer.stop_requested:
        return trio.CancelScope(shield=True)
    shield = trio.CancelScope(shield=True, deadline=outer.grace_deadline)
    outer.add_grace_scope(shield)
    return shield


def shutdown_deadline(timeout: float | None) -> float:
    """The absolute deadline ``timeout`` seconds from now (``None``: none).

    Raises:
        ValueError: ``timeout`` is negative or NaN.
    """
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"shutdown timeout must be >= 0 seconds (or None), got {timeout!r}")
    return math.inf if timeout is None else trio.current_time() + timeout
