"""Virtual time helpers over :class:`trio.testing.MockClock`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, TypeVarTuple, Unpack

import trio
import trio.testing

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def mock_clock() -> trio.testing.MockClock:
    """The clock of the current Trio run, which must be a ``MockClock``.

    Raises:
        RuntimeError: the run uses another clock (real time).
    """
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock):
        raise RuntimeError(  # noqa: TRY004 - a wrong run setup, not a wrong argument
            "virtual time needs a trio.testing.MockClock: run under pytest-trio's "
            "autojump_clock fixture, or use run_virtual()"
        )
    return clock


async def advance(seconds: float) -> None:
    """Move virtual time forward by ``seconds`` and let every task react.

    Jumps the run's :class:`~trio.testing.MockClock` (so timers expiring in between
    fire), then waits until every task is blocked again. Works with or without
    autojump; under autojump ``await trio.sleep(seconds)`` is the usual alternative.

    Raises:
        RuntimeError: the run's clock is not a ``MockClock``.
        ValueError: ``seconds`` is negative.
    """
    if not seconds >= 0:
        raise ValueError(f"cannot advance time by {seconds!r} seconds")
    clock = mock_clock()
    clock.jump(seconds)
    await trio.testing.wait_all_tasks_blocked()


def run_virtual(
    async_fn: Callable[[Unpack[Ts]], Awaitable[T]],
    *args: *Ts,
    instruments: Sequence[trio.abc.Instrument] = (),
    autojump_threshold: float = 0.0,
) -> T:
    """``trio.run(async_fn, *args)`` on a fresh autojumping ``MockClock``.

    Each call is a new, deterministic Trio run in virtual time: sleeps take no real
    time. This is how to run one hypothesis example (never combine pytest-trio's
    ``autojump_clock`` fixture with ``@given``).
    """
    clock = trio.testing.MockClock(autojump_threshold=autojump_threshold)
    return trio.run(async_fn, *args, clock=clock, instruments=instruments)
