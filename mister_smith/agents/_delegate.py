"""``AgentEndpoint``: an agent reachable with ``ask(message, *, timeout=)``, the caller's
deadline travelling with the task (what :class:`mister_smith.tools.AgentTool` wraps)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from ..actors import ActorRef
from ..errors import ActorCrashed, AskTimeout, TaskTimeout
from ..types import Caller
from ._task import AgentResult, AgentTask
from ._usage import UsageBudget


class AgentEndpoint:
    """Talks to an agent actor so that the caller's deadline becomes the task's.

    ``await endpoint.ask(message, timeout=...)`` turns ``message`` into an
    :class:`AgentTask` whose ``deadline`` is the earlier of ``now + timeout`` and the
    caller's own effective deadline (``trio.current_effective_deadline()``, e.g. the
    tool bus's cancel scope), so a delegate stops working when its caller stops
    waiting. The answer text is returned (``full_result=True``: the
    :class:`AgentResult`).

    A delegate that crashed while working on the task is asked again, up to
    ``retries`` times, if it was restarted and time remains. Its tasks count against
    ``budgets`` (e.g. the team's usage budget) as well as its own.

    It is a :class:`~mister_smith.tools.Delegate`: offered as an
    :class:`~mister_smith.tools.AgentTool`, it is asked with :meth:`ask_on_behalf` and
    the tool's caller, which the task carries as :attr:`AgentTask.on_behalf_of`, so the
    agent may only call tools that caller may call too.
    """

    def __init__(
        self,
        ref: ActorRef,
        *,
        retries: int = 0,
        full_result: bool = False,
        budgets: Sequence[UsageBudget] = (),
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        self.ref = ref
        self.retries = retries
        self.full_result = full_result
        self.budgets = tuple(budgets)

    @property
    def name(self) -> str:
        """The agent's name."""
        return self.ref.name

    def _task(self, message: Any, deadline: float, on_behalf_of: tuple[Caller, ...]) -> AgentTask:
        task = AgentTask.coerce(message)
        if math.isfinite(deadline) and (task.deadline is None or deadline < task.deadline):
            task = attrs.evolve(task, deadline=deadline)
        if on_behalf_of:
            task = attrs.evolve(task, on_behalf_of=(*on_behalf_of, *task.on_behalf_of))
        if self.budgets:
            task = attrs.evolve(task, budgets=(*task.budgets, *self.budgets))
        return task

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Give the agent a task and wait for its answer within the deadline.

        Raises:
            AskTimeout: no answer in time.
            ActorCrashed: the agent crashed on it (and on every retry).
            ActorStopped: the agent is stopped.
        """
        return await self.ask_on_behalf(message, on_behalf_of=(), timeout=timeout)

    async def ask_on_behalf(
        self,
        message: Any,
        *,
        on_behalf_of: tuple[Caller, ...],
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`ask`, for a task delegated by ``on_behalf_of`` (outermost first):
        the agent's tool calls must be allowed for each of them too."""
        deadline = trio.current_effective_deadline()
        if timeout is not None:
            deadline = min(deadline, trio.current_time() + timeout)
        task = self._task(message, deadline, tuple(on_behalf_of))
        for attempt in range(self.retries + 1):
            remaining = deadline - trio.current_time()
            try:
                result: AgentResult = await self.ref.ask(
                    task, timeout=max(0.0, remaining) if math.isfinite(remaining) else math.inf
                )
            except ActorCrashed as crash:
                if isinstance(crash.__cause__, TaskTimeout):
                    raise AskTimeout(f"agent {self.name!r} ran out of time") from crash
                if attempt >= self.retries or not self.ref.is_alive:
                    raise
                continue
            return result if self.full_result else result.answer
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"AgentEndpoint({self.ref.name!r})"
