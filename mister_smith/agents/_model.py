"""The ``Model`` protocol and the records it exchanges with agents."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ._messages import Message, MessageRole, ToolCall
from ._options import ModelOptions


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class Usage:
    """Tokens a model call (or a sum of calls) consumed.

    Usages add up: ``total = sum(usages, Usage())``.

    Attributes:
        input_tokens: Every input token, cached ones included (Anthropic reports cache
            reads and writes apart from ``input_tokens``; they are added in here).
        output_tokens: Generated tokens (reasoning/thinking included).
        calls: Model requests.
        cache_read_tokens: Input tokens read from a prompt cache (part of
            ``input_tokens``; cheaper).
        cache_write_tokens: Input tokens written to a prompt cache (part of
            ``input_tokens``; dearer).
    """

    input_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    output_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    calls: int = attrs.field(default=0, validator=_non_negative_int)
    cache_read_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    cache_write_tokens: int = attrs.field(default=0, validator=_non_negative_int)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.calls + other.calls,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (the shape of ``TaskCompleted.usage``)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "model_calls": self.calls,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


def _messages(value: Iterable[Message]) -> tuple[Message, ...]:
    return tuple(value)


def _tool_definitions(value: Iterable[ToolDefinition]) -> tuple[ToolDefinition, ...]:
    return tuple(value)


def _tool_calls(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


def _blocks(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(value)


def _schema(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen
class ToolDefinition:
    """A tool as a model sees it: name, description and JSON Schema of its input.

    Build one from a tool bus schema with :meth:`from_schema`.
    """

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = attrs.field(
        factory=lambda: {"type": "object", "properties": {}}, converter=_schema
    )

    @classmethod
    def from_schema(cls, schema: Any) -> ToolDefinition:
        """Adapt any object with ``name``, ``description`` and a JSON Schema in
        ``input_schema`` (a mapping, or an object with ``to_dict()`` such as a
        :class:`~mister_smith.tools.ToolSchema`) — e.g. a tool or its listing entry."""
        if isinstance(schema, ToolDefinition):
            return schema
        name = str(schema.name)
        description = str(getattr(schema, "description", "") or "")
        for attribute in ("input_schema", "parameters", "json_schema", "schema"):
            value = getattr(schema, attribute, None)
            to_dict = getattr(value, "to_dict", None)
            if callable(to_dict):
                value = to_dict()
            if isinstance(value, Mapping):
                return cls(name, description, value)
        return cls(name, description)


@attrs.frozen
class ModelLimits:
    """Bounds on one model call.

    Attributes:
        max_output_tokens: Most tokens the model may generate.
        temperature: Sampling temperature (``None``: the endpoint's default).
    """

    max_output_tokens: int = attrs.field(default=1024, validator=attrs.validators.ge(1))
    temperature: float | None = None


@attrs.frozen
class ModelRequest:
    """What an agent asks a model: the conversation, the tools it may call, limits and
    options (tool choice, stop sequences, reasoning, caching, ...)."""

    messages: tuple[Message, ...] = attrs.field(converter=_messages)
    tools: tuple[ToolDefinition, ...] = attrs.field(default=(), converter=_tool_definitions)
    limits: ModelLimits = attrs.field(factory=ModelLimits)
    options: ModelOptions = attrs.field(factory=ModelOptions)

    @property
    def system_prompt(self) -> str:
        """The system messages' text, joined by blank lines."""
        return "\n\n".join(m.content for m in self.messages if m.role is MessageRole.SYSTEM)

    def conversation(self) -> tuple[Message, ...]:
        """The messages other than system messages."""
        return tuple(m for m in self.messages if m.role is not MessageRole.SYSTEM)

    def last_user_message(self) -> Message | None:
        """The latest user message, if any."""
        for message in reversed(self.messages):
            if message.role is MessageRole.USER:
                return message
        return None

    def tool_results_since_last_assistant(self) -> tuple[Message, ...]:
        """The tool results that answer the latest assistant message's calls."""
        results: list[Message] = []
        for message in reversed(self.messages):
            if message.role is MessageRole.TOOL:
                results.append(message)
            else:
                break
        return tuple(reversed(results))

    def last_assistant_message(self) -> Message | None:
        """The latest assistant message, if any."""
        for message in reversed(self.messages):
            if message.role is MessageRole.ASSISTANT:
                return message
        return None


class StopReason(enum.Enum):
    """Why the model stopped generating."""

    END_TURN = "end_turn"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    REFUSAL = "refusal"
    OTHER = "other"


@attrs.frozen
class ModelResponse:
    """A model's answer: text and/or tool calls, and what it cost.

    Attributes:
        text: The generated text (the final answer when there are no tool calls).
        tool_calls: Tools the model wants called before it continues.
        usage: Tokens consumed by this call.
        stop_reason: Why generation stopped.
        model: The model's name as reported by the endpoint.
        progress: The model's own estimate of how far along the task is, in [0, 1]
            (``None``: unknown; only embedded models report it).
        refusal: The model's refusal text (OpenAI ``message.refusal``), when it refused.
        reasoning: Opaque reasoning blocks (Anthropic ``thinking`` with its signature)
            that must be sent back with this turn when the conversation goes on.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    usage: Usage = attrs.field(factory=Usage)
    stop_reason: StopReason = StopReason.END_TURN
    model: str = ""
    progress: float | None = None
    refusal: str | None = None
    reasoning: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=_blocks)

    @property
    def is_final(self) -> bool:
        """Whether this is an answer (no tool calls to make)."""
        return not self.tool_calls


@runtime_checkable
class Model(Protocol):
    """Anything that completes a conversation: embedded, scripted or over HTTP.

    ``complete`` must be cancellable (agents call it under their task deadline) and
    raise a :class:`~mister_smith.agents.ModelError` subclass for endpoint failures.
    """

    @property
    def name(self) -> str:
        """A short name for logs and events (never credentials)."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer ``request`` with text and/or tool calls."""
        ...


def messages_tokens(messages: Sequence[Message]) -> int:
    """Estimated tokens of ``messages`` together."""
    return sum(message.tokens for message in messages)
