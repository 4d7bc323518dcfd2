"""Which tool call a task is in, and running blocking code under the bus's thread limiter."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import attrs
import trio

from ..types import Caller

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


@attrs.frozen
class ToolCallContext:
    """The tool call the current task is inside (see :func:`current_tool_call`).

    Attributes:
        tool: The tool's name.
        caller: Who called it (as text, with whom it acts for).
        limiter: The calling bus's blocking-thread limiter.
        principal: The caller as presented to the bus (a ``CallerIdentity``, or a plain
            name for an unauthenticated call of an open tool).
        on_behalf_of: Whom the caller acts for, outermost first.
    """

    tool: str
    caller: str
    limiter: trio.CapacityLimiter | None = None
    principal: Caller | None = None
    on_behalf_of: tuple[Caller, ...] = ()

    def delegation(self) -> tuple[Caller, ...]:
        """Whom work done for this call acts for: ``on_behalf_of`` then the caller.

        :class:`AgentTool` hands it to its target, so an agent working on a delegated
        task may only use tools every one of them may use.
        """
        if self.principal is None:
            return self.on_behalf_of
        return (*self.on_behalf_of, self.principal)


CURRENT_TOOL_CALL: contextvars.ContextVar[ToolCallContext | None] = contextvars.ContextVar(
    "mister_smith_tool_call", default=None
)
"""Set by :meth:`ToolBus.call` for the duration of the tool's execution."""


class _StepState(threading.local):
    """Per Trio thread: the last tool call that ended during the current task step.

    A tool that blocks without ever checkpointing runs entirely inside one task step,
    which may end after the call already returned; the blocking detector resets this at
    each step's start and reads it at its end, so it can still name the tool.
    """

    last_tool: str | None = None


STEP_STATE = _StepState()


def current_tool_call() -> ToolCallContext | None:
    """The tool call the current task is running inside, if any."""
    return CURRENT_TOOL_CALL.get()


async def run_blocking(
    fn: Callable[[Unpack[Ts]], R], *args: *Ts, thread_name: str | None = None
) -> R:
    """Run blocking ``fn(*args)`` in a worker thread without blocking the Trio loop.

    Inside a :class:`ToolBus` call the bus's blocking-thread limiter is used (sized by
    ``blocking_threads``), elsewhere Trio's default one. On cancellation (a tool
    deadline) the thread is abandoned: the call returns at once and the thread's result
    is discarded when it finishes; it keeps its limiter slot until then, so abandoned
    threads stay bounded too.
    """
    call = CURRENT_TOOL_CALL.get()
    limiter = call.limiter if call is not None else None
    return await trio.to_thread.run_sync(
        fn, *args, thread_name=thread_name, abandon_on_cancel=True, limiter=limiter
    )
