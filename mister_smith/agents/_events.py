"""Events the agent layer adds to :mod:`mister_smith.events`."""

from __future__ import annotations

import attrs

from ..events import Event
from ..types import TaskId


@attrs.frozen(kw_only=True)
class AgentProgress(Event):
    """An agent finished one turn of a task (or the task itself).

    Attributes:
        agent: The agent's name.
        role: Its role.
        task_id: The task.
        turn: Model turns used so far.
        max_turns: The agent's turn limit.
        tool_calls: Tool calls made so far in this task.
        progress: Estimated fraction done in [0, 1] (the model's estimate when it
            gives one, else turns used over the limit; 1.0 when done).
        status: ``"working"``, ``"done"`` or ``"failed"``.
    """

    agent: str
    role: str | None
    task_id: TaskId
    turn: int
    max_turns: int
    tool_calls: int
    progress: float
    status: str = "working"


@attrs.frozen(kw_only=True)
class AgentTextStreamed(Event):
    """More of a model's answer, as it streams (agents with ``stream_events``): for live
    displays of what an agent is writing.

    Attributes:
        agent: The agent's name.
        task_id: The task.
        turn: The model turn.
        text: The new text.
    """

    agent: str
    task_id: TaskId
    turn: int
    text: str
