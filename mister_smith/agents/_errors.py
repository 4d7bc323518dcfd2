"""Errors raised by models, the agent loop and teams.

Each fits the project's taxonomy (:mod:`mister_smith.errors`) so supervision knows how
severe it is and how to recover: a failing model endpoint is a
:class:`~mister_smith.errors.NetworkError` (recovered through a circuit breaker), an
agent that runs out of turns is a :class:`~mister_smith.errors.TaskError`.
"""

from __future__ import annotations

from ..errors import (
    ConfigError,
    ErrorSeverity,
    NetworkError,
    RecoveryStrategy,
    TaskError,
    ToolError,
)


class ModelError(NetworkError):
    """A model call failed.

    Attributes:
        endpoint: The URL (or name) of the model endpoint; never includes credentials.
        status: The HTTP status of the last attempt, when there was one.
    """

    def __init__(
        self,
        *args: object,
        endpoint: str = "",
        status: int | None = None,
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.endpoint = endpoint
        self.status = status


class ModelHTTPError(ModelError):
    """The endpoint answered with an error status (after any retries)."""


class ModelRateLimited(ModelHTTPError):
    """The endpoint kept answering 429 Too Many Requests until the retries ran out.

    Attributes:
        retry_after: The server's ``Retry-After`` in seconds, when it sent one.
    """

    retry_after: float | None = None


class ModelAuthError(ModelHTTPError, PermissionError):
    """The endpoint refused the credentials (401/403); never retried."""


class ModelTimeout(ModelError, TimeoutError):
    """The model did not answer within its deadline."""


class MalformedModelResponse(ModelError, ValueError):
    """The endpoint answered 2xx but the body is not the JSON its API promises: not
    JSON, nested too deeply, numbers out of range (``1e400``, ``NaN``), wrong types,
    tool-call arguments that are not a JSON object, impossible token counts."""


class ModelResponseTooLarge(MalformedModelResponse):
    """The answer was longer than ``max_response_bytes`` (decoded), or was a compression
    bomb; it was cut off while streaming, never read whole.

    Attributes:
        limit: The ``max_response_bytes`` that was exceeded.
    """

    limit: int = 0


class MissingApiKey(ConfigError):
    """The environment variable that should hold the model's API key is unset or empty."""


class ScriptExhausted(TaskError, LookupError):
    """No rule of a :class:`~mister_smith.agents.ScriptedModel` matched the conversation."""


class MaxTurnsExceeded(TaskError):
    """An agent used all its model turns without reaching an answer.

    Attributes:
        agent: The agent's name.
        turns: The turns it used (its ``max_turns``).
    """

    def __init__(
        self,
        *args: object,
        agent: str = "",
        turns: int = 0,
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.agent = agent
        self.turns = turns


class ToolCallLimitExceeded(ToolError):
    """A model asked for more tool calls than the agent's ``max_tool_calls_per_turn`` or
    ``max_tool_calls_per_task``; the calls past the limit were not run. The agent sends
    this back to the model as the result of each refused call."""


class ModelRefused(TaskError):
    """The model refused the task (OpenAI ``message.refusal``, Anthropic
    ``stop_reason: refusal``): a typed outcome, never an empty "successful" answer.

    Attributes:
        refusal: The model's explanation, when it gave one.
    """

    refusal: str = ""


class OutputTruncated(TaskError):
    """The model stopped at its output-token limit (``length`` / ``max_tokens``) before
    it finished its answer; the cut text is never passed off as an answer.

    Attributes:
        partial: The text generated before the cut.
        limit: The ``max_output_tokens`` it ran into.
    """

    partial: str = ""
    limit: int = 0


class OutputValidationError(TaskError, ValueError):
    """The model gave no valid typed answer (``AgentSpec.output_type``) within its
    ``output_retries``; each failure was sent back to it with the errors.

    Attributes:
        errors: What was wrong with the last answer (each with its path).
        attempts: Answers the model gave.
    """

    errors: tuple[str, ...] = ()
    attempts: int = 0


class UsageLimitExceeded(TaskError):
    """A usage limit (tokens, requests, tool calls, wall time, cost) of a task, an agent
    or a team was reached; checked before each model request and each round of tool
    calls, so nothing past it was spent.

    Attributes:
        limit: Which limit (``"total_tokens"``, ``"requests"``, ``"cost"``...).
        value: The limit's value.
        used: What had been used.
        scope: Whose budget (``"task ..."``, ``"agent 'x'"``, ``"team 'y'"``).
    """

    limit: str = ""
    value: float = 0
    used: float = 0
    scope: str = ""


class GuardrailTripped(TaskError):
    """An input or output guardrail stopped the task (a ``GuardrailTriggered`` event
    says so too).

    Attributes:
        guardrail: Its name.
        stage: ``"input"`` or ``"output"``.
        reason: Why it tripped.
    """

    guardrail: str = ""
    stage: str = ""
    reason: str = ""


class HandoffFailed(TaskError):
    """The agent a task was handed off to failed on it (or could not be reached)."""


class UnknownModelPrice(ConfigError, LookupError):
    """A cost limit is set but the price table has no price for the model used."""


class UnsupportedModelOption(ConfigError):
    """A :class:`~mister_smith.agents.ModelOptions` setting the model's API cannot take
    (refused when the request is built, before anything is sent)."""


class TeamError(TaskError):
    """A team could not be composed or could not finish its task."""


class InvalidTask(TaskError, TypeError):
    """An agent was sent something that is not a task (an ``AgentTask``, a string, or a
    mapping with a ``task``/``prompt`` key)."""
