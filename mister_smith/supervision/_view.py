"""A supervisor as seen from outside: its options, state, children and counters.

:class:`SupervisorView` is a base of :class:`~mister_smith.supervision.Supervisor`
that reads everything from the supervisor's :class:`SupervisorCore` and touches no
task: the Trio shell (``_supervisor``) adds the nursery and the runs. Changing the
bounds while it runs (:meth:`SupervisorView.reconfigure`) is here too, as it only
replaces the core's configuration.
"""

from __future__ import annotations

import attrs

from ..types import Restart
from ._child import Child
from ._config import INHERIT, Inherit, SupervisorConfig
from ._core import SupervisorCore, SupervisorState
from ._intensity import Backoff, RestartLimit
from ._shutdown import STUCK_MARGIN
from ._strategy import SupervisionStrategyBase


@attrs.frozen
class SupervisorStatistics:
    """Counters of one supervisor."""

    name: str
    state: str
    children: int
    restarts: int
    failures: int
    decisions: int
    stopped_children: int = 0
    """Children stopped for good because they spent their own restart budget."""


class SupervisorView:
    """What can be read of a supervisor, and its bounds changed, through its core.

    A base of :class:`~mister_smith.supervision.Supervisor` (its members are
    documented there): it holds nothing but the core the supervisor sets.
    """

    __slots__ = ()

    _core: SupervisorCore
    """The supervisor's registry, state, counters and decisions."""

    # -- configuration ------------------------------------------------------------------

    @property
    def config(self) -> SupervisorConfig:
        """Its configuration now (see :meth:`reconfigure`)."""
        return self._core.config

    @property
    def name(self) -> str:
        """Shown in events, logs and snapshots."""
        return self._core.config.name

    @property
    def strategy(self) -> SupervisionStrategyBase:
        """Which siblings go down and come back with a failed child."""
        return self._core.config.strategy

    @property
    def max_restarts(self) -> int | None:
        """Supervisor-wide restart intensity (``None``: none)."""
        return self._core.config.max_restarts

    @property
    def restart_window(self) -> float:
        """Seconds of the intensity window."""
        return self._core.config.restart_window

    @property
    def backoff(self) -> Backoff | None:
        """Delay between restarts."""
        return self._core.config.backoff

    @property
    def child_limit(self) -> RestartLimit | None:
        """Each child's own restart budget, unless it has one of its own."""
        return self._core.config.child_limit

    @property
    def escalation_timeout(self) -> float | None:
        """How long its children get to stop when it gives up."""
        return self._core.config.escalation_timeout

    @property
    def default_restart(self) -> Restart:
        """Restart type of children that do not set one."""
        return self._core.config.default_restart

    @property
    def shutdown_timeout(self) -> float:
        """Default grace seconds per child when stopping."""
        return self._core.config.shutdown_timeout

    def reconfigure(
        self,
        *,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        shutdown_timeout: float | None = None,
    ) -> None:
        """Change this supervisor's bounds while it runs; its children keep running.

        Options left out keep their value (``None`` turns ``max_restarts``,
        ``backoff``, ``child_limit`` or ``escalation_timeout`` off). Restarts already
        counted stay counted against the new limits; a child given a
        ``restart_limit`` of its own keeps it; ``shutdown_timeout`` applies to children
        started from now on that do not set their own.
        """
        config = self.config.reconfigured(
            max_restarts=max_restarts,
            restart_window=restart_window,
            backoff=backoff,
            child_limit=child_limit,
            escalation_timeout=escalation_timeout,
            shutdown_timeout=shutdown_timeout,
        )  # validated before anything changes
        self._core.reconfigure(config)

    # -- state and children ---------------------------------------------------------------

    @property
    def state(self) -> SupervisorState:
        """``running``, ``stopping``, ``stopped`` or ``failed`` (a string enum)."""
        return self._core.state

    def children(self) -> list[Child]:
        """The current children, in start order."""
        return self._core.children()

    @property
    def child_count(self) -> int:
        """How many children it holds now (without copying the list)."""
        return len(self._core)

    def child(self, name: str) -> Child:
        """The child called ``name``.

        Raises:
            LookupError: no such child.
        """
        child = self._core.get(name)
        if child is None:
            raise LookupError(f"supervisor {self.name!r} has no child {name!r}")
        return child

    def statistics(self) -> SupervisorStatistics:
        """Counters of this supervisor."""
        core = self._core
        return SupervisorStatistics(
            name=self.name,
            state=core.state,
            children=len(core),
            restarts=core.restarts,
            failures=core.failures,
            decisions=core.decisions,
            stopped_children=core.stopped_children,
        )

    def shutdown_bound(self) -> float:
        """Upper bound in seconds of an orderly shutdown of this supervisor's subtree."""
        total = 0.0
        for child in self._core.children():
            nested = child.value
            if isinstance(nested, SupervisorView):
                total += min(child.shutdown_timeout, nested.shutdown_bound()) + STUCK_MARGIN
            else:
                total += child.shutdown_timeout + STUCK_MARGIN
        return total

    def __repr__(self) -> str:
        return f"<Supervisor {self.name} {self.state.value} children={len(self._core)}>"
