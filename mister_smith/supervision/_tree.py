"""Hierarchical supervision: domain supervisors created on demand, and snapshots."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..errors import RecoveryStrategy, SupervisionError
from ..events import ChildStarted, EventBus
from ..types import Restart
from ._child import Child, ChildSpec, ChildState
from ._intensity import Backoff, RestartLimit
from ._open import open_supervisor
from ._strategy import SupervisionStrategyLike
from ._supervisor import Supervisor


@attrs.frozen
class TreeSnapshot:
    """A frozen, printable description of a supervisor or child and what is under it.

    Attributes:
        name: The node's name.
        kind: ``"supervisor"`` or ``"child"``.
        state: Its state (``running``, ``waiting``, ``stopped``, ...).
        restarts: Times it was run again.
        children: Snapshots of the nodes under it, in start order.
    """

    name: str
    kind: str
    state: str
    restarts: int = 0
    children: tuple[TreeSnapshot, ...] = ()

    def walk(self) -> list[TreeSnapshot]:
        """This node and every node below it, depth first."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes

    def render(self) -> str:
        """The tree as indented text, one node a line."""
        lines: list[str] = []
        self._render(lines, "", "", "")
        return "\n".join(lines)

    def _render(self, lines: list[str], lead: str, branch: str, stem: str) -> None:
        mark = "◆" if self.kind == "supervisor" else "●"
        restarts = f" restarts={self.restarts}" if self.restarts else ""
        lines.append(f"{lead}{branch}{mark} {self.name} [{self.state}]{restarts}")
        for index, child in enumerate(self.children):
            last = index == len(self.children) - 1
            child._render(lines, lead + stem, "└─ " if last else "├─ ", "   " if last else "│  ")

    def __str__(self) -> str:
        return self.render()


def snapshot(supervisor: Supervisor, *, restarts: int = 0) -> TreeSnapshot:
    """Snapshot ``supervisor`` and, recursively, the supervisors nested under it."""
    nodes: list[TreeSnapshot] = []
    for child in supervisor.children():
        nodes.append(_child_snapshot(child))
    return TreeSnapshot(supervisor.name, "supervisor", supervisor.state, restarts, tuple(nodes))


def _child_snapshot(child: Child) -> TreeSnapshot:
    nested = child.value
    if isinstance(nested, Supervisor) and child.state is not ChildState.STOPPED:
        return snapshot(nested, restarts=child.restarts)
    return TreeSnapshot(child.name, "child", child.state.value, child.restarts)


def _started_under(supervisor: str, child: str, event: ChildStarted) -> bool:
    return event.supervisor == supervisor and event.child == child


