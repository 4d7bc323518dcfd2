"""The plumbing of an agent's stream: the agent's end (:class:`EventSink`), the
consumer's end (:class:`AgentStream`) and the message asking an agent actor to stream.

Events go through a Trio memory channel (unbuffered by default), so the agent waits for
its consumer: backpressure. When the consumer leaves, the agent's work on the task is
cancelled at once (its model request included), by a watcher on ``stop`` or by the
failed send, whichever comes first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio

from ._streaming import AgentFinalResult, AgentStreamEvent


class EventSink:
    """Where an agent sends the events of a streamed task.

    Args:
        channel: The consumer's channel.
        scope: The cancel scope of the task's work, cancelled when the consumer is gone.
    """

    def __init__(
        self, channel: trio.MemorySendChannel[AgentStreamEvent], scope: trio.CancelScope
    ) -> None:
        self._channel = channel
        self._scope = scope
        self.consumer_gone = False

    async def send(self, event: AgentStreamEvent) -> None:
        """Send ``event``, waiting for the consumer; if it has gone, cancel the work."""
        try:
            await self._channel.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.consumer_gone = True
            self._scope.cancel()
            await trio.lowlevel.checkpoint()  # raises Cancelled: the work stops here


@attrs.frozen(eq=False)
class AgentStreamRequest:
    """Asks an agent actor to work on ``task`` and stream its progress to ``channel``;
    setting ``stop`` cancels the work (the consumer left)."""

    task: Any
    channel: trio.MemorySendChannel[AgentStreamEvent]
    stop: trio.Event


class AgentStream:
    """The consumer's end: an async iterator of the agent's events, ending after
    :class:`AgentFinalResult` (or when the work failed; the error is raised when the
    ``async with`` block ends)."""

    def __init__(self, channel: trio.MemoryReceiveChannel[AgentStreamEvent]) -> None:
        self._channel = channel
        self.ended = False
        self.result: Any = None

    def __aiter__(self) -> AsyncIterator[AgentStreamEvent]:
        return self

    async def __anext__(self) -> AgentStreamEvent:
        try:
            event = await self._channel.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.ended = True
            raise StopAsyncIteration from None
        if isinstance(event, AgentFinalResult):
            self.result = event.result
        return event

    async def aclose(self) -> None:
        """Stop receiving (the agent's next send finds the consumer gone)."""
        await self._channel.aclose()


async def cancel_when_set(stop: trio.Event, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once ``stop`` is set."""
    await stop.wait()
    scope.cancel()


def sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a nursery wrapped, else the group itself."""
    if len(group.exceptions) == 1:
        inner = group.exceptions[0]
        return sole(inner) if isinstance(inner, BaseExceptionGroup) else inner
    return group
