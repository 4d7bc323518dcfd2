"""Handoffs: an agent hands the conversation to another agent, which carries on with it.

A :class:`Handoff` is offered to the model as a tool (``transfer_to_<agent>``); when the
model calls it, the agent stops, and the receiving agent gets the task with the
conversation so far as its context (passed through the handoff's ``input_filter``), the
same deadline and budgets, and answers in its stead. The result names who handed off
(``AgentResult.handed_off_from``) and counts both agents' usage. A chain of handoffs is
bounded (:data:`MAX_HANDOFFS`): past it, the handoff is refused as a tool error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

from ._messages import Message, MessageRole
from ._model import ToolDefinition

MAX_HANDOFFS: Final = 5
"""Most handoffs in one task's chain (A → B → C ...), so two agents cannot pass a task
back and forth forever."""

InputFilter = Callable[[tuple[Message, ...]], tuple[Message, ...]]
"""Chooses what of the conversation the receiving agent sees."""


def keep_all(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The whole conversation (the default)."""
    return messages


def remove_tool_calls(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The conversation without tool calls and their results (text only): for a
    receiver that should not see what the first agent's tools returned."""
    kept: list[Message] = []
    for message in messages:
        if message.role is MessageRole.TOOL:
            continue
        if message.tool_calls:
            if message.content:
                kept.append(Message.assistant(message.content))
            continue
        kept.append(message)
    return tuple(kept)


def _tool_name(target: str) -> str:
    return "transfer_to_" + re.sub(r"[^A-Za-z0-9_-]", "_", target.rsplit(".", 1)[-1])[:48]


@attrs.frozen(eq=False)
class Handoff:
    """A receiving agent, offered to the model as a tool.

    Attributes:
        target: The receiving agent (an :class:`~mister_smith.actors.ActorRef`, asked
            with an :class:`AgentTask`).
        description: When to hand off (shown to the model).
        input_filter: What of the conversation the receiver sees (default: all).
        tool_name: The tool's name (default ``transfer_to_<agent>``).
    """

    target: Any
    description: str = ""
    input_filter: InputFilter = keep_all
    tool_name: str = ""

    @property
    def name(self) -> str:
        """The tool the model calls to hand off."""
        return self.tool_name or _tool_name(str(self.target.name))

    def definition(self) -> ToolDefinition:
        """The tool offered to the model."""
        return ToolDefinition(
            self.name,
            self.description
            or f"Hand the conversation over to {self.target.name}, who will answer the user "
            "from here on. Say why in 'reason'.",
            {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why hand off."}},
                "additionalProperties": False,
            },
        )


def transcript(messages: Sequence[Message]) -> tuple[Message, ...]:
    """The conversation to hand over: every message but system ones, the last
    (handing-off) assistant turn reduced to its text."""
    kept = [m for m in messages if m.role is not MessageRole.SYSTEM]
    if kept and kept[-1].role is MessageRole.ASSISTANT and kept[-1].tool_calls:
        last = kept.pop()
        if last.content:
            kept.append(Message.assistant(last.content))
    return tuple(kept)
