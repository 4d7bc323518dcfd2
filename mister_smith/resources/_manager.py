"""``ResourceManager``: named pools and resources, each a supervised child."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import trio

from ..config import PoolSettings
from ..events import EventBus
from ..supervision import Child, ChildSpec, Restart, Supervisor, open_supervisor
from ._accounting import PoolStatistics
from ._checks import PoolHealthCheck
from ._errors import UnknownResource
from ._health import HealthMonitor
from ._pool import (
    _UNSET,
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    Checker,
    Closer,
    ConnectionPool,
    Factory,
    _Unset,
    open_pool,
)

T = TypeVar("T")

ResourceOpener = Callable[[], AbstractAsyncContextManager[T]]
"""Opens a resource as an async context manager (e.g. ``lambda: open_pool(connect)``)."""


class _CurrentPool:
    """The pool now registered under a name (it changes when the pool is restarted)."""

    def __init__(self, manager: ResourceManager, name: str) -> None:
        self._manager = manager
        self._name = name

    def statistics(self) -> PoolStatistics:
        return self._manager.pool(self._name).statistics()


class ResourceManager:
    """Owns named pools and other resources; each runs as a child of one supervisor.

    A resource is opened by its child task and closed when that child stops, so its
    lifetime is the supervision tree's: if its child fails (say the pool's factory
    raises while warming after a restart, or its health check keeps failing), the
    supervisor restarts it and :meth:`pool` / :meth:`resource` return the new one.
    Hold the name, not the object, across restarts.

    With a :class:`HealthMonitor`, :meth:`add_pool` also registers a
    :class:`PoolHealthCheck` under the pool's name, and the pool's child awaits
    :meth:`HealthMonitor.guard`, so a pool that stays unhealthy is restarted by its
    supervisor.

    Create one with :func:`open_resource_manager`, or directly on a supervisor you
    own (``ResourceManager(supervisor)``).
    """

    def __init__(self, supervisor: Supervisor, *, health: HealthMonitor | None = None) -> None:
        self._supervisor = supervisor
        self._supervisor_child: Child | None = None
        self.health = health
        self._values: dict[str, Any] = {}
        self._names: list[str] = []
        # Shared with a nested supervisor started by open_resource_manager, which
        # re-creates these children if it is itself restarted.
        self._specs: list[ChildSpec] = []

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor whose children the resources are."""
        child = self._supervisor_child
        if child is not None and isinstance(child.value, Supervisor):
            return child.value
        return self._supervisor

    # -- adding -------------------------------------------------------------------------

    async def add_resource(
        self,
        name: str,
        open_resource: ResourceOpener[T],
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown_timeout: float | None = None,
    ) -> T:
        """Open a resource in a new supervised child and return it once open.

        ``open_resource()`` must return an async context manager; the child enters it,
        publishes what it yields under ``name``, and exits it when stopped. If the
        manager's health monitor has a check named ``name`` (add it first), the child
        also awaits :meth:`HealthMonitor.guard`, so a resource that stays unhealthy is
        restarted by the supervisor.

        Raises:
            ValueError: ``name`` is taken.
            Exception: whatever opening the resource raised on its first start.
        """
        if name in self._names:
            raise ValueError(f"resource {name!r} already exists")
        spec = ChildSpec.of(
            self._run_resource,
            name,
            open_resource,
            name=name,
            restart=restart,
            shutdown_timeout=shutdown_timeout,
        )
        child = await self.supervisor.start_child(spec)
        self._names.append(name)
        self._specs.append(spec)
        value: T = child.value
        return value

    async def add_pool(
        self,
        name: str,
        factory: Factory[T],
        *,
        close: Closer[T] | None = None,
        health_check: Checker[T] | None = None,
        settings: PoolSettings | None = None,
        min_size: int | _Unset = _UNSET,
        max_size: int | _Unset = _UNSET,
        acquire_timeout: float | _Unset | None = _UNSET,
        max_idle: float | _Unset = _UNSET,
        max_lifetime: float | _Unset | None = _UNSET,
        events: EventBus | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT,
        restart: Restart = Restart.PERMANENT,
        required: bool = True,
    ) -> ConnectionPool[T]:
        """Open a :class:`ConnectionPool` named ``name`` as a supervised child.

        The pool options are :func:`open_pool`'s (``events`` defaults to the
        supervisor's bus). ``required`` says whether readiness depends on the pool's
        health check (when the manager has a health monitor).

        Raises:
            ValueError: ``name`` is taken.
            Exception: the factory's error while warming ``min_size`` connections.
        """
        bus = self.supervisor.events if events is None else events

        def opener() -> AbstractAsyncContextManager[ConnectionPool[T]]:
            return open_pool(
                factory,
                close=close,
                health_check=health_check,
                settings=settings,
                min_size=min_size,
                max_size=max_size,
                acquire_timeout=acquire_timeout,
                max_idle=max_idle,
                max_lifetime=max_lifetime,
                name=name,
                events=bus,
                close_timeout=close_timeout,
                check_timeout=check_timeout,
            )

        if self.health is not None:
            self.health.add_check(
                PoolHealthCheck(_CurrentPool(self, name), name=name, required=required)
            )
        try:
            return await self.add_resource(name, opener, restart=restart)
        except BaseException:
            if self.health is not None:
                self.health.remove_check(name)
            raise

    async def _run_resource(
        self,
        name: str,
        open_resource: ResourceOpener[Any],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_resource() as value:
            self._values[name] = value
            try:
                task_status.started(value)
                health = self.health
                if health is not None and name in health.components():
                    await health.guard(name)
                else:
                    await trio.sleep_forever()
            finally:
                if self._values.get(name) is value:
                    del self._values[name]

    # -- looking up ---------------------------------------------------------------------

    def resource(self, name: str) -> Any:
        """The resource now open under ``name``.

        Raises:
            UnknownResource: nothing by that name is open (unknown, removed, or
                between a failure and its restart).
        """
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise UnknownResource(f"no resource named {name!r} (open: {known})") from None

    def pool(self, name: str) -> ConnectionPool[Any]:
        """The pool now open under ``name``.

        Raises:
            UnknownResource: no resource by that name is open.
            TypeError: the resource by that name is not a pool.
        """
        value = self.resource(name)
        if not isinstance(value, ConnectionPool):
            raise TypeError(f"resource {name!r} is a {type(value).__name__}, not a pool")
        return value

    def names(self) -> list[str]:
        """Names of the resources added and not removed, in the order added."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def statistics(self) -> dict[str, PoolStatistics]:
        """The statistics of every open pool, by name."""
        return {
            name: value.statistics()
            for name, value in self._values.items()
            if isinstance(value, ConnectionPool)
        }

    # -- removing -----------------------------------------------------------------------

    async def remove(self, name: str) -> None:
        """Stop the resource's child (closing the resource) and forget it.

        Raises:
            UnknownResource: no resource by that name was added.
        """
        if name not in self._names:
            raise UnknownResource(f"no resource named {name!r}")
        self._names.remove(name)
        self._specs[:] = [spec for spec in self._specs if spec.name != name]
        if self.health is not None:
            self.health.remove_check(name)
        try:
            child = self.supervisor.child(name)
        except LookupError:
            # Already gone (e.g. removed by its supervisor after failing).
            await trio.lowlevel.checkpoint()
            return
        await child.stop()


@asynccontextmanager
async def open_resource_manager(
    *,
    supervisor: Supervisor | None = None,
    name: str = "resources",
    events: EventBus | None = None,
    health: HealthMonitor | None = None,
) -> AsyncIterator[ResourceManager]:
    """Open a :class:`ResourceManager` with its own supervisor; close everything on exit.

    With ``supervisor``, the manager's supervisor is started as its child named
    ``name`` (sharing its event bus); otherwise a top-level supervisor is opened (on
    ``events``, or a private bus). Leaving the block stops the manager's supervisor,
    which closes every resource in reverse order of adding.
    """
    if supervisor is not None:
        specs: list[ChildSpec] = []
        nested = await supervisor.start_supervisor(
            name, default_restart=Restart.PERMANENT, children=specs
        )
        manager = ResourceManager(nested, health=health)
        manager._specs = specs
        manager._supervisor_child = supervisor.child(name)
        try:
            yield manager
        finally:
            with trio.CancelScope(shield=True):
                await supervisor.stop_child(name)
        return
    async with open_supervisor(
        name, events=events, keep_alive=True, default_restart=Restart.PERMANENT
    ) as own:
        manager = ResourceManager(own, health=health)
        yield manager
        await own.stop()
