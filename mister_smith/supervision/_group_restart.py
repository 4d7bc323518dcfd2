"""Group restarts (``OneForAll`` / ``RestForOne``) under way in one supervisor: stop the
group, wait out backoff and breaker, restart it in start order — or be superseded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from ._breaker import CircuitBreaker, admit_restart
from ._child import Child, ChildState
from ._decision import RestartChild

if TYPE_CHECKING:
    from ._supervisor import Supervisor


@attrs.define(eq=False)
class _PendingGroup:
    """A group restart under way: superseded or dropped while not yet committed."""

    failed: Child
    scope: trio.CancelScope
    committed: bool = False


class GroupRestarts:
    """The group restarts of one supervisor.

    One runs at a time past its wait (a lock), so restarts happen in order; a waiting
    one is superseded by a later restart of the same failed child, and a shutdown
    drops those still waiting (:meth:`cancel_waiting`).

    Args:
        supervisor: The supervisor whose children it restarts.
        reload: The supervisor's reload hook, called before a restart that reloads.
    """

    __slots__ = ("_lock", "_pending", "_reload", "_supervisor")

    def __init__(
        self, supervisor: Supervisor, reload: Callable[[], Awaitable[object]] | None
    ) -> None:
        self._supervisor = supervisor
        self._reload = reload
        self._pending: list[_PendingGroup] = []
        self._lock = trio.Lock()

    def __bool__(self) -> bool:
        """Whether a group restart is under way."""
        return bool(self._pending)

    def schedule(
        self,
        spawn: Callable[..., None],
        failed: Child,
        group: list[Child],
        decision: RestartChild,
        gate: CircuitBreaker | None,
    ) -> None:
        """Restart ``group`` (which includes ``failed``) in the background, in a task
        started by ``spawn`` (``spawn(fn, *args, name=...)``: the supervisor's
        :meth:`~._running.ChildRunner.spawn_clean`, so the failed run's context stays
        behind)."""
        # A pending group restart whose failed child this one restarts anyway is
        # superseded (while it is still waiting): one restart, in start order.
        for pending in self._pending:
            if not pending.committed and pending.failed in group:
                pending.scope.cancel()
        pending = _PendingGroup(failed, trio.CancelScope())
        self._pending.append(pending)
        spawn(
            self._restart, pending, group, decision, gate, name=f"{self._supervisor.name}:restart"
        )

    def cancel_waiting(self) -> None:
        """Drop the group restarts still waiting (backoff or breaker): a shutdown."""
        for pending in self._pending:
            if not pending.committed:
                pending.scope.cancel()

    async def _restart(
        self,
        pending: _PendingGroup,
        group: list[Child],
        decision: RestartChild,
        gate: CircuitBreaker | None,
    ) -> None:
        supervisor = self._supervisor
        core = supervisor._core
        failed = pending.failed
        failed_run = failed._run
        admitted = False
        try:
            with pending.scope:  # cancelled when superseded, or by a shutdown
                # 1. Stop the siblings at the failure (reverse start order).
                async with self._lock:
                    if core.halted():
                        return
                    for member in reversed(group):
                        await supervisor._stop_run(member)
                # 2. Wait out the backoff and the breaker without the lock, so one
                #    child's delay never holds up another child's restart.
                if decision.delay > 0:
                    await trio.sleep(decision.delay)
                if gate is not None and not core.halted():
                    await admit_restart(gate)
                    admitted = True
                await self._lock.acquire()
                pending.committed = True  # from here on it runs to completion
            if not pending.committed:
                return
            # 3. Restart, in start order, unless another restart already brought the
            #    failed child back meanwhile (then this one is stale).
            try:
                if core.halted() or failed._run is not failed_run:
                    return
                for member in reversed(group):
                    await supervisor._stop_run(member)  # anything restarted meanwhile
                if not await self._reload_before_restart(failed, decision):
                    return
                for member in group:
                    if core.halted():
                        return
                    if core.get(member.name) is not member:
                        continue
                    if member is failed:
                        await supervisor._runner.relaunch(member, decision.action)
                    elif core.temporary_sibling(member):
                        member.state = ChildState.STOPPED
                        supervisor._discard(member)
                    else:
                        member.restarts += 1
                        await supervisor._runner.relaunch(member, decision.action)
                admitted = False
            finally:
                self._lock.release()
        finally:
            if admitted and gate is not None:
                gate.release()
            self._pending.remove(pending)
            supervisor._check_idle()

    async def _reload_before_restart(self, failed: Child, decision: RestartChild) -> bool:
        """Call the reload hook if ``decision`` says so; ``False`` if it raised (the
        supervisor then escalates that error)."""
        if decision.reload and self._reload is not None:
            try:
                await self._reload()
            except Exception as exc:
                self._supervisor._reload_failed(failed, exc)
                return False
        return True
