"""Conversation messages and tool calls, the currency between agents and models."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

CHARS_PER_TOKEN = 4
"""The token estimate's ratio: about four characters of English text per token."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens an API spends on a message's framing (role, separators) beyond its content."""


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic token estimate: one token per four characters, rounded up.

    Good enough to keep a context window under a budget without a tokenizer; real
    counts come back in :class:`~mister_smith.agents.Usage`.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class MessageRole(enum.Enum):
    """Who a message is from."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


def _tool_calls(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


def _blocks(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(value)


def _freeze_arguments(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen
class ToolCall:
    """A model's request to call one tool.

    Attributes:
        id: The model's id for the call; the result message quotes it.
        name: The tool's name.
        arguments: The tool's arguments (a JSON object).
    """

    id: str
    name: str
    arguments: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_arguments)

    def arguments_json(self) -> str:
        """The arguments as compact JSON with sorted keys (stable for tests and APIs)."""
        return json.dumps(self.arguments, sort_keys=True, separators=(",", ":"), default=str)


@attrs.frozen
class Message:
    """One message of a conversation.

    Attributes:
        role: Who it is from.
        content: Its text (for a tool result: the result, or the error text).
        tool_calls: For an assistant message, the tool calls it asks for.
        tool_call_id: For a tool result, the id of the call it answers.
        name: For a tool result, the tool's name.
        is_error: For a tool result, whether the call failed.
        reasoning: For an assistant message, opaque reasoning blocks the model's API
            wants replayed with it (Anthropic ``thinking`` blocks and their signature).
    """

    role: MessageRole
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    reasoning: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=_blocks)

    @classmethod
    def system(cls, content: str) -> Message:
        """A system (instructions) message."""
        return cls(MessageRole.SYSTEM, content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A user message."""
        return cls(MessageRole.USER, content)

    @classmethod
    def assistant(
        cls,
        content: str = "",
        tool_calls: tuple[ToolCall, ...] = (),
        reasoning: tuple[Mapping[str, Any], ...] = (),
    ) -> Message:
        """An assistant message: text, tool calls, or both (and reasoning to replay)."""
        return cls(MessageRole.ASSISTANT, content, tool_calls, reasoning=reasoning)

    @classmethod
    def tool_result(cls, call: ToolCall, content: str, *, is_error: bool = False) -> Message:
        """The result of ``call`` (its error text when ``is_error``)."""
        return cls(MessageRole.TOOL, content, (), call.id, call.name, is_error)

    @property
    def tokens(self) -> int:
        """Estimated tokens of this message, framing and tool calls included."""
        total = MESSAGE_OVERHEAD_TOKENS + estimate_tokens(self.content)
        for call in self.tool_calls:
            total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(call.name + call.arguments_json())
        return total
