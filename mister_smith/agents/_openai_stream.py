"""Assembling a streamed chat completion: text, refusal and tool-call fragments as they
arrive, then the whole :class:`ModelResponse` (as the non-streamed answer would be)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import ModelHTTPError
from ._messages import ToolCall
from ._model import ModelResponse, StopReason, Usage
from ._parsing import loads_strict, malformed, optional_text, parse_arguments, preview
from ._sse import ServerSentEvent
from ._streaming import ModelStreamEvent, TextDelta, ToolCallArgumentsDelta, ToolCallStarted
from ._wire_names import ToolNames

MAX_STREAMED_TOOL_CALLS = 1024
"""Most tool calls assembled from one stream (each index opens one)."""


@attrs.define
class _PartialCall:
    id: str
    name: str
    arguments: list[str] = attrs.field(factory=list)


class OpenAIStreamAssembler:
    """Feeds on chat-completion chunks (``data: {...}`` lines, then ``data: [DONE]``).

    Args:
        endpoint: Named in errors.
        names: Maps the wire tool names back.
        model: The model name when the chunks name none.
        finish_map: ``finish_reason`` → :class:`StopReason`.
        read_usage: Turns a ``usage`` object into :class:`Usage`.
    """

    def __init__(
        self,
        endpoint: str,
        names: ToolNames,
        model: str,
        finish_map: Mapping[str, StopReason],
        read_usage: Any,
    ) -> None:
        self.endpoint = endpoint
        self.names = names
        self.model = model
        self._finish_map = finish_map
        self._read_usage = read_usage
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self._finish: str | None = None
        self._usage = Usage()
        self.done = False

    def feed(self, event: ServerSentEvent) -> list[ModelStreamEvent]:
        """The stream events in one chunk.

        Raises:
            MalformedModelResponse: a chunk that is not the API's JSON.
            ModelHTTPError: the server streamed an error object.
        """
        endpoint = self.endpoint
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        data = loads_strict(endpoint, event.data, "a stream chunk")
        if not isinstance(data, Mapping):
            raise malformed(endpoint, f"a stream chunk that is not an object: {preview(data)}")
        error = data.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, Mapping) else error
            raise ModelHTTPError(
                f"model endpoint {endpoint} streamed an error: {str(message)[:200]}",
                endpoint=endpoint,
            )
        self.model = optional_text(endpoint, data, "model") or self.model
        if data.get("usage") is not None:
            self._usage = self._read_usage(endpoint, data["usage"])
        choices = data.get("choices") or []
        if not isinstance(choices, list):
            raise malformed(endpoint, "choices that are not a list")
        out: list[ModelStreamEvent] = []
        for choice in choices:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self._finish = finish
            delta = choice.get("delta") or {}
            if not isinstance(delta, Mapping):
                raise malformed(endpoint, f"a delta that is not an object: {preview(delta)}")
            out.extend(self._delta(delta))
        return out

    def _delta(self, delta: Mapping[str, Any]) -> list[ModelStreamEvent]:
        endpoint = self.endpoint
        out: list[ModelStreamEvent] = []
        text = optional_text(endpoint, delta, "content")
        if text:
            self._text.append(text)
            out.append(TextDelta(text))
        refusal = optional_text(endpoint, delta, "refusal")
        if refusal:
            self._refusal.append(refusal)
        calls = delta.get("tool_calls") or []
        if not isinstance(calls, list):
            raise malformed(endpoint, f"tool_calls that are not a list: {preview(calls)}")
        for raw in calls:
            index = raw.get("index") if isinstance(raw, Mapping) else None
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise malformed(endpoint, f"a tool-call delta without an index: {preview(raw)}")
            function = raw.get("function") or {}
            if not isinstance(function, Mapping):
                raise malformed(endpoint, f"a tool-call delta without a function: {preview(raw)}")
            partial = self._calls.get(index)
            if partial is None:
                if len(self._calls) >= MAX_STREAMED_TOOL_CALLS:
                    raise malformed(endpoint, f"more than {MAX_STREAMED_TOOL_CALLS} tool calls")
                name = optional_text(endpoint, function, "name")
                if not name:
                    raise malformed(endpoint, f"a tool call without a name: {preview(raw)}")
                call_id = optional_text(endpoint, raw, "id") or f"call-{index + 1}"
                partial = self._calls[index] = _PartialCall(call_id, self.names.original(name))
                out.append(ToolCallStarted(index, partial.id, partial.name))
            fragment = optional_text(endpoint, function, "arguments")
            if fragment:
                partial.arguments.append(fragment)
                out.append(ToolCallArgumentsDelta(index, fragment))
        return out

    def finish(self) -> ModelResponse:
        """The whole response.

        Raises:
            MalformedModelResponse: tool-call arguments that are not a JSON object.
        """
        calls = tuple(
            ToolCall(p.id, p.name, parse_arguments(self.endpoint, "".join(p.arguments) or "{}"))
            for _, p in sorted(self._calls.items())
        )
        refusal = "".join(self._refusal) or None
        stop = self._finish_map.get(
            self._finish or "", StopReason.TOOL_USE if calls else StopReason.OTHER
        )
        if refusal:
            stop = StopReason.REFUSAL
        return ModelResponse(
            text="".join(self._text),
            tool_calls=calls,
            usage=self._usage,
            stop_reason=stop,
            model=self.model,
            refusal=refusal,
        )
