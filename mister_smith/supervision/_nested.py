"""Running a supervisor as a child of another: :meth:`start_supervisor` and the child
function that opens the nested supervisor and keeps it open."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Self

import trio

from ..types import Restart
from ._child import Child, ChildSpec, RecoveryPolicy
from ._config import INHERIT, SUPERVISOR_CHILD_SHUTDOWN, Inherit, SupervisorConfig
from ._intensity import Backoff, RestartLimit
from ._strategy import SupervisionStrategyLike
from ._view import SupervisorView


class NestedSupervisors(SupervisorView):
    """Starting supervisors as children: a base of
    :class:`~mister_smith.supervision.Supervisor` (its members are documented there).

    The supervisor provides how to start a child and how to make a supervisor that
    shares its event bus and hooks; this adds the child that runs one.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def start_child(self, fn: ChildSpec, /) -> Child:
        """Start a child from ``fn`` and return it once it has started."""

    @abc.abstractmethod
    def _nested_supervisor(
        self,
        config: SupervisorConfig,
        children: Sequence[ChildSpec],
        on_child_removed: Callable[[Child], object] | None,
    ) -> AbstractAsyncContextManager[Self]:
        """A supervisor configured by ``config`` that shares this one's event bus,
        reload hook and breaker factory, to open as a child of this one."""

    async def start_supervisor(
        self,
        name: str,
        *,
        strategy: SupervisionStrategyLike | None = None,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        children: Sequence[ChildSpec] = (),
        restart: Restart = Restart.PERMANENT,
        recovery: RecoveryPolicy | None = None,
        restart_limit: RestartLimit | None = None,
        shutdown_timeout: float | None = None,
        default_restart: Restart | None = None,
        on_child_removed: Callable[[Child], object] | None = None,
        on_terminated: Callable[[Child], object] | None = None,
        on_started: Callable[[Self], object] | None = None,
        owner: str | None = None,
    ) -> Self:
        """Start a nested supervisor as a child and return it (once it is running).

        It shares this supervisor's event bus, reload hook and breaker factory; its
        strategy, intensity (``max_restarts``, ``restart_window``), ``backoff``,
        ``child_limit`` and ``escalation_timeout`` are this supervisor's unless given
        (``None`` turns a bound off). When it gives up (restart intensity exceeded, an
        escalation) that is one failure of a child of this supervisor: by default it is
        restarted (the errors' own ``Restart`` strategy), counted in this supervisor's
        intensity and in ``restart_limit``; pass ``recovery=RecoveryStrategy.EscalateFailure()``
        to hand a failure further up at once. When it is restarted it starts the specs in
        ``children`` afresh (the sequence is read at each start, so a caller may keep it
        up to date) and ``child.value`` becomes the new supervisor; ``on_started`` is
        called with each new instance (the first included) once its ``children`` have
        started. ``on_child_removed`` is called when one of its children leaves it for
        good (not when it shuts down); ``on_terminated`` when it is itself gone for good.
        ``owner`` names the sibling it belongs to (see ``ChildSpec.owner``).
        """
        config = self.config.nested(
            name,
            strategy=strategy,
            max_restarts=max_restarts,
            restart_window=restart_window,
            backoff=backoff,
            child_limit=child_limit,
            escalation_timeout=escalation_timeout,
            default_restart=default_restart,
        )
        child = await self.start_child(
            ChildSpec.of(
                self._nested_runner(config, children, on_child_removed, on_started),
                name=name,
                restart=restart,
                recovery=recovery,
                restart_limit=restart_limit,
                # A supervisor child is bounded by its own children's timeouts.
                shutdown_timeout=SUPERVISOR_CHILD_SHUTDOWN
                if shutdown_timeout is None
                else shutdown_timeout,
                on_terminated=on_terminated,
                owner=owner,
            )
        )
        nested: Self = child.value
        return nested

    def _nested_runner(
        self,
        config: SupervisorConfig,
        children: Sequence[ChildSpec],
        on_child_removed: Callable[[Child], object] | None,
        on_started: Callable[[Self], object] | None,
    ) -> Callable[..., Awaitable[None]]:
        async def run_nested(
            *, task_status: trio.TaskStatus[Self] = trio.TASK_STATUS_IGNORED
        ) -> None:
            async with self._nested_supervisor(config, children, on_child_removed) as nested:
                if on_started is not None:
                    on_started(nested)
                task_status.started(nested)

        run_nested.__name__ = config.name
        return run_nested
