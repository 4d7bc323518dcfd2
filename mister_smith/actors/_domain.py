"""Actor domains: supervisors the actor system spawns into, which keep their actors
across their own restarts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import trio

from ..errors import ActorStopped
from ..supervision import Child, ChildEnd, ChildSpec, Supervisor, SupervisorState

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._system import ActorSystem


@attrs.define(eq=False)
class ActorDomain:
    """A supervisor of actors (and of nested domains) owned by an :class:`ActorSystem`.

    Get one from :meth:`ActorSystem.start_domain` (a team, a tenant, a kind of worker)
    or as :attr:`ActorSystem.default_domain`, and spawn into it with
    ``system.spawn(..., supervisor=domain)``.

    A domain is what makes "failures climb one level at a time" hold for actors. When
    its supervisor gives up (say a team whose members crash together faster than its
    intensity allows), the parent restarts it like any failing child, and the new
    supervisor starts every actor the domain held again: same names, same refs, same
    mailboxes (messages queued meanwhile are kept), a fresh incarnation each, as in a
    one-for-all restart. Only when the domain is gone for good (stopped, its own restart
    budget spent, its parent shut down) are its actors terminated, with that reason.

    Attributes:
        name: The supervisor's name.
        system: The owning actor system.
        restartable: Whether its parent restarts it (``False`` for a supervisor handed
            to :class:`ActorSystem`, which is nobody's child there).
    """

    name: str
    system: ActorSystem
    _supervisor: Supervisor | None
    restartable: bool
    parent: ActorDomain | Supervisor | None = None
    """The domain or plain supervisor it runs under (``None``: the system's top)."""
    _specs: list[ChildSpec] = attrs.field(factory=list)
    """What its supervisor starts again after a restart, in start order (read by the
    supervisor at each start)."""
    _members: dict[str, ActorCell | ActorDomain] = attrs.field(factory=dict)
    terminated: bool = False
    _back: trio.Event | None = None
    """Set when a new supervisor instance runs or the domain is gone (made on demand)."""

    # -- structure ----------------------------------------------------------------------

    @property
    def supervisor(self) -> Supervisor:
        """The domain's current supervisor (a new object after each restart)."""
        supervisor = self._supervisor
        if supervisor is None:
            raise RuntimeError(f"domain {self.name!r} has not started yet")
        return supervisor

    def specs(self) -> Sequence[ChildSpec]:
        """The live spec list its supervisor re-reads at each (re)start."""
        return self._specs

    def members(self) -> list[str]:
        """Names of the actors and nested domains it holds, in start order."""
        return list(self._members)

    def parent_supervisor(self) -> Supervisor | None:
        """The supervisor the domain's own supervisor is a child of, now."""
        parent = self.parent
        if isinstance(parent, ActorDomain):
            return parent.supervisor
        return parent

    @property
    def restarting(self) -> bool:
        """Its supervisor gave up and waits for its parent to restart it (or to end it)."""
        supervisor = self._supervisor
        return (
            self.restartable
            and not self.terminated
            and supervisor is not None
            and supervisor.state is SupervisorState.FAILED
        )

    async def wait_running(self) -> None:
        """Return once the domain's supervisor runs (at once if it does).

        While the domain is :attr:`restarting` this waits for the new instance; its
        parent either restarts it (after its backoff) or ends it for good, so the wait
        always ends. The caller's cancel scope bounds it as usual.

        Raises:
            ActorStopped: the domain is gone for good.
        """
        while self.restarting:
            if self._back is None:
                self._back = trio.Event()
            await self._back.wait()
        if self.terminated:
            raise ActorStopped(f"domain {self.name!r} is stopped")

    def _wake(self) -> None:
        if self._back is not None:
            self._back.set()
            self._back = None

    def admit(self, name: str, member: ActorCell | ActorDomain, spec: ChildSpec) -> None:
        """``member`` started under this domain's supervisor as ``spec``: remember it,
        so a restart of the domain starts it again."""
        self._members[name] = member
        if self.restartable:
            self._specs.append(spec)

    def forget(self, name: str) -> ActorCell | ActorDomain | None:
        """Drop ``name`` (gone for good): a later restart of the domain skips it."""
        member = self._members.pop(name, None)
        if member is not None and self.restartable:
            for index, spec in enumerate(self._specs):
                if spec.name == name:
                    del self._specs[index]
                    break
        return member

    # -- supervision hooks --------------------------------------------------------------

    def started(self, supervisor: Supervisor) -> None:
        """Hook: a (new) supervisor instance of this domain is running."""
        self.system._rebind_domain(self, supervisor)
        self._wake()

    def child_removed(self, child: Child) -> None:
        """Hook: one of its children left for good (stopped, failed, budget spent)."""
        member = self.forget(child.name)
        reason = (child.end_reason or ChildEnd.STOPPED).value
        _end(member, reason)

    def gone(self, child: Child) -> None:
        """Hook: the domain's own supervisor is gone for good."""
        self.terminate((child.end_reason or ChildEnd.SHUT_DOWN).value)

    def terminate(self, reason: str) -> None:
        """End every member for good (dead-lettering their mailboxes), then the domain."""
        if self.terminated:
            return
        self.terminated = True
        members = list(self._members.values())
        self._members.clear()
        self._specs.clear()
        for member in members:
            _end(member, reason)
        if isinstance(self.parent, ActorDomain):
            self.parent.forget(self.name)
        self.system._domain_terminated(self)
        self._wake()

    def __repr__(self) -> str:
        supervisor = self._supervisor
        state = "terminated" if self.terminated or supervisor is None else supervisor.state
        return f"<ActorDomain {self.name} {state} members={len(self._members)}>"


def _end(member: ActorCell | ActorDomain | None, reason: str) -> None:
    if member is None:
        return
    if isinstance(member, ActorDomain):
        member.terminate(reason)
    else:
        member.system._terminate(member, reason)
