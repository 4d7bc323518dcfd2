"""``AnthropicModel``: the Messages API with tool use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from ._anthropic_stream import AnthropicStreamAssembler
from ._errors import UnsupportedModelOption
from ._http import HttpModel, HttpModelOptions
from ._messages import Message, MessageRole, ToolCall
from ._model import ModelRequest, ModelResponse, StopReason, Usage
from ._options import ModelOptions
from ._parsing import malformed, optional_text, preview, token_count
from ._wire_names import ToolNames

ANTHROPIC_VERSION = "2023-06-01"

EMPTY_TOOL_OUTPUT = "(no output)"
"""Sent for a tool that returned nothing: the API refuses an empty ``tool_result``."""

_STOP = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
    "refusal": StopReason.REFUSAL,
}

REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
"""Content blocks kept opaque and sent back with the turn (the API checks them)."""

_EFFORTS = frozenset({"low", "medium", "high", "xhigh"})
_CACHE = {"type": "ephemeral"}


def anthropic_messages(
    messages: tuple[Message, ...], names: ToolNames | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """``messages`` as the Messages API wants them: the system text apart, then turns
    alternating user/assistant, tool results as ``tool_result`` blocks of a user turn,
    an assistant's reasoning blocks replayed before its text and tool uses."""
    names = names or ToolNames(())
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
                        "content": message.content or EMPTY_TOOL_OUTPUT,
                        "is_error": message.is_error,
                    }
                ],
            )
        else:
            blocks: list[dict[str, Any]] = [dict(block) for block in message.reasoning]
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": names.wire(call.name),
                    "input": dict(call.arguments),
                }
                for call in message.tool_calls
            )
            if not message.content and not message.tool_calls:
                blocks.append({"type": "text", "text": "(no answer)"})
            push("assistant", blocks)
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
    return "\n\n".join(system), turns


def _tool_choice(options: ModelOptions, names: ToolNames, has_tools: bool) -> dict[str, Any] | None:
    choice = options.tool_choice
    parallel = options.parallel_tool_calls
    if choice is None and (parallel is None or parallel or not has_tools):
        return None
    if choice is None or choice == "auto":
        result: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    elif not has_tools or choice not in names.offered:
        raise UnsupportedModelOption(f"tool_choice names {choice!r}, a tool not offered")
    else:
        result = {"type": "tool", "name": names.wire(choice)}
    if parallel is False and has_tools:
        result["disable_parallel_tool_use"] = True
    return result


def anthropic_options(
    body: dict[str, Any], options: ModelOptions, names: ToolNames, has_tools: bool
) -> None:
    """Add ``options`` to a Messages API ``body``.

    Raises:
        UnsupportedModelOption: a ``response_format`` other than a JSON schema, a
            metadata key other than ``user_id``, a ``thinking_budget`` not below
            ``max_tokens``, a reasoning effort the API does not know, or a
            ``tool_choice`` naming a tool not offered.
    """
    choice = _tool_choice(options, names, has_tools)
    if choice is not None:
        body["tool_choice"] = choice
    output_config: dict[str, Any] = {}
    if options.response_format is not None:
        fmt = options.response_format
        schema = fmt.get("json_schema")
        if fmt.get("type") != "json_schema" or not isinstance(schema, Mapping):
            raise UnsupportedModelOption(
                "the Anthropic API takes only a JSON schema response_format "
                '({"type": "json_schema", "json_schema": {"schema": ...}})'
            )
        output_config["format"] = {"type": "json_schema", "schema": dict(schema.get("schema", {}))}
    if options.reasoning_effort is not None:
        if options.reasoning_effort not in _EFFORTS:
            raise UnsupportedModelOption(
                f"the Anthropic API takes effort {sorted(_EFFORTS)}, "
                f"not {options.reasoning_effort!r}"
            )
        output_config["effort"] = options.reasoning_effort
    if output_config:
        body["output_config"] = output_config
    if options.stop:
        body["stop_sequences"] = list(options.stop)
    if options.thinking_budget is not None:
        if options.thinking_budget >= body["max_tokens"]:
            raise UnsupportedModelOption(
                f"thinking_budget={options.thinking_budget} must be below "
                f"max_output_tokens={body['max_tokens']}"
            )
        body["thinking"] = {"type": "enabled", "budget_tokens": options.thinking_budget}
    if options.metadata:
        unknown = sorted(set(options.metadata) - {"user_id"})
        if unknown:
            raise UnsupportedModelOption(
                f"the Anthropic API's metadata takes only user_id, not {unknown}"
            )
        body["metadata"] = {"user_id": options.metadata["user_id"]}
    if options.cache_control:
        _mark_cache_breakpoints(body)
    body.update(options.extra_body)


def _mark_cache_breakpoints(body: dict[str, Any]) -> None:
    """Cache breakpoints on the system prompt, the last tool and the latest message
    (three of the API's four)."""
    system = body.get("system")
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system, "cache_control": dict(_CACHE)}]
    tools = body.get("tools")
    if tools:
        tools[-1]["cache_control"] = dict(_CACHE)
    messages = body.get("messages")
    if messages and messages[-1]["content"]:
        last = messages[-1]["content"][-1]
        if last.get("type") not in REASONING_BLOCKS:
            last["cache_control"] = dict(_CACHE)


