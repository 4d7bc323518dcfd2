"""Streaming: a model's answer as it is generated, and an agent's progress as it works.

A model that can stream has ``stream(request)``: an async generator of
:data:`ModelStreamEvent` ending with :class:`ResponseCompleted` (the whole
:class:`ModelResponse`, as ``complete`` would have returned it). :func:`stream_model`
streams any model, falling back to one ``complete`` call for models that cannot.

Consumers must close the generator when they stop early (``async with
contextlib.aclosing(...)``): closing it cancels the HTTP request behind it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol, runtime_checkable

import attrs

from ._errors import MalformedModelResponse
from ._messages import ToolCall
from ._model import Model, ModelRequest, ModelResponse, Usage
from ._sse import ServerSentEvent


@attrs.frozen
class TextDelta:
    """More answer text."""

    text: str


@attrs.frozen
class ToolCallStarted:
    """The model began a tool call (its arguments follow, then the response ends)."""

    index: int
    id: str
    name: str


@attrs.frozen
class ToolCallArgumentsDelta:
    """More of the JSON arguments of the tool call at ``index``."""

    index: int
    fragment: str


@attrs.frozen
class ResponseCompleted:
    """The response is complete (the last event of a model stream)."""

    response: ModelResponse


ModelStreamEvent = TextDelta | ToolCallStarted | ToolCallArgumentsDelta | ResponseCompleted
"""What a model stream yields."""


class StreamAssembler(Protocol):
    """Builds a model's response from the server-sent events of its stream."""

    done: bool
    """Whether the stream said it is over."""

    def feed(self, event: ServerSentEvent) -> list[ModelStreamEvent]:
        """The stream events one server-sent event holds."""
        ...

    def finish(self) -> ModelResponse:
        """The whole response."""
        ...


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A :class:`~mister_smith.agents.Model` that can also stream its answer."""

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelStreamEvent, None]:
        """Answer ``request`` event by event, ending with :class:`ResponseCompleted`."""
        ...


async def stream_model(
    model: Model, request: ModelRequest
) -> AsyncGenerator[ModelStreamEvent, None]:
    """Stream ``model``'s answer; a model without ``stream`` answers in one piece."""
    if isinstance(model, StreamingModel):
        events = model.stream(request)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()
        return
    for event in events_of(await model.complete(request)):
        yield event


def events_of(response: ModelResponse) -> list[ModelStreamEvent]:
    """The events streaming ``response`` in one piece would give."""
    events: list[ModelStreamEvent] = [TextDelta(response.text)] if response.text else []
    events.extend(
        ToolCallStarted(index, call.id, call.name) for index, call in enumerate(response.tool_calls)
    )
    events.append(ResponseCompleted(response))
    return events


# --- what an agent's stream yields ---------------------------------------------------------


@attrs.frozen
class AgentTextDelta:
    """More of the model's text in turn ``turn``."""

    text: str
    turn: int


@attrs.frozen
class AgentToolCallStarted:
    """The agent started running ``call``."""

    call: ToolCall
    turn: int


@attrs.frozen
class AgentToolCallFinished:
    """``call`` finished: its result text (the error text when ``is_error``)."""

    call: ToolCall
    result: str
    is_error: bool
    turn: int


@attrs.frozen
class AgentTurnEnded:
    """Turn ``turn`` is over (its tool calls done); ``usage`` is the task's so far."""

    turn: int
    usage: Usage


@attrs.frozen
class AgentFinalResult:
    """The task's result (the last event of an agent stream)."""

    result: Any

    @property
    def output(self) -> Any:
        """The typed output (the answer text without an ``output_type``)."""
        return self.result.output


AgentStreamEvent = (
    AgentTextDelta
    | AgentToolCallStarted
    | AgentToolCallFinished
    | AgentTurnEnded
    | AgentFinalResult
)
"""What an agent's stream yields."""


async def collect(events: AsyncIterator[ModelStreamEvent]) -> ModelResponse:
    """The response a model stream ends with.

    Raises:
        MalformedModelResponse: the stream ended without a :class:`ResponseCompleted`.
    """
    async for event in events:
        if isinstance(event, ResponseCompleted):
            return event.response
    raise MalformedModelResponse("the model stream ended without a complete response")
