"""Checks our adapters' JSON against the official SDKs' types (test-only dependencies
``openai`` and ``anthropic``), and builds fake-server answers from their response types.

A request is checked in two ways:

* **types**: validated with pydantic against the SDK's ``*CreateParams`` TypedDict, then
  every lazily validated ``Iterable`` field is iterated (pydantic checks those only when
  iterated) and the result compared with what we sent. TypedDict validation drops keys
  it does not know, so any difference is a key the API does not take (or a value it
  would coerce).
* **rules** the types cannot say but the live APIs enforce (each one a 400 we have
  seen): OpenAI refuses ``max_tokens`` for reasoning models, an assistant message with
  ``content: null`` and no tool calls, and ``parallel_tool_calls`` without tools;
  Anthropic refuses ``temperature`` on current models (unless asked for), empty
  ``tool_result`` content and empty text blocks, and wants the first turn from the
  user; both take tool names matching ``^[a-zA-Z0-9_-]{1,64}$``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from fake_model_servers import Reply
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from pydantic import TypeAdapter

WIRE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

_OPENAI = TypeAdapter(CompletionCreateParamsNonStreaming)
_OPENAI_STREAM = TypeAdapter(CompletionCreateParamsStreaming)
_ANTHROPIC = TypeAdapter(MessageCreateParamsNonStreaming)
_ANTHROPIC_STREAM = TypeAdapter(MessageCreateParamsStreaming)
_ANTHROPIC_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


class WireViolation(AssertionError):
    """A request the real API would refuse."""


def materialize(value: Any) -> Any:
    """``value`` with every lazily validated iterable iterated (validating each item)."""
    if isinstance(value, Mapping):
        return {key: materialize(item) for key, item in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Iterable):
        return [materialize(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """``value`` as JSON sees it (tuples are lists)."""
    return json.loads(json.dumps(value))


def _check_types(adapter: TypeAdapter[Any], body: Mapping[str, Any], api: str) -> None:
    sent = _plain(body)
    try:
        validated = materialize(adapter.validate_python(sent))
    except Exception as exc:
        raise WireViolation(f"{api} request does not fit the SDK's type: {exc}") from exc
    if validated != sent:
        raise WireViolation(
            f"{api} request has keys or values the SDK's type does not take:\n"
            f"sent      {json.dumps(sent, sort_keys=True)[:2000]}\n"
            f"validated {json.dumps(validated, sort_keys=True)[:2000]}"
        )


def check_openai_request(body: Mapping[str, Any]) -> None:
    """Raise :class:`WireViolation` if OpenAI's chat completions would refuse ``body``."""
    streaming = bool(body.get("stream"))
    _check_types(_OPENAI_STREAM if streaming else _OPENAI, body, "OpenAI")
    if "max_tokens" in body:
        raise WireViolation("max_tokens is refused by reasoning models: max_completion_tokens")
    for message in body["messages"]:
        empty = not message.get("content") and not message.get("tool_calls")
        if message["role"] == "assistant" and empty:
            raise WireViolation(f"assistant message without content or calls: {message}")
        if message["role"] == "tool" and not message.get("content"):
            raise WireViolation(f"empty tool message: {message}")
        for call in message.get("tool_calls") or ():
            _check_name(call["function"]["name"])
    tools = body.get("tools") or ()
    for tool in tools:
        _check_name(tool["function"]["name"])
    if "parallel_tool_calls" in body and not tools:
        raise WireViolation("parallel_tool_calls is only allowed when tools are specified")
    if streaming and not body.get("stream_options", {}).get("include_usage"):
        raise WireViolation("a stream without stream_options.include_usage reports no usage")


