"""Fault injection for the demo: a model that crashes once, a tool that hangs or flakes.

The faults follow a fixed plan (call numbers, not randomness), so every run of the demo
shows the same failures and the same recoveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import trio

from ..agents import Model, ModelRequest, ModelResponse
from ..tools import Tool, WrappedTool


class InjectedFault(Exception):
    """A failure the demo injects on purpose (handled like any crash: a RuntimeFault)."""


class CrashingModel:
    """Wraps a model and raises :class:`InjectedFault` on its ``crash_on``-th call, once.

    The wrapper outlives the agent's incarnations (it is a spawn argument), so after
    the crash and restart the agent works normally again.
    """

    def __init__(self, inner: Model, *, crash_on: int) -> None:
        if crash_on < 1:
            raise ValueError(f"crash_on must be >= 1, got {crash_on!r}")
        self.inner = inner
        self.crash_on = crash_on
        self.calls = 0
        self.crashed = False

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer like the wrapped model, except for the planned crash."""
        self.calls += 1
        if self.calls == self.crash_on and not self.crashed:
            self.crashed = True
            await trio.lowlevel.checkpoint()
            raise InjectedFault(f"injected crash: the model failed on call {self.calls}")
        return await self.inner.complete(request)


def _numbers(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


@attrs.frozen
class FaultPlan:
    """Which calls of a tool go wrong.

    Attributes:
        hang_on: Call numbers (1-based) that never return (the tool bus's deadline
            cancels them).
        fail_on: Call numbers that raise an ``OSError`` (a flaky disk or network).
    """

    hang_on: frozenset[int] = attrs.field(default=frozenset(), converter=_numbers)
    fail_on: frozenset[int] = attrs.field(default=frozenset(), converter=_numbers)


class FaultyTool(WrappedTool):
    """Wraps a tool (same name, description and schema) and applies a :class:`FaultPlan`.

    Attributes:
        calls: Calls so far.
        hung: Calls that hung.
        failed: Calls that failed on purpose.
    """

    def __init__(self, inner: Tool, plan: FaultPlan, *, timeout: float | None = None) -> None:
        super().__init__(inner, timeout=timeout)
        self.plan = plan
        self.calls = 0
        self.hung = 0
        self.failed = 0

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Run the wrapped tool, unless the plan says this call hangs or fails."""
        self.calls += 1
        if self.calls in self.plan.hang_on:
            self.hung += 1
            await trio.sleep_forever()
        if self.calls in self.plan.fail_on:
            self.failed += 1
            await trio.lowlevel.checkpoint()
            raise OSError(f"injected flaky I/O error on call {self.calls}")
        return await self.inner.execute(args)
