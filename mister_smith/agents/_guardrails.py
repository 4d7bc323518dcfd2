"""Guardrails: checks on a task before it is worked on and on an answer before it is
given; a tripwire stops the task with :class:`~mister_smith.agents.GuardrailTripped`
and a :class:`GuardrailTriggered` event.

A guardrail's check is an ``async def`` (never a sync function: it could block the
loop) or an agent (an :class:`~mister_smith.actors.ActorRef` whose typed output is a
:class:`GuardrailVerdict`, or a bool meaning "trip"). Input guardrails run concurrently
with the agent's first model request, which is cancelled when one trips; no tool runs
before all of them passed. Output guardrails run on the final answer, all at once. A
guardrail that fails (raises) counts as tripped: a check that cannot say "safe" does
not let the task through.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import trio

from ..events import Event, EventBus
from ..types import TaskId
from ._errors import GuardrailTripped

logger = logging.getLogger("mister_smith.agents.guardrails")


@attrs.frozen
class GuardrailVerdict:
    """What a check decided.

    Attributes:
        tripped: Stop the task.
        reason: Why (shown in the error and the event).
    """

    tripped: bool
    reason: str = ""


@attrs.frozen
class GuardrailInput:
    """What a guardrail looks at.

    Attributes:
        agent: The agent's name.
        stage: ``"input"`` (the task) or ``"output"`` (the answer).
        text: The task's prompt, or the answer's text.
        output: The typed answer (output stage; the text without an ``output_type``).
        task_id: The task.
    """

    agent: str
    stage: str
    text: str
    output: Any = None
    task_id: TaskId | None = None


Check = Callable[[GuardrailInput], Awaitable[GuardrailVerdict | bool]]
"""An async check: a verdict, or ``True`` to trip."""


def _check_callable(instance: object, attribute: object, value: object) -> None:
    if _is_askable(value):
        return
    if not callable(value):
        raise TypeError(f"a guardrail check must be an async function or an agent, got {value!r}")
    target = getattr(value, "__call__", value)  # noqa: B004 - callable objects too
    if not (inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(target)):
        raise TypeError(
            f"guardrail check {value!r} is not async: a sync check could block the loop; "
            "write it as `async def`"
        )


def _is_askable(value: object) -> bool:
    return callable(getattr(value, "ask", None)) and hasattr(value, "actor_id")


@attrs.frozen
class Guardrail:
    """A named check (see the module docs).

    Attributes:
        name: Named in errors and events.
        check: An ``async def`` taking :class:`GuardrailInput`, or an agent's ref (asked
            with the text; its result's ``output`` is the verdict).
        timeout: Seconds the check may take; past it, it counts as tripped.
    """

    name: str
    check: Any = attrs.field(validator=_check_callable)
    timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))

    async def judge(self, subject: GuardrailInput) -> GuardrailVerdict:
        """Run the check; a failure or a timeout is a tripped verdict."""
        try:
            with trio.fail_after(self.timeout):
                if _is_askable(self.check):
                    result = await self.check.ask(subject.text, timeout=self.timeout)
                    raw: Any = getattr(result, "output", result)
                else:
                    raw = await self.check(subject)
        except trio.TooSlowError:
            return GuardrailVerdict(True, f"the check took longer than {self.timeout:g} s")
        except Exception as exc:
            logger.warning("guardrail %s failed: %s: %s", self.name, type(exc).__name__, exc)
            return GuardrailVerdict(True, f"the check failed: {type(exc).__name__}: {exc}")
        if isinstance(raw, GuardrailVerdict):
            return raw
        if isinstance(raw, bool):
            return GuardrailVerdict(raw, "tripped" if raw else "")
        return GuardrailVerdict(True, f"the check answered {raw!r:.80}, not a verdict")


@attrs.frozen(kw_only=True)
class GuardrailTriggered(Event):
    """A guardrail stopped a task.

    Attributes:
        agent: The agent's name.
        task_id: The task.
        guardrail: Which one.
        stage: ``"input"`` or ``"output"``.
        reason: Why.
    """

    agent: str
    task_id: TaskId
    guardrail: str
    stage: str
    reason: str


async def run_guardrails(
    guardrails: Iterable[Guardrail], subject: GuardrailInput, events: EventBus | None
) -> None:
    """Run ``guardrails`` on ``subject`` at once.

    Raises:
        GuardrailTripped: the first (in order) that tripped, announced as
            :class:`GuardrailTriggered`.
    """
    checks = list(guardrails)
    verdicts: list[GuardrailVerdict | None] = [None] * len(checks)

    async def judge(index: int) -> None:
        verdicts[index] = await checks[index].judge(subject)

    async with trio.open_nursery() as nursery:
        for index in range(len(checks)):
            nursery.start_soon(judge, index)
    for guardrail, verdict in zip(checks, verdicts, strict=True):
        if verdict is not None and verdict.tripped:
            raise tripped(guardrail, verdict, subject, events)


def tripped(
    guardrail: Guardrail,
    verdict: GuardrailVerdict,
    subject: GuardrailInput,
    events: EventBus | None,
) -> GuardrailTripped:
    """The error for ``verdict`` (and its event, announced now)."""
    if events is not None and subject.task_id is not None:
        events.emit(
            GuardrailTriggered(
                source=subject.agent,
                agent=subject.agent,
                task_id=subject.task_id,
                guardrail=guardrail.name,
                stage=subject.stage,
                reason=verdict.reason,
            )
        )
    error = GuardrailTripped(
        f"agent {subject.agent!r}: {subject.stage} guardrail {guardrail.name!r} tripped: "
        f"{verdict.reason}"
    )
    error.guardrail = guardrail.name
    error.stage = subject.stage
    error.reason = verdict.reason
    return error