class SupervisionTree:
    """A root supervisor with domain supervisors created on demand.

    :meth:`route_to_domain` starts a child under the supervisor of its domain,
    creating that supervisor the first time. No domain supervisor grows past
    ``max_children_per_supervisor``: a full one gets a sibling (``domain#2``, ...), so
    no single supervisor becomes a monolithic bottleneck. Domain supervisors are
    restarted by the root (``Restart`` recovery) and re-create the children routed to
    them; routing to a domain whose supervisor is being restarted waits for it (up to
    ``restart_wait`` seconds, the escalation timeout). Open one with
    :func:`open_supervision_tree`.
    """

    def __init__(
        self,
        root: Supervisor,
        *,
        max_children_per_supervisor: int,
        domain_strategy: SupervisionStrategyLike | None,
        domain_max_restarts: int,
        domain_restart_window: float,
        domain_backoff: Backoff | None,
        restart_wait: float = 10.0,
    ) -> None:
        if max_children_per_supervisor < 1:
            raise ValueError(
                f"max_children_per_supervisor must be >= 1, got {max_children_per_supervisor!r}"
            )
        self.root = root
        self.max_children_per_supervisor = max_children_per_supervisor
        self.restart_wait = restart_wait
        self._domain_strategy = domain_strategy
        self._domain_max_restarts = domain_max_restarts
        self._domain_restart_window = domain_restart_window
        self._domain_backoff = domain_backoff
        self._domains: dict[str, list[str]] = {}
        self._specs: dict[str, list[ChildSpec]] = {}
        self._lock = trio.Lock()

    @property
    def events(self) -> EventBus:
        """The event bus shared by every supervisor of the tree."""
        return self.root.events

    def domains(self) -> dict[str, list[Supervisor]]:
        """Each domain's supervisors (the first, then overflow siblings)."""
        result: dict[str, list[Supervisor]] = {}
        for domain, names in self._domains.items():
            result[domain] = [sup for name in names if (sup := self._supervisor(name))]
        return result

    def _domain_state(self, name: str) -> tuple[Supervisor, bool] | None:
        """The domain supervisor called ``name`` and whether it is up, or ``None`` if the
        root no longer has it."""
        try:
            child = self.root.child(name)
        except LookupError:
            return None
        value = child.value
        if not isinstance(value, Supervisor):
            return None
        up = child.state is ChildState.RUNNING and value.state == "running"
        return value, up

    def _supervisor(self, name: str) -> Supervisor | None:
        try:
            child = self.root.child(name)
        except LookupError:
            return None
        value = child.value
        return value if isinstance(value, Supervisor) else None

    async def domain_supervisor(self, domain: str) -> Supervisor:
        """The supervisor with room for one more child in ``domain`` (created if needed)."""
        if not domain or "#" in domain or "/" in domain:
            raise ValueError(f"domain names must be non-empty without '#' or '/': {domain!r}")
        async with self._lock:  # concurrent callers must not race to create one name
            return await self._domain_supervisor(domain)

    async def _domain_supervisor(self, domain: str) -> Supervisor:
        names = self._domains.setdefault(domain, [])
        while True:
            restarting: str | None = None
            for name in names:
                state = self._domain_state(name)
                if state is None:
                    continue
                sup, running = state
                if not running:
                    restarting = restarting or name
                elif len(sup.children()) < self.max_children_per_supervisor:
                    return sup
            if restarting is None:
                break
            # That domain supervisor is being restarted by the root: wait for it rather
            # than handing out a dying one or starting a needless sibling.
            try:
                await self.events.wait_for_event(
                    ChildStarted,
                    functools.partial(_started_under, self.root.name, restarting),
                    timeout=self.restart_wait,
                )
            except TimeoutError:
                raise SupervisionError(
                    f"domain supervisor {restarting!r} did not come back within "
                    f"{self.restart_wait} s"
                ) from None
        name = domain if not names else f"{domain}#{len(names) + 1}"
        specs = self._specs[name] = []

        def forget(child: Child) -> None:
            for spec in list(specs):
                if spec.name == child.name:
                    specs.remove(spec)

        sup = await self.root.start_supervisor(
            name,
            strategy=self._domain_strategy,
            max_restarts=self._domain_max_restarts,
            restart_window=self._domain_restart_window,
            backoff=self._domain_backoff,
            restart=Restart.PERMANENT,
            recovery=RecoveryStrategy.Restart(),
            children=specs,
            on_child_removed=forget,
        )
        names.append(name)
        return sup

    async def route_to_domain(
        self, domain: str, fn: Callable[..., Awaitable[object]], *args: Any, **options: Any
    ) -> Child:
        """Start ``fn(*args)`` under ``domain``'s supervisor (options as for ``start_child``).

        The child is remembered by its domain supervisor's spec list, so when the
        domain supervisor is restarted the child is started again with it.
        """
        sup = await self.domain_supervisor(domain)
        spec = ChildSpec.of(fn, *args, **options)
        child = await sup.start_child(spec)
        if spec.name is None:
            spec = attrs.evolve(spec, name=child.name)
        self._specs[sup.name].append(spec)
        return child

    def snapshot(self) -> TreeSnapshot:
        """A frozen description of the whole tree."""
        return snapshot(self.root)


@asynccontextmanager
async def open_supervision_tree(
    name: str = "root",
    *,
    events: EventBus | None = None,
    max_children_per_supervisor: int = 100,
    max_restarts: int = 5,
    restart_window: float = 300.0,
    domain_strategy: SupervisionStrategyLike | None = None,
    domain_max_restarts: int = 3,
    domain_restart_window: float = 60.0,
    domain_backoff: Backoff | None = None,
    shutdown_timeout: float = 5.0,
) -> AsyncIterator[SupervisionTree]:
    """Open a :class:`SupervisionTree` whose root runs until the block ends or it is stopped.

    The defaults follow the wider design: supervisors restart up to 5 times in 300 s,
    workers 3 times in 60 s. Failures climb one level at a time and stop there: each
    domain supervisor that gives up (its own intensity, ``domain_max_restarts`` within
    ``domain_restart_window``, spent) is restarted by the root with the children routed
    to it, counted in *that domain's* budget (``max_restarts`` within
    ``restart_window``); a domain that spends it is stopped for good while the other
    domains and the root go on (the root counts no intensity across domains).
    """
    async with open_supervisor(
        name,
        events=events,
        max_restarts=None,
        child_limit=RestartLimit(max_restarts, restart_window),
        restart_window=restart_window,
        default_restart=Restart.PERMANENT,
        shutdown_timeout=shutdown_timeout,
        keep_alive=True,
    ) as root:
        tree = SupervisionTree(
            root,
            max_children_per_supervisor=max_children_per_supervisor,
            domain_strategy=domain_strategy,
            domain_max_restarts=domain_max_restarts,
            domain_restart_window=domain_restart_window,
            domain_backoff=domain_backoff,
        )
        yield tree
        await root.stop()