def check_anthropic_request(body: Mapping[str, Any], *, temperature_allowed: bool = False) -> None:
    """Raise :class:`WireViolation` if Anthropic's Messages API would refuse ``body``."""
    streaming = bool(body.get("stream"))
    _check_types(_ANTHROPIC_STREAM if streaming else _ANTHROPIC, body, "Anthropic")
    if "temperature" in body and not temperature_allowed:
        raise WireViolation("temperature is refused by current Claude models")
    if "temperature" in body and "thinking" in body:
        raise WireViolation("temperature cannot be combined with extended thinking")
    messages = body["messages"]
    if not messages or messages[0]["role"] != "user":
        raise WireViolation("the first message must be the user's")
    for previous, message in itertools.pairwise(messages):
        if previous["role"] == message["role"]:
            raise WireViolation(f"two {message['role']} turns in a row")
    for message in messages:
        content = message["content"]
        if not content:
            raise WireViolation(f"a turn without content: {message}")
        if isinstance(content, str):
            continue
        for block in content:
            if block["type"] == "text" and not block["text"]:
                raise WireViolation("an empty text block")
            if block["type"] == "tool_result" and not block.get("content"):
                raise WireViolation(f"an empty tool_result: {block}")
            if block["type"] == "tool_use":
                _check_name(block["name"])
    for tool in body.get("tools") or ():
        _check_name(tool["name"])
    thinking = body.get("thinking")
    if thinking and thinking.get("budget_tokens", 0) >= body["max_tokens"]:
        raise WireViolation("thinking.budget_tokens must be below max_tokens")


def _check_name(name: str) -> None:
    if not WIRE_NAME.match(name):
        raise WireViolation(f"tool name {name!r} is refused: ^[a-zA-Z0-9_-]{{1,64}}$")


# --- answers built from the SDKs' response types ---------------------------------------


def openai_completion(
    text: str | None = None,
    calls: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    *,
    refusal: str | None = None,
    finish_reason: str | None = None,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    cached_tokens: int = 0,
) -> Reply:
    """A ``ChatCompletion`` (validated by the SDK's model) as a fake server's reply."""
    finish = finish_reason or ("tool_calls" if calls else "stop")
    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-conformance",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-conformance",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": refusal,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(args)},
                            }
                            for call_id, name, args in calls
                        ]
                        or None,
                    },
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens},
            },
        }
    )
    return Reply(200, completion.model_dump(mode="json"))


def anthropic_message(
    blocks: Sequence[Mapping[str, Any]],
    *,
    stop_reason: str | None = None,
    input_tokens: int = 13,
    output_tokens: int = 5,
    cache_creation_input_tokens: int | None = None,
    cache_read_input_tokens: int | None = None,
) -> Reply:
    """A Messages API ``Message`` (validated by the SDK's model) as a fake reply."""
    uses = any(block["type"] == "tool_use" for block in blocks)
    message = AnthropicMessage.model_validate(
        {
            "id": "msg_conformance",
            "type": "message",
            "role": "assistant",
            "model": "claude-conformance",
            "content": list(blocks),
            "stop_reason": stop_reason or ("tool_use" if uses else "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation_input_tokens,
                "cache_read_input_tokens": cache_read_input_tokens,
            },
        }
    )
    return Reply(200, message.model_dump(mode="json", exclude_none=True))


def text_block(text: str) -> dict[str, Any]:
    """An Anthropic text block."""
    return {"type": "text", "text": text}


def tool_use_block(call_id: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic tool_use block."""
    return {"type": "tool_use", "id": call_id, "name": name, "input": dict(arguments)}


def sse(events: Iterable[tuple[str | None, Mapping[str, Any] | str]]) -> Iterator[bytes]:
    """Server-sent events: ``(event name or None, data)`` pairs, one chunk each."""
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}\n" if name else ""
        yield f"{head}data: {payload}\n\n".encode()


def openai_chunks(chunks: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """``ChatCompletionChunk`` s (validated by the SDK's model) as an SSE body."""
    events: list[tuple[str | None, Mapping[str, Any] | str]] = [
        (None, ChatCompletionChunk.model_validate(chunk).model_dump(mode="json", exclude_none=True))
        for chunk in chunks
    ]
    events.append((None, "[DONE]"))
    return list(sse(events))


def anthropic_events(events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Raw Messages stream events (validated by the SDK's type; ``ping`` and ``error``,
    which the SDK handles apart from that union, as documented) as an SSE body."""
    out: list[tuple[str | None, Mapping[str, Any] | str]] = []
    for event in events:
        if event["type"] not in ("ping", "error"):
            _ANTHROPIC_EVENT.validate_python(event)
        out.append((str(event["type"]), event))
    return list(sse(out))
