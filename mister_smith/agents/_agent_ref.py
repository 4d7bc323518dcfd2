"""``AgentRef``: the ref :func:`~mister_smith.agents.spawn_agent` returns — an
:class:`~mister_smith.actors.ActorRef` that can also stream a task."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio

from ..actors import ActorRef, DurableActorRef
from ._agent_stream import AgentStream, AgentStreamRequest, sole
from ._streaming import AgentStreamEvent
from ._task import AgentTask


class AgentRef(ActorRef):
    """A ref to an agent actor: ``ask`` returns its :class:`AgentResult` (``.output``
    typed when the spec has an ``output_type``); :meth:`stream` yields its progress."""

    __slots__ = ()

    @classmethod
    def of(cls, ref: ActorRef) -> AgentRef:
        """The same actor, seen as an agent (a :class:`DurableAgentRef` for a durable
        one)."""
        if isinstance(ref, AgentRef):
            return ref
        if isinstance(ref, DurableActorRef):
            return DurableAgentRef(ref._cell)
        return cls(ref._cell)

    @contextlib.asynccontextmanager
    async def stream(
        self, task: Any, *, timeout: float | None = None, buffer: int = 0
    ) -> AsyncIterator[AgentStream]:
        """Give the agent ``task`` and iterate over its events as it works::

            async with agent.stream("write the report", timeout=60) as events:
                async for event in events:
                    if isinstance(event, AgentTextDelta):
                        print(event.text, end="")

        Events are text deltas, tool calls started and finished, turns ended and the
        final result (``AgentStreamEvent``). The agent waits for the consumer
        (``buffer`` events may queue). Leaving the block early cancels the agent's work
        on the task, its model request included. ``timeout`` is the task's deadline.

        Raises (when the block ends):
            ActorCrashed: the agent failed on the task (the cause attached).
            ActorStopped: the agent is stopped.
        """
        request_task = AgentTask.coerce(task)
        if timeout is not None:
            deadline = trio.current_time() + timeout
            if request_task.deadline is None or deadline < request_task.deadline:
                request_task = attrs.evolve(request_task, deadline=deadline)
        send, receive = trio.open_memory_channel[AgentStreamEvent](buffer)
        stream = AgentStream(receive)
        stop = trio.Event()
        request = AgentStreamRequest(request_task, send, stop)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(self.ask, request, timeout=math.inf))
                async with receive:
                    try:
                        yield stream
                    finally:
                        stop.set()
                        if not stream.ended:
                            nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise sole(group) from None


class DurableAgentRef(AgentRef, DurableActorRef):
    """A ref to a durable agent (``spawn_agent(..., durable=True)``): ``tell``/``ask``
    commit the task to the agent's durable mailbox first (see
    :class:`~mister_smith.actors.DurableActorRef`); send the task as a string or a
    mapping (``{"task": ..., "timeout": ...}``) so it can be stored."""

    __slots__ = ()
