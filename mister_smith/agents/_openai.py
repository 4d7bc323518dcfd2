"""``OpenAICompatibleModel``: chat completions with tool calls (OpenAI, vLLM, llama.cpp
server, Ollama and other servers speaking the same API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._http import HttpModel
from ._messages import Message, MessageRole, ToolCall
from ._model import ModelRequest, ModelResponse, StopReason, Usage
from ._parsing import malformed, optional_text, parse_arguments, preview, token_count

_FINISH = {
    "stop": StopReason.END_TURN,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "length": StopReason.MAX_TOKENS,
}


def openai_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """``messages`` in the chat-completions wire format."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role is MessageRole.TOOL:
            content = message.content
            if message.is_error and not content.startswith("ERROR"):
                content = f"ERROR: {content}"
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        elif message.role is MessageRole.ASSISTANT:
            entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json()},
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        else:
            out.append({"role": message.role.value, "content": message.content})
    return out


class OpenAICompatibleModel(HttpModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: The model name sent to the endpoint (e.g. ``"gpt-4o-mini"``).
        base_url: The API root (default ``https://api.openai.com/v1``; e.g.
            ``http://127.0.0.1:11434/v1`` for Ollama).
        api_key_env: Environment variable holding the key (default ``OPENAI_API_KEY``).
        require_api_key: ``False`` for local servers that need none.

    Other arguments as for :class:`~mister_smith.agents.HttpModel`. The key is sent as
    a bearer token and never logged or shown in errors or ``repr``.
    """

    default_base_url = "https://api.openai.com/v1"
    path = "/chat/completions"
    default_api_key_env = "OPENAI_API_KEY"

    def build_headers(self) -> dict[str, str]:
        """Bearer authorization (when a key is set)."""
        key = self._api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completions request body."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(request.messages),
            "max_tokens": request.limits.max_output_tokens,
        }
        if request.limits.temperature is not None:
            body["temperature"] = request.limits.temperature
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": spec.name,
                        "description": spec.description,
                        "parameters": dict(spec.input_schema),
                    },
                }
                for spec in request.tools
            ]
        return body

    def parse_response(self, data: Any) -> ModelResponse:
        """Text, tool calls, finish reason and usage of the first choice.

        Raises:
            MalformedModelResponse: a field missing or of the wrong type, tool-call
                arguments that are not a JSON object, implausible token counts.
        """
        endpoint = self.endpoint
        if not isinstance(data, Mapping):
            raise malformed(endpoint, "a JSON body that is not an object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise malformed(endpoint, "no choices")
        message = choices[0].get("message")
        if not isinstance(message, Mapping):
            raise malformed(endpoint, "a choice without a message")
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise malformed(endpoint, f"message content that is not text: {preview(text)}")
        raw_calls = message.get("tool_calls") or ()
        if not isinstance(raw_calls, list | tuple):
            raise malformed(endpoint, f"tool_calls that are not a list: {preview(raw_calls)}")
        calls: list[ToolCall] = []
        for raw in raw_calls:
            function = raw.get("function") if isinstance(raw, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                raise malformed(endpoint, f"a tool call without a function name: {preview(raw)}")
            call_id = optional_text(endpoint, raw, "id")
            calls.append(
                ToolCall(
                    call_id or f"call-{len(calls) + 1}",
                    function["name"],
                    parse_arguments(endpoint, function.get("arguments", "{}")),
                )
            )
        usage = data.get("usage") or {}
        if not isinstance(usage, Mapping):
            raise malformed(endpoint, "usage that is not an object")
        finish = choices[0].get("finish_reason")
        return ModelResponse(
            text=text,
            tool_calls=tuple(calls),
            usage=Usage(
                token_count(endpoint, usage, "prompt_tokens"),
                token_count(endpoint, usage, "completion_tokens"),
                1,
            ),
            stop_reason=_FINISH.get(
                finish if isinstance(finish, str) else "",
                StopReason.TOOL_USE if calls else StopReason.OTHER,
            ),
            model=optional_text(endpoint, data, "model") or self.model,
        )
