"""``AnthropicModel``: the Messages API with tool use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._http import HttpModel
from ._messages import Message, MessageRole, ToolCall
from ._model import ModelRequest, ModelResponse, StopReason, Usage
from ._parsing import malformed, optional_text, preview, token_count

ANTHROPIC_VERSION = "2023-06-01"

_STOP = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
}


def anthropic_messages(messages: tuple[Message, ...]) -> tuple[str, list[dict[str, Any]]]:
    """``messages`` as the Messages API wants them: the system text apart, then turns
    alternating user/assistant, tool results as ``tool_result`` blocks of a user turn."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        if message.role is MessageRole.SYSTEM:
            system.append(message.content)
        elif message.role is MessageRole.USER:
            push("user", [{"type": "text", "text": message.content or "(empty)"}])
        elif message.role is MessageRole.TOOL:
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message.tool_call_id,
                        "content": message.content,
                        "is_error": message.is_error,
                    }
                ],
            )
        else:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": dict(call.arguments),
                }
                for call in message.tool_calls
            )
            push("assistant", blocks or [{"type": "text", "text": "(no answer)"}])
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
    return "\n\n".join(system), turns


class AnthropicModel(HttpModel):
    """A model behind Anthropic's ``/v1/messages`` endpoint.

    Args:
        model: The model name (e.g. ``"claude-3-5-haiku-latest"``).
        base_url: The API root (default ``https://api.anthropic.com``).
        api_key_env: Environment variable holding the key (default ``ANTHROPIC_API_KEY``).

    Other arguments as for :class:`~mister_smith.agents.HttpModel`. The key goes in the
    ``x-api-key`` header and is never logged or shown in errors or ``repr``.
    """

    default_base_url = "https://api.anthropic.com"
    path = "/v1/messages"
    default_api_key_env = "ANTHROPIC_API_KEY"

    def build_headers(self) -> dict[str, str]:
        """API key and version headers."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        key = self._api_key
        if key:
            headers["x-api-key"] = key
        return headers

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The Messages API request body."""
        system, turns = anthropic_messages(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.limits.max_output_tokens,
            "messages": turns,
        }
        if system:
            body["system"] = system
        if request.limits.temperature is not None:
            body["temperature"] = request.limits.temperature
        if request.tools:
            body["tools"] = [
                {
                    "name": spec.name,
                    "description": spec.description,
                    "input_schema": dict(spec.input_schema),
                }
                for spec in request.tools
            ]
        return body

    def parse_response(self, data: Any) -> ModelResponse:
        """Text blocks, tool-use blocks, stop reason and usage.

        Raises:
            MalformedModelResponse: a field missing or of the wrong type, tool input
                that is not an object, implausible token counts.
        """
        endpoint = self.endpoint
        if not isinstance(data, Mapping):
            raise malformed(endpoint, "a JSON body that is not an object")
        content = data.get("content")
        if not isinstance(content, list):
            raise malformed(endpoint, "no content blocks")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in content:
            if not isinstance(block, Mapping):
                raise malformed(
                    endpoint, f"a content block that is not an object: {preview(block)}"
                )
            kind = block.get("type")
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise malformed(endpoint, "a text block without text")
                texts.append(block["text"])
            elif kind == "tool_use":
                arguments = block.get("input", {})
                if not isinstance(block.get("name"), str) or not isinstance(arguments, dict):
                    raise malformed(endpoint, f"a malformed tool_use block: {preview(block)}")
                call_id = optional_text(endpoint, block, "id") or ""
                calls.append(ToolCall(call_id, block["name"], arguments))
        usage = data.get("usage") or {}
        if not isinstance(usage, Mapping):
            raise malformed(endpoint, "usage that is not an object")
        stop = data.get("stop_reason")
        return ModelResponse(
            text="".join(texts),
            tool_calls=tuple(calls),
            usage=Usage(
                token_count(endpoint, usage, "input_tokens"),
                token_count(endpoint, usage, "output_tokens"),
                1,
            ),
            stop_reason=_STOP.get(
                stop if isinstance(stop, str) else "",
                StopReason.TOOL_USE if calls else StopReason.OTHER,
            ),
            model=optional_text(endpoint, data, "model") or self.model,
        )
