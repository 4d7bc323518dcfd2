"""Tool fakes and fault gates: ``FlakyTool`` and the wrapper the harness injects through."""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from ..tools import Tool, ToolSchema, WrappedTool
from ._failures import FailureType, Hang, Injection, Slow

ANY_OBJECT = ToolSchema({"type": "object"})
"""A schema accepting any object of arguments."""


async def _apply_tool_failure(failure: FailureType, label: str) -> BaseException | None:
    """Carry out ``failure`` inside a tool call: raise it, hang, or wait and return."""
    error = failure.make_error(label)
    if error is not None:
        raise error
    if isinstance(failure, Hang):
        await trio.sleep_forever()
    if isinstance(failure, Slow):
        await trio.sleep(failure.delay)
    return None


def _check_tool_failure(failure: FailureType) -> None:
    if failure == FailureType.DROP_HEARTBEAT:
        raise ValueError("tools have no heartbeat: DROP_HEARTBEAT does not apply to a tool")


class FlakyTool:
    """A tool (the :class:`~mister_smith.tools.Tool` protocol) that fails on a schedule.

    Call ``n`` (1-based) follows ``schedule[n - 1]``: ``None`` succeeds, a
    :class:`FailureType` fails that way (``CRASH`` / ``ERROR`` raise, ``HANG`` never
    returns so the bus's deadline turns it into a
    :class:`~mister_smith.errors.ToolTimeout`, ``SLOW(d)`` starts ``d`` seconds late).
    After the schedule, calls succeed — or, with ``cycle=True``, the schedule repeats.
    A success takes ``work`` seconds and returns ``result(args)`` (default: the
    arguments as a dict).

    Args:
        name: The tool's name.
        schedule: One entry per call.
        cycle: Repeat the schedule forever.
        work: Seconds a successful call takes.
        result: Builds the result from the arguments.
        timeout: Its own deadline (used by the bus unless overridden).
        input_schema: Its argument schema (default: any object).
    """

    description = "A test tool that fails on a schedule."

    def __init__(
        self,
        name: str = "flaky",
        schedule: Sequence[FailureType | None] = (),
        *,
        cycle: bool = False,
        work: float = 0.0,
        result: Callable[[Mapping[str, Any]], object] = dict,
        timeout: float | None = None,
        input_schema: ToolSchema = ANY_OBJECT,
    ) -> None:
        for failure in schedule:
            if failure is not None:
                _check_tool_failure(failure)
        if cycle and not schedule:
            raise ValueError("cycle=True needs a non-empty schedule")
        if not work >= 0:
            raise ValueError(f"work must be >= 0 seconds, got {work!r}")
        self.name = name
        self.schedule = tuple(schedule)
        self.cycle = cycle
        self.work = work
        self.timeout = timeout
        self.input_schema = input_schema
        self._result = result
        self.calls = 0
        """Calls started so far."""
        self.succeeded = 0
        """Calls that returned a result."""
        self.failed = 0
        """Calls that followed a failure entry (whatever became of them)."""

    def failure_for(self, call: int) -> FailureType | None:
        """The schedule entry of call number ``call`` (1-based)."""
        if not self.schedule:
            return None
        index = call - 1
        if self.cycle:
            index %= len(self.schedule)
        return self.schedule[index] if index < len(self.schedule) else None

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Follow the schedule for this call."""
        self.calls += 1
        failure = self.failure_for(self.calls)
        if failure is not None:
            self.failed += 1
            await _apply_tool_failure(
                failure, f"{self.name}: scheduled {failure!r} on call {self.calls}"
            )
        if self.work > 0:
            await trio.sleep(self.work)
        else:
            await trio.lowlevel.checkpoint()
        self.succeeded += 1
        return self._result(args)

    def __repr__(self) -> str:
        return f"<FlakyTool {self.name!r} calls={self.calls}>"


class FaultGate(WrappedTool):
    """Wraps a tool so the harness can inject faults into its next calls.

    It has the wrapped tool's name, description, schema and timeout; each call takes
    the oldest pending :class:`Injection` (if any), carries it out, then (unless it
    raised or hung) runs the wrapped tool.
    """

    def __init__(self, inner: Tool) -> None:
        super().__init__(inner)
        self._pending: collections.deque[Injection] = collections.deque()

    def add(self, injection: Injection) -> None:
        """Queue ``injection`` for the next call."""
        _check_tool_failure(injection.failure)
        self._pending.append(injection)

    def pending(self) -> int:
        """Faults queued and not yet applied."""
        return len(self._pending)

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Apply the oldest pending fault, then run the wrapped tool."""
        if self._pending:
            injection = self._pending.popleft()
            error = injection.failure.make_error(injection.label)
            injection.mark_applied(error)
            if error is not None:
                raise error
            await _apply_tool_failure(injection.failure, injection.label)
        return await self.inner.execute(args)

    def __repr__(self) -> str:
        return f"<FaultGate {self.inner!r}>"
