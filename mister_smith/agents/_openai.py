"""``OpenAICompatibleModel``: chat completions with tool calls (OpenAI, vLLM, llama.cpp
server, Ollama and other servers speaking the same API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Unpack

from ._errors import UnsupportedModelOption
from ._http import HttpModel, HttpModelOptions
from ._messages import Message, MessageRole, ToolCall
from ._model import ModelRequest, ModelResponse, StopReason, Usage
from ._openai_stream import OpenAIStreamAssembler
from ._options import ModelOptions
from ._parsing import malformed, optional_text, parse_arguments, preview, token_count
from ._wire_names import ToolNames

_FINISH = {
    "stop": StopReason.END_TURN,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "length": StopReason.MAX_TOKENS,
    "content_filter": StopReason.REFUSAL,
}

EMPTY_ANSWER = "(no answer)"
"""Sent for an assistant turn that had neither text nor tool calls: the API refuses an
assistant message whose ``content`` is ``null`` without tool calls."""

EMPTY_TOOL_OUTPUT = "(no output)"
"""Sent for a tool that returned nothing: an empty result is refused by some APIs."""

MaxTokensField = Literal["max_completion_tokens", "max_tokens"]


def openai_messages(
    messages: tuple[Message, ...], names: ToolNames | None = None
) -> list[dict[str, Any]]:
    """``messages`` in the chat-completions wire format (tool names as ``names`` maps
    them; by default each ``.`` becomes ``_``)."""
    names = names or ToolNames(())
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role is MessageRole.TOOL:
            content = message.content or EMPTY_TOOL_OUTPUT
            if message.is_error and not content.startswith("ERROR"):
                content = f"ERROR: {content}"
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        elif message.role is MessageRole.ASSISTANT:
            if message.tool_calls:
                entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": names.wire(call.name),
                            "arguments": call.arguments_json(),
                        },
                    }
                    for call in message.tool_calls
                ]
            else:
                entry = {"role": "assistant", "content": message.content or EMPTY_ANSWER}
            out.append(entry)
        else:
            out.append({"role": message.role.value, "content": message.content})
    return out


def openai_options(
    body: dict[str, Any], options: ModelOptions, names: ToolNames, has_tools: bool
) -> None:
    """Add ``options`` to a chat-completions ``body``.

    Raises:
        UnsupportedModelOption: ``thinking_budget`` (Anthropic's; use
            ``reasoning_effort``), or a ``tool_choice`` naming a tool not offered.
    """
    if options.thinking_budget is not None:
        raise UnsupportedModelOption(
            "thinking_budget is Anthropic's extended thinking; OpenAI models take reasoning_effort"
        )
    choice = options.tool_choice
    if choice is not None:
        if choice in ("auto", "none", "required"):
            body["tool_choice"] = choice
        elif not has_tools or choice not in names.offered:
            raise UnsupportedModelOption(f"tool_choice names {choice!r}, a tool not offered")
        else:
            body["tool_choice"] = {"type": "function", "function": {"name": names.wire(choice)}}
    if options.parallel_tool_calls is not None and has_tools:
        # the API refuses parallel_tool_calls in a request without tools
        body["parallel_tool_calls"] = options.parallel_tool_calls
    if options.response_format is not None:
        body["response_format"] = dict(options.response_format)
    if options.stop:
        body["stop"] = list(options.stop)
    if options.reasoning_effort is not None:
        body["reasoning_effort"] = options.reasoning_effort
    if options.metadata:
        body["metadata"] = dict(options.metadata)
    body.update(options.extra_body)


class OpenAICompatibleModel(HttpModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: The model name sent to the endpoint (e.g. ``"gpt-5-mini"``).
        base_url: The API root (default ``https://api.openai.com/v1``; e.g.
            ``http://127.0.0.1:11434/v1`` for Ollama).
        api_key_env: Environment variable holding the key (default ``OPENAI_API_KEY``).
        require_api_key: ``False`` for local servers that need none.
        max_tokens_field: How the output limit is sent: ``"max_completion_tokens"``
            (default; OpenAI refuses ``max_tokens`` for reasoning models) or
            ``"max_tokens"`` for older servers that only know that one.

    Other arguments as for :class:`~mister_smith.agents.HttpModel`. The key is sent as
    a bearer token and never logged or shown in errors or ``repr``. A refusal
    (``message.refusal``, ``finish_reason: content_filter``) comes back as
    :attr:`StopReason.REFUSAL` with the refusal text, a cut answer as
    :attr:`StopReason.MAX_TOKENS`; an agent turns both into typed errors.
    """

    default_base_url = "https://api.openai.com/v1"
    path = "/chat/completions"
    provider = "openai"
    """``gen_ai.system`` of its model-call spans."""
    default_api_key_env = "OPENAI_API_KEY"

    def __init__(
        self,
        model: str,
        *,
        max_tokens_field: MaxTokensField = "max_completion_tokens",
        **options: Unpack[HttpModelOptions],
    ) -> None:
        if max_tokens_field not in ("max_completion_tokens", "max_tokens"):
            raise ValueError(
                f"max_tokens_field must be 'max_completion_tokens' or 'max_tokens', "
                f"got {max_tokens_field!r}"
            )
        super().__init__(model, **options)
        self.max_tokens_field = max_tokens_field

    def build_headers(self) -> dict[str, str]:
        """Bearer authorization (when a key is set)."""
        key = self._api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The chat-completions request body.

        Raises:
            InvalidToolName: a tool name no API accepts.
            UnsupportedModelOption: an option this API cannot take.
        """
        names = ToolNames(spec.name for spec in request.tools)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(request.messages, names),
            self.max_tokens_field: request.limits.max_output_tokens,
        }
        if request.limits.temperature is not None:
            body["temperature"] = request.limits.temperature
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": names.wire(spec.name),
                        "description": spec.description,
                        "parameters": dict(spec.input_schema),
                    },
                }
                for spec in request.tools
            ]
        openai_options(body, request.options, names, bool(request.tools))
        return body

    def build_stream_body(self, request: ModelRequest) -> dict[str, Any]:
        """The request body asking for server-sent chunks (usage in the last one)."""
        body = self.build_body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    def new_stream(self, request: ModelRequest) -> OpenAIStreamAssembler:
        """An assembler of chat-completion chunks answering ``request``."""
        names = ToolNames(spec.name for spec in request.tools)
        return OpenAIStreamAssembler(self.endpoint, names, self.model, _FINISH, openai_usage)

    def parse_response(self, data: Any, request: ModelRequest | None = None) -> ModelResponse:
        """Text, refusal, tool calls, finish reason and usage of the first choice (tool
        names mapped back to ``request``'s).

        Raises:
            MalformedModelResponse: a field missing or of the wrong type, tool-call
                arguments that are not a JSON object, implausible token counts.
        """
        endpoint = self.endpoint
        names = ToolNames(() if request is None else (t.name for t in request.tools))
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
        refusal = optional_text(endpoint, message, "refusal")
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
                    names.original(function["name"]),
                    parse_arguments(endpoint, function.get("arguments", "{}")),
                )
            )
        finish = choices[0].get("finish_reason")
        stop = _FINISH.get(
            finish if isinstance(finish, str) else "",
            StopReason.TOOL_USE if calls else StopReason.OTHER,
        )
        if refusal:
            stop = StopReason.REFUSAL
        return ModelResponse(
            text=text,
            tool_calls=tuple(calls),
            usage=openai_usage(endpoint, data.get("usage")),
            stop_reason=stop,
            model=optional_text(endpoint, data, "model") or self.model,
            refusal=refusal or None,
        )


def openai_usage(endpoint: str, usage: Any) -> Usage:
    """A chat-completions ``usage`` object as :class:`Usage` (cached prompt tokens,
    which ``prompt_tokens`` includes, counted as cache reads).

    Raises:
        MalformedModelResponse: not an object, or implausible counts.
    """
    usage = usage or {}
    if not isinstance(usage, Mapping):
        raise malformed(endpoint, "usage that is not an object")
    prompt = token_count(endpoint, usage, "prompt_tokens")
    details = usage.get("prompt_tokens_details") or {}
    if not isinstance(details, Mapping):
        raise malformed(endpoint, "prompt_tokens_details that is not an object")
    cached = min(prompt, token_count(endpoint, details, "cached_tokens"))
    return Usage(prompt, token_count(endpoint, usage, "completion_tokens"), 1, cached)
