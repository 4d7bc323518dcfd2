"""Assembling a streamed Messages API answer: ``message_start``, content blocks started,
grown by deltas and stopped, ``message_delta`` (stop reason, usage), ``message_stop``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import ModelHTTPError, ModelRateLimited
from ._messages import ToolCall
from ._model import ModelResponse, StopReason
from ._parsing import loads_strict, malformed, optional_text, parse_arguments, preview
from ._sse import ServerSentEvent
from ._streaming import ModelStreamEvent, TextDelta, ToolCallArgumentsDelta, ToolCallStarted
from ._wire_names import ToolNames

MAX_STREAMED_BLOCKS = 1024
"""Most content blocks assembled from one stream."""

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class AnthropicStreamAssembler:
    """Feeds on Messages API stream events.

    Args:
        endpoint: Named in errors.
        names: Maps the wire tool names back.
        model: The model name when the stream names none.
        stop_map: ``stop_reason`` → :class:`StopReason`.
        read_usage: Turns a ``usage`` object into :class:`~mister_smith.agents.Usage`.
        reasoning_blocks: Block types kept opaque and replayed (thinking).
    """

    def __init__(
        self,
        endpoint: str,
        names: ToolNames,
        model: str,
        stop_map: Mapping[str, StopReason],
        read_usage: Any,
        reasoning_blocks: frozenset[str],
    ) -> None:
        self.endpoint = endpoint
        self.names = names
        self.model = model
        self._stop_map = stop_map
        self._read_usage = read_usage
        self._reasoning_types = reasoning_blocks
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self._usage: dict[str, Any] = {}
        self._stop: str | None = None
        self.done = False

    def feed(self, event: ServerSentEvent) -> list[ModelStreamEvent]:
        """The stream events in one server-sent event.

        Raises:
            MalformedModelResponse: an event that is not the API's JSON.
            ModelRateLimited / ModelHTTPError: the server streamed an error event.
        """
        endpoint = self.endpoint
        data = loads_strict(endpoint, event.data, "a stream event")
        if not isinstance(data, Mapping):
            raise malformed(endpoint, f"a stream event that is not an object: {preview(data)}")
        kind = data.get("type", event.event)
        if kind == "error":
            self._raise_error(data.get("error"))
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, Mapping):
                raise malformed(endpoint, "a message_start without a message")
            self.model = optional_text(endpoint, message, "model") or self.model
            self._merge_usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._start(data)
        elif kind == "content_block_delta":
            return self._delta(data)
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if isinstance(delta, Mapping) and isinstance(delta.get("stop_reason"), str):
                self._stop = delta["stop_reason"]
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
        return []

    def _raise_error(self, error: Any) -> None:
        kind = error.get("type") if isinstance(error, Mapping) else None
        message = error.get("message") if isinstance(error, Mapping) else error
        text = f"model endpoint {self.endpoint} streamed an error ({kind}): {str(message)[:200]}"
        if kind in ("rate_limit_error", "overloaded_error"):
            raise ModelRateLimited(text, endpoint=self.endpoint)
        raise ModelHTTPError(text, endpoint=self.endpoint)

    def _index(self, data: Mapping[str, Any]) -> int:
        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise malformed(
                self.endpoint, f"a content block event without an index: {preview(data)}"
            )
        return index

    def _start(self, data: Mapping[str, Any]) -> list[ModelStreamEvent]:
        index = self._index(data)
        block = data.get("content_block")
        if not isinstance(block, Mapping):
            raise malformed(
                self.endpoint, f"a content_block_start without a block: {preview(data)}"
            )
        if len(self._blocks) >= MAX_STREAMED_BLOCKS:
            raise malformed(self.endpoint, f"more than {MAX_STREAMED_BLOCKS} content blocks")
        self._blocks[index] = dict(block)
        if block.get("type") == "tool_use":
            name = optional_text(self.endpoint, block, "name")
            if not name:
                raise malformed(self.endpoint, f"a tool_use block without a name: {preview(block)}")
            self._blocks[index]["name"] = self.names.original(name)
            self._json[index] = []
            call_id = optional_text(self.endpoint, block, "id") or ""
            return [ToolCallStarted(index, call_id, self._blocks[index]["name"])]
        text = block.get("text")
        if block.get("type") == "text" and isinstance(text, str) and text:
            return [TextDelta(text)]
        return []

    def _delta(self, data: Mapping[str, Any]) -> list[ModelStreamEvent]:
        index = self._index(data)
        block = self._blocks.get(index)
        delta = data.get("delta")
        if block is None or not isinstance(delta, Mapping):
            raise malformed(self.endpoint, f"a delta for no started block: {preview(data)}")
        kind = delta.get("type")
        if kind == "text_delta":
            text = optional_text(self.endpoint, delta, "text") or ""
            block["text"] = block.get("text", "") + text
            return [TextDelta(text)] if text else []
        if kind == "input_json_delta":
            fragment = optional_text(self.endpoint, delta, "partial_json") or ""
            self._json.setdefault(index, []).append(fragment)
            return [ToolCallArgumentsDelta(index, fragment)] if fragment else []
        if kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + str(delta.get("signature", ""))
        return []

    def _merge_usage(self, usage: Any) -> None:
        if usage is None:
            return
        if not isinstance(usage, Mapping):
            raise malformed(self.endpoint, "usage that is not an object")
        for key in _USAGE_KEYS:
            if usage.get(key) is not None:
                self._usage[key] = usage[key]

    def finish(self) -> ModelResponse:
        """The whole response.

        Raises:
            MalformedModelResponse: tool input that is not a JSON object.
        """
        texts: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[Mapping[str, Any]] = []
        for index, block in sorted(self._blocks.items()):
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "tool_use":
                raw = "".join(self._json.get(index, ())) or "{}"
                arguments = parse_arguments(self.endpoint, raw)
                calls.append(ToolCall(str(block.get("id", "")), str(block["name"]), arguments))
            elif kind in self._reasoning_types:
                reasoning.append(block)
        text = "".join(texts)
        stop = self._stop_map.get(
            self._stop or "", StopReason.TOOL_USE if calls else StopReason.OTHER
        )
        return ModelResponse(
            text=text,
            tool_calls=tuple(calls),
            usage=self._read_usage(self.endpoint, self._usage),
            stop_reason=stop,
            model=self.model,
            refusal=(text or "refused") if stop is StopReason.REFUSAL else None,
            reasoning=tuple(reasoning),
        )
