"""What defines an agent apart from its model and tools: :class:`AgentSpec` and the
bounds of its context window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._guardrails import Guardrail
from ._model import ModelLimits
from ._options import ModelOptions
from ._output import OutputSpec
from ._usage import UsageLimits


@attrs.frozen
class ContextSettings:
    """Bounds of an agent's context window (see :class:`ContextWindow`).

    ``max_messages`` should exceed the tool calls the model makes in one turn plus two
    (the task and the call): a larger round cannot stay in the window together and is
    folded into the summary as its results arrive.
    """

    max_messages: int = attrs.field(default=50, validator=attrs.validators.ge(2))
    max_tokens: int = attrs.field(default=16_000, validator=attrs.validators.ge(16))
    max_summary_tokens: int | None = None
    max_message_tokens: int | None = None


def _strings(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


def _guardrails(value: Iterable[Guardrail]) -> tuple[Guardrail, ...]:
    return tuple(value)


def _describable(instance: object, attribute: object, value: Any) -> None:
    if value is not None:
        try:
            OutputSpec(value)
        except TypeError as exc:
            raise TypeError(f"output_type {value!r} cannot be offered to a model: {exc}") from exc


@attrs.frozen
class AgentSpec:
    """Everything that defines an agent apart from its model and tools.

    Attributes:
        role: What the agent is for (``"researcher"``, ``"writer"``, ...): a label for the
            prompt, events and results. It grants nothing; tool permissions come from the
            identity the agent is spawned with (see :func:`spawn_agent`'s ``roles``).
        system_prompt: Instructions given to the model on every turn.
        capabilities: Declared capabilities (used by teams and capability routing).
        allowed_tools: Tools the agent may call (``None``: whatever the tool bus grants
            it). Calls to other tools are refused and reported to the model.
        max_turns: Model turns per task before :class:`MaxTurnsExceeded`.
        tool_timeout: Deadline of each tool call (``None``: the tool's own, else the
            bus's); never later than the tool's own deadline or the task's.
        model_timeout: Deadline of each model call (``None``: the model's own).
        parallel_tool_calls: Run the tool calls of one model turn concurrently.
        max_parallel_tools: Most tool calls running at once.
        max_tool_calls_per_turn: Most tool calls run for one model turn (default 32,
            as ``AgentSettings``); the model's calls past it are not run, each is
            answered with a :class:`ToolCallLimitExceeded` tool error.
        max_tool_calls_per_task: Most tool calls run over one task (default 256); once
            used up, every further call is answered the same way.
        limits: Limits passed to the model.
        model_options: Request options passed to the model (tool choice, stop
            sequences, reasoning, caching, metadata, extra body fields); when it leaves
            ``parallel_tool_calls`` unset and ``parallel_tool_calls`` here is ``False``,
            the model is told to ask for one tool call at a time.
        context: Bounds of the context window.
        persistent_context: Keep the context across tasks (else each task starts fresh).
        output_type: The type of the answer (an attrs class, enum, ``Literal``, list,
            union, primitive...; ``None``: free text). It is offered to the model as the
            ``final_result`` tool; the answer is checked against its schema and
            structured with cattrs (the class's own validators run), and the result's
            ``output`` holds the value.
        output_retries: Invalid typed answers sent back to the model (with what was
            wrong) before :class:`OutputValidationError`.
        task_limits: Usage limits of each task (tokens, requests, tool calls, wall
            time, cost), checked before each model request and each round of tool
            calls (→ :class:`UsageLimitExceeded`).
        agent_limits: Usage limits of the agent over all its tasks (kept across its
            restarts when spawned with :func:`spawn_agent`).
        input_guardrails: Checks on each task, run concurrently with the first model
            request (cancelled if one trips; no tool runs before all passed) →
            :class:`GuardrailTripped`.
        output_guardrails: Checks on each final answer before it is returned.
        stream_events: Stream every model answer and announce its text as it comes
            (:class:`AgentTextStreamed` events), for live displays such as
            ``mister-smith demo``; without it only :meth:`AgentRef.stream` streams.
    """

    role: str
    system_prompt: str = ""
    capabilities: frozenset[str] = attrs.field(default=frozenset(), converter=_strings)
    allowed_tools: frozenset[str] | None = attrs.field(default=None, converter=_names)
    max_turns: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    tool_timeout: float | None = None
    model_timeout: float | None = None
    parallel_tool_calls: bool = True
    max_parallel_tools: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    max_tool_calls_per_turn: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    max_tool_calls_per_task: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    limits: ModelLimits = attrs.field(factory=ModelLimits)
    context: ContextSettings = attrs.field(factory=ContextSettings)
    persistent_context: bool = False
    model_options: ModelOptions = attrs.field(factory=ModelOptions)
    output_type: Any = attrs.field(default=None, validator=_describable)
    output_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    task_limits: UsageLimits | None = None
    agent_limits: UsageLimits | None = None
    stream_events: bool = False
    input_guardrails: tuple[Guardrail, ...] = attrs.field(default=(), converter=_guardrails)
    output_guardrails: tuple[Guardrail, ...] = attrs.field(default=(), converter=_guardrails)

    def request_options(self) -> ModelOptions:
        """The options sent with each model request."""
        options = self.model_options
        if options.parallel_tool_calls is None and not self.parallel_tool_calls:
            options = attrs.evolve(options, parallel_tool_calls=False)
        return options
