"""A task for an agent (:class:`AgentTask`), what it returns (:class:`AgentResult`) and
who its tool calls are made as (:class:`ToolCaller`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import trio

from ..actors import Delegated
from ..types import Caller, TaskId
from ._errors import InvalidTask
from ._messages import Message
from ._model import Usage
from ._usage import UsageBudget


@attrs.frozen
class ToolCaller:
    """Who an agent's tool calls for one task are made as, and for whom.

    Attributes:
        who: The agent's identity (or its name when run without an actor system).
        on_behalf_of: Whom the task was delegated by (see :attr:`AgentTask.on_behalf_of`).
    """

    who: Caller
    on_behalf_of: tuple[Caller, ...] = ()


def _messages(value: Iterable[Message]) -> tuple[Message, ...]:
    return tuple(value)


def _callers(value: Iterable[Caller]) -> tuple[Caller, ...]:
    return tuple(value)


def _budgets(value: Iterable[UsageBudget]) -> tuple[UsageBudget, ...]:
    return tuple(value)


def _names_in_order(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class AgentTask:
    """A task for an agent.

    Attributes:
        prompt: What to do.
        task_id: Identifies the task in events.
        deadline: Absolute Trio-clock time by which it must be done (``None``: none);
            tool calls and delegated tasks inherit it.
        context: Messages placed before the prompt (e.g. a previous stage's output).
        correlation_id: Carried into the task's events.
        on_behalf_of: Who delegated the task, outermost first (set by
            :class:`~mister_smith.agents.AgentEndpoint` from the delegating tool call):
            the agent's tool calls must be allowed for each of them as well as for
            itself. It can only narrow what the agent may do, never widen it.
        budgets: Usage budgets the task counts against besides the agent's own (e.g.
            its team's); every one is checked before each request.
        handoffs: The agents that handed this task on, first first (set by a handoff;
            bounded by ``MAX_HANDOFFS``).
    """

    prompt: str
    task_id: TaskId = attrs.field(factory=TaskId.new)
    deadline: float | None = None
    context: tuple[Message, ...] = attrs.field(default=(), converter=_messages)
    correlation_id: str | None = None
    on_behalf_of: tuple[Caller, ...] = attrs.field(default=(), converter=_callers)
    budgets: tuple[UsageBudget, ...] = attrs.field(default=(), converter=_budgets)
    handoffs: tuple[str, ...] = attrs.field(default=(), converter=_names_in_order)

    @classmethod
    def with_timeout(cls, prompt: str, timeout: float | None, **options: Any) -> AgentTask:
        """A task due ``timeout`` seconds from now (``None``: no deadline)."""
        deadline = None if timeout is None else trio.current_time() + timeout
        return cls(prompt, deadline=deadline, **options)

    @classmethod
    def coerce(cls, message: Any) -> AgentTask:
        """Accept an :class:`AgentTask`, a string, or a mapping with ``task``/``prompt``/
        ``message``/``input`` (and optional ``timeout`` seconds or ``deadline``), or
        any of these wrapped in a :class:`~mister_smith.actors.Delegated` (whose
        delegators go first in :attr:`on_behalf_of`).

        Raises:
            InvalidTask: anything else.
        """
        if isinstance(message, Delegated):
            task = cls.coerce(message.message)
            return attrs.evolve(task, on_behalf_of=(*message.on_behalf_of, *task.on_behalf_of))
        if isinstance(message, AgentTask):
            return message
        if isinstance(message, str):
            return cls(message)
        if isinstance(message, Mapping):
            for key in ("task", "prompt", "message", "input"):
                if isinstance(message.get(key), str):
                    deadline = message.get("deadline")
                    timeout = message.get("timeout")
                    if deadline is None and isinstance(timeout, int | float):
                        deadline = trio.current_time() + float(timeout)
                    return cls(message[key], deadline=deadline)
        raise InvalidTask(f"not a task: {message!r:.200}")


@attrs.frozen
class AgentResult:
    """What an agent returns for a task.

    Attributes:
        task_id: The task.
        agent: The agent's name.
        role: Its role.
        answer: The model's final answer.
        usage: Tokens used over all turns.
        turns: Model turns used.
        tool_calls: Tool calls made.
        tool_errors: Tool calls that failed (reported to the model, which carried on).
        duration: Seconds from start to answer (Trio clock).
        refused_tool_calls: Tool calls not run because they were past the spec's
            ``max_tool_calls_per_turn``/``max_tool_calls_per_task`` (reported to the
            model as tool errors).
        output: The answer as a value of the spec's ``output_type`` (without one: the
            answer text).
        handed_off_from: The agents that handed the task on to the one that answered
            (``agent``), first first; their usage is included in ``usage``.
    """

    task_id: TaskId
    agent: str
    role: str
    answer: str
    usage: Usage
    turns: int
    tool_calls: int
    tool_errors: int
    duration: float
    refused_tool_calls: int = 0
    output: Any = None
    handed_off_from: tuple[str, ...] = ()