class AnthropicModel(HttpModel):
    """A model behind Anthropic's ``/v1/messages`` endpoint.

    Args:
        model: The model name (e.g. ``"claude-haiku-4-5"``).
        base_url: The API root (default ``https://api.anthropic.com``).
        api_key_env: Environment variable holding the key (default ``ANTHROPIC_API_KEY``).
        forward_temperature: Send ``ModelLimits.temperature`` (default ``False``:
            current models refuse it, and extended thinking never takes it).

    Other arguments as for :class:`~mister_smith.agents.HttpModel`. The key goes in the
    ``x-api-key`` header and is never logged or shown in errors or ``repr``. Usage
    counts cache reads and writes as input tokens (and apart, in
    :attr:`Usage.cache_read_tokens` / :attr:`Usage.cache_write_tokens`).
    """

    default_base_url = "https://api.anthropic.com"
    path = "/v1/messages"
    provider = "anthropic"
    """``gen_ai.system`` of its model-call spans."""
    default_api_key_env = "ANTHROPIC_API_KEY"

    def __init__(
        self, model: str, *, forward_temperature: bool = False, **options: Unpack[HttpModelOptions]
    ) -> None:
        super().__init__(model, **options)
        self.forward_temperature = forward_temperature

    def build_headers(self) -> dict[str, str]:
        """API key and version headers."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        key = self._api_key
        if key:
            headers["x-api-key"] = key
        return headers

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The Messages API request body.

        Raises:
            InvalidToolName: a tool name no API accepts.
            UnsupportedModelOption: an option this API cannot take.
        """
        names = ToolNames(spec.name for spec in request.tools)
        system, turns = anthropic_messages(request.messages, names)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.limits.max_output_tokens,
            "messages": turns,
        }
        if system:
            body["system"] = system
        if (
            self.forward_temperature
            and request.limits.temperature is not None
            and request.options.thinking_budget is None
        ):
            body["temperature"] = request.limits.temperature
        if request.tools:
            body["tools"] = [
                {
                    "name": names.wire(spec.name),
                    "description": spec.description,
                    "input_schema": dict(spec.input_schema),
                }
                for spec in request.tools
            ]
        anthropic_options(body, request.options, names, bool(request.tools))
        return body

    def build_stream_body(self, request: ModelRequest) -> dict[str, Any]:
        """The request body asking for server-sent events."""
        body = self.build_body(request)
        body["stream"] = True
        return body

    def new_stream(self, request: ModelRequest) -> AnthropicStreamAssembler:
        """An assembler of Messages API stream events answering ``request``."""
        names = ToolNames(spec.name for spec in request.tools)
        return AnthropicStreamAssembler(
            self.endpoint, names, self.model, _STOP, anthropic_usage, REASONING_BLOCKS
        )

    def parse_response(self, data: Any, request: ModelRequest | None = None) -> ModelResponse:
        """Text blocks, tool-use blocks, reasoning blocks, stop reason and usage (tool
        names mapped back to ``request``'s).

        Raises:
            MalformedModelResponse: a field missing or of the wrong type, tool input
                that is not an object, implausible token counts.
        """
        endpoint = self.endpoint
        names = ToolNames(() if request is None else (t.name for t in request.tools))
        if not isinstance(data, Mapping):
            raise malformed(endpoint, "a JSON body that is not an object")
        content = data.get("content")
        if not isinstance(content, list):
            raise malformed(endpoint, "no content blocks")
        texts: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[Mapping[str, Any]] = []
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
                calls.append(ToolCall(call_id, names.original(block["name"]), arguments))
            elif kind in REASONING_BLOCKS:
                reasoning.append(dict(block))
        stop = data.get("stop_reason")
        text = "".join(texts)
        stop_reason = _STOP.get(
            stop if isinstance(stop, str) else "",
            StopReason.TOOL_USE if calls else StopReason.OTHER,
        )
        return ModelResponse(
            text=text,
            tool_calls=tuple(calls),
            usage=anthropic_usage(endpoint, data.get("usage")),
            stop_reason=stop_reason,
            model=optional_text(endpoint, data, "model") or self.model,
            refusal=(text or "refused") if stop_reason is StopReason.REFUSAL else None,
            reasoning=tuple(reasoning),
        )


def anthropic_usage(endpoint: str, usage: Any) -> Usage:
    """A Messages API ``usage`` object as :class:`Usage`: cache writes and reads (which
    the API counts apart from ``input_tokens``) are added to the input tokens.

    Raises:
        MalformedModelResponse: not an object, or implausible counts.
    """
    usage = usage or {}
    if not isinstance(usage, Mapping):
        raise malformed(endpoint, "usage that is not an object")
    written = token_count(endpoint, usage, "cache_creation_input_tokens")
    read = token_count(endpoint, usage, "cache_read_input_tokens")
    return Usage(
        token_count(endpoint, usage, "input_tokens") + written + read,
        token_count(endpoint, usage, "output_tokens"),
        1,
        read,
        written,
    )
