"""The state of one task while an agent works on it, and the checks of each response."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from ..events import EventBus
from ._agent_stream import EventSink
from ._errors import ModelRefused, OutputTruncated
from ._model import ModelLimits, ModelResponse, StopReason, Usage
from ._streaming import AgentStreamEvent
from ._task import AgentResult, AgentTask


@attrs.define
class RunState:
    """The counters and plumbing of one task while it runs (private to the agent loop)."""

    task: AgentTask
    name: str
    started: float
    sink: EventSink | None = None
    events: EventBus | None = None
    usage: Usage = attrs.field(factory=Usage)
    turn: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    refused: int = 0
    output_attempts: int = 0

    async def emit(self, event: AgentStreamEvent) -> None:
        """Pass ``event`` to the stream's consumer (if any), waiting for room."""
        if self.sink is not None:
            await self.sink.send(event)

    def result(self, role: str, answer: str, output: Any) -> AgentResult:
        """The task's result with ``answer`` (text) and ``output`` (typed)."""
        return AgentResult(
            self.task.task_id,
            self.name,
            role,
            answer,
            self.usage,
            self.turn,
            self.tool_calls,
            self.tool_errors,
            trio.current_time() - self.started,
            self.refused,
            output,
        )


def capped_limits(limits: ModelLimits, room: int | None) -> ModelLimits:
    """``limits`` with ``max_output_tokens`` no more than ``room`` (what budgets leave)."""
    if room is None or room >= limits.max_output_tokens:
        return limits
    return attrs.evolve(limits, max_output_tokens=max(1, room))


def check_outcome(response: ModelResponse, agent: str, limits: ModelLimits) -> None:
    """Refuse a response that is not an answer although it has no tool calls to make.

    Raises:
        ModelRefused: the model refused (its refusal text attached).
        OutputTruncated: a final answer cut at the output-token limit.
    """
    if response.stop_reason is StopReason.REFUSAL or response.refusal:
        refused = ModelRefused(
            f"agent {agent!r}: the model refused: {(response.refusal or '')[:500]}"
        )
        refused.refusal = response.refusal or ""
        raise refused
    if response.stop_reason is StopReason.MAX_TOKENS and response.is_final:
        truncated = OutputTruncated(
            f"agent {agent!r}: the answer was cut at max_output_tokens="
            f"{limits.max_output_tokens} ({len(response.text)} characters so far)"
        )
        truncated.partial = response.text
        truncated.limit = limits.max_output_tokens
        raise truncated
