"""``ConnectionPool``: a bounded, structured pool of connections made by an async factory."""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Final, Generic, TypeVar, cast

import attrs
import trio

from ..config import PoolSettings
from ..errors import PoolExhausted
from ..events import EventBus, ResourcePoolExhausted
from ._accounting import Grant, GrantKind, PoolCore, PoolStatistics, Waiter
from ._errors import PoolClosed
from ._nursery import open_owned_nursery

T = TypeVar("T")

logger = logging.getLogger("mister_smith.resources")

DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds a close function may take before it is abandoned (and logged)."""

DEFAULT_CHECK_TIMEOUT: Final = 5.0
"""Seconds a connection's health check may take before it counts as failed."""

WARM_RETRY_BASE: Final = 0.5
"""Seconds before re-trying to warm the pool after the factory failed (doubles)."""

WARM_RETRY_MAX: Final = 30.0
"""Longest wait between warming attempts."""


class _Unset(enum.Enum):
    UNSET = "unset"


_UNSET: Final = _Unset.UNSET

Factory = Callable[[], Awaitable[T]]
"""Makes one connection (``async def connect() -> Connection``)."""

Closer = Callable[[T], Awaitable[object]]
"""Closes one connection (``async def close(conn) -> None``)."""

Checker = Callable[[T], Awaitable[bool]]
"""Tells whether a connection is still usable (``async def ping(conn) -> bool``)."""


@attrs.define(eq=False)
class _AsyncWaiter(Waiter):
    event: trio.Event = attrs.field(factory=trio.Event)


class ConnectionPool(Generic[T]):
    """A bounded pool of connections created by an async factory.

    Open one with :func:`open_pool`; the pool's background work (keeping ``min_size``
    connections warm, closing idle and expired ones) runs in the pool's own nursery,
    owned by that ``async with``. Borrow with ``async with pool.acquire() as conn:``.

    * When every slot is taken, :meth:`acquire` waits (first come, first served) up to
      ``acquire_timeout``, then raises :class:`~mister_smith.errors.PoolExhausted` and
      announces :class:`~mister_smith.events.ResourcePoolExhausted`.
    * A connection whose user raised (including cancellation) is checked with
      ``health_check`` before reuse, and closed when it fails or when there is none: a
      broken connection is never handed out again.
    * Closing the pool closes every connection: idle ones at once, the ones in use when
      they are returned. Acquirers waiting then get :class:`PoolClosed`.
    * Cancelling an acquirer, while it waits or while it creates a connection, never
      leaks a slot: what it was given passes to the next waiter.
    """

    def __init__(
        self,
        factory: Factory[T],
        *,
        close: Closer[T] | None,
        health_check: Checker[T] | None,
        min_size: int,
        max_size: int,
        acquire_timeout: float | None,
        max_idle: float,
        max_lifetime: float | None,
        name: str,
        events: EventBus | None,
        close_timeout: float,
        check_timeout: float,
    ) -> None:
        if acquire_timeout is not None and not acquire_timeout > 0:
            raise ValueError(f"acquire_timeout must be None or > 0, got {acquire_timeout!r}")
        if not close_timeout > 0:
            raise ValueError(f"close_timeout must be > 0, got {close_timeout!r}")
        if not check_timeout > 0:
            raise ValueError(f"check_timeout must be > 0, got {check_timeout!r}")
        self.name = name
        self.acquire_timeout = math.inf if acquire_timeout is None else acquire_timeout
        self._factory = factory
        self._close = close
        self._health_check = health_check
        self._events = events
        self._close_timeout = close_timeout
        self._check_timeout = check_timeout
        self._core = PoolCore(
            max_size, min_size=min_size, max_idle=max_idle, max_lifetime=max_lifetime
        )
        self._connections: dict[int, T] = {}
        self._nursery: trio.Nursery | None = None
        self._housekeeper_scope = trio.CancelScope()
        self._housekeeper_wakeup = trio.Event()
        self._housekeeper_target = math.inf
        self._warm_not_before = -math.inf
        self._warm_failures = 0

    # -- public API -------------------------------------------------------------------

    @property
    def max_size(self) -> int:
        """Most connections open or being created at once."""
        return self._core.max_size

    @property
    def min_size(self) -> int:
        """Connections kept open even when idle."""
        return self._core.min_size

    @property
    def closed(self) -> bool:
        """Whether the pool has closed."""
        return self._core.closed

    def acquire(self, *, timeout: float | None = None) -> Lease[T]:
        """Borrow a connection: ``async with pool.acquire() as conn: ...``.

        Entering may block: it waits for a free connection or slot (creating a
        connection with the factory when a slot is free and none is idle). Leaving
        returns the connection; it only blocks to check or close a connection whose
        user raised, or to close one when the pool has closed.

        Args:
            timeout: Seconds to wait (waiting and creating together) instead of the
                pool's ``acquire_timeout`` (``math.inf``: for ever).

        Raises:
            PoolExhausted: nothing became free in time (on entering).
            PoolClosed: the pool has closed (on entering).
        """
        return Lease(self, self.acquire_timeout if timeout is None else timeout)

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's state and counters."""
        return self._core.statistics(self.name)

    def __repr__(self) -> str:
        stats = self._core.statistics(self.name)
        state = "closed" if stats.is_closed else "open"
        return (
            f"<ConnectionPool {self.name} {state} in_use={stats.in_use} idle={stats.idle} "
            f"max={stats.max_size}>"
        )

    # -- acquiring ------------------------------------------------------------------------

    async def _checkout(self, timeout: float) -> tuple[int, T]:
        await trio.lowlevel.checkpoint_if_cancelled()
        core = self._core
        started = trio.current_time()
        deadline = started + timeout
        grant = core.checkout(started)
        if grant is None:
            grant = await self._wait(started, deadline)
        else:
            self._flush()
            await trio.lowlevel.cancel_shielded_checkpoint()
        if grant.kind is GrantKind.CLOSED:
            raise PoolClosed(f"pool {self.name!r} is closed")
        if grant.kind is GrantKind.CREATE:
            connection = await self._create_for_checkout(deadline, timeout)
        else:
            connection = grant.connection
        core.record_acquired()
        return connection, self._connections[connection]

    async def _wait(self, started: float, deadline: float) -> Grant:
        core = self._core
        waiter = _AsyncWaiter()
        core.enqueue(waiter)
        try:
            if deadline == math.inf:
                await waiter.event.wait()
            else:
                with trio.move_on_at(deadline):
                    await waiter.event.wait()
        except BaseException:
            # Cancelled from outside: pass on anything it was given meanwhile.
            core.cancel_wait(waiter, trio.current_time())
            await self._settle()
            raise
        if waiter.grant is not None:
            grant = core.claim(waiter, trio.current_time())
            if core.has_effects():
                await self._settle()
            return grant
        core.cancel_wait(waiter, trio.current_time())
        core.record_timeout()
        waited = trio.current_time() - started
        if self._events is not None:
            self._events.emit(
                ResourcePoolExhausted(source=self.name, pool=self.name, waited=waited)
            )
        raise PoolExhausted(
            f"pool {self.name!r}: no connection free within {waited:.3f} s "
            f"(max_size={core.max_size})"
        )

    async def _create_for_checkout(self, deadline: float, timeout: float) -> int:
        core = self._core
        created = False
        connection: T | None = None
        try:
            with trio.move_on_at(deadline):
                connection = await self._factory()
                created = True
        except BaseException:
            core.creation_failed()
            self._flush()
            raise
        if not created:
            core.creation_failed()
            core.record_timeout()
            self._flush()
            raise PoolExhausted(
                f"pool {self.name!r}: creating a connection took longer than {timeout} s"
            )
        grant = core.created(trio.current_time(), checkout=True)
        self._connections[grant.connection] = cast(T, connection)
        if grant.kind is GrantKind.CLOSED:
            await self._settle()
            raise PoolClosed(f"pool {self.name!r} closed while a connection was being created")
        return grant.connection

    # -- returning ------------------------------------------------------------------------

    async def _release(self, connection: int, *, failed: bool) -> None:
        reusable = True
        if failed:
            reusable = await self._validate(connection)
        self._core.checkin(connection, trio.current_time(), reusable=reusable)
        if self._core.has_effects():
            await self._settle()
        self._poke_housekeeper()

    async def _validate(self, connection: int) -> bool:
        """Whether a connection whose user raised may be reused (shielded, bounded)."""
        check = self._health_check
        if check is None or self._core.closed:
            return False
        ok = False
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self._check_timeout):
            try:
                ok = bool(await check(self._connections[connection]))
            except Exception:
                logger.warning(
                    "pool %s: health check of a returned connection raised",
                    self.name,
                    exc_info=True,
                )
                ok = False
        return ok

    # -- effects ----------------------------------------------------------------------------

    def _flush(self) -> list[int]:
        """Wake served waiters; hand closes to the pool's nursery.

        Returns the ids that could not be handed over (the pool's nursery is gone):
        the caller must close them itself.
        """
        to_close, to_wake = self._core.take_effects()
        for waiter in to_wake:
            cast(_AsyncWaiter, waiter).event.set()
        if not to_close:
            return to_close
        nursery = self._nursery
        if nursery is None:
            return to_close
        for index, connection in enumerate(to_close):
            try:
                nursery.start_soon(self._close_one, connection)
            except RuntimeError:  # the nursery closed to new tasks just now
                return to_close[index:]
        return []

    async def _settle(self) -> None:
        """Carry out pending effects, closing inline (shielded) what the nursery cannot."""
        leftover = self._flush()
        if leftover:
            with trio.CancelScope(shield=True):
                await self._close_many(leftover)

    async def _close_many(self, connections: list[int]) -> None:
        if len(connections) == 1:
            await self._close_one(connections[0])
            return
        async with trio.open_nursery() as nursery:
            for connection in connections:
                nursery.start_soon(self._close_one, connection)

    async def _close_one(self, connection: int) -> None:
        """Close one connection, shielded from cancellation but bounded in time.

        Its slot is freed (and may go to a waiter) only once this is done.
        """
        resource = self._connections.pop(connection)
        try:
            if self._close is not None:
                await self._close_resource(resource)
        finally:
            self._core.close_done()
            self._flush()
            self._poke_housekeeper()

    async def _close_resource(self, resource: T) -> None:
        assert self._close is not None
        with trio.CancelScope(
            shield=True, deadline=trio.current_time() + self._close_timeout
        ) as scope:
            try:
                await self._close(resource)
            except Exception:
                logger.warning("pool %s: closing a connection raised", self.name, exc_info=True)
        if scope.cancelled_caught:
            logger.warning(
                "pool %s: closing a connection took longer than %s s; abandoned",
                self.name,
                self._close_timeout,
            )

    # -- background work ------------------------------------------------------------------

    def _poke_housekeeper(self) -> None:
        core = self._core
        if core.warm_deficit() > 0 or core.next_deadline() < self._housekeeper_target:
            self._housekeeper_wakeup.set()

    async def _housekeep(self) -> None:
        """Close idle and expired connections on time; keep ``min_size`` warm."""
        # Warming tasks live in here so that stopping the housekeeper cancels them too.
        with self._housekeeper_scope:
            async with trio.open_nursery() as warmers:
                await self._housekeeping_loop(warmers)

    async def _housekeeping_loop(self, warmers: trio.Nursery) -> None:
        core = self._core
        while True:
            now = trio.current_time()
            core.reap(now)
            self._flush()
            if now >= self._warm_not_before:
                for _ in range(core.reserve_warm()):
                    warmers.start_soon(self._create_idle, None)
            target = core.next_deadline()
            if core.warm_deficit() > 0:
                target = min(target, self._warm_not_before)
            self._housekeeper_target = target
            self._housekeeper_wakeup = trio.Event()
            with trio.move_on_at(target):
                await self._housekeeper_wakeup.wait()

    async def _create_idle(self, errors: list[Exception] | None) -> None:
        """Create one connection for a reserved warm slot.

        With ``errors`` (opening the pool) a factory error is collected; without it
        (background re-warming) it is logged and warming backs off.
        """
        core = self._core
        try:
            resource = await self._factory()
        except BaseException as exc:
            core.creation_failed()
            self._flush()
            if not isinstance(exc, Exception):
                raise
            if errors is not None:
                errors.append(exc)
                return
            self._warm_failures += 1
            delay = min(WARM_RETRY_MAX, WARM_RETRY_BASE * 2 ** (self._warm_failures - 1))
            self._warm_not_before = trio.current_time() + delay
            logger.warning(
                "pool %s: creating a connection to keep %d warm failed; retrying in %.3g s",
                self.name,
                core.min_size,
                delay,
                exc_info=True,
            )
            self._housekeeper_wakeup.set()
            return
        self._warm_failures = 0
        grant = core.created(trio.current_time(), checkout=False)
        self._connections[grant.connection] = resource
        self._flush()
        self._poke_housekeeper()

    async def _warm_up(self) -> None:
        """Create ``min_size`` connections concurrently; raise the first factory error."""
        count = self._core.reserve_warm()
        errors: list[Exception] = []
        if count:
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(self._create_idle, errors)
        else:
            await trio.lowlevel.checkpoint()
        if errors:
            for extra in errors[1:]:
                logger.warning(
                    "pool %s: another connection failed while warming: %r", self.name, extra
                )
            raise errors[0]

    def _shutdown(self) -> None:
        self._housekeeper_scope.cancel()
        self._core.close()
        self._flush()


class Lease(Generic[T]):
    """The async context manager returned by :meth:`ConnectionPool.acquire`.

    Entering waits for a connection and returns it; leaving returns it to the pool
    (checked or closed when the body raised).
    """

    __slots__ = ("_connection", "_pool", "_timeout")

    def __init__(self, pool: ConnectionPool[T], timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._connection = -1

    async def __aenter__(self) -> T:
        if self._connection != -1:
            raise RuntimeError("this lease is already in use; call pool.acquire() again")
        self._connection, resource = await self._pool._checkout(self._timeout)
        return resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, -1
        await self._pool._release(connection, failed=exc_type is not None)


def _pick(value: T | _Unset, default: T) -> T:
    return default if isinstance(value, _Unset) else value


@asynccontextmanager
async def open_pool(
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
    name: str = "pool",
    events: EventBus | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
) -> AsyncIterator[ConnectionPool[T]]:
    """Open a :class:`ConnectionPool`; it closes every connection when the block ends.

    ``min_size`` connections are created (concurrently) before the body runs; a
    factory error then propagates from here. Sizes and times default to ``settings``
    (default :class:`~mister_smith.config.PoolSettings`: 5 to 50 connections, 10 s
    acquire timeout, 300 s idle, no lifetime limit); each keyword overrides its field.

    Args:
        factory: ``async def () -> T`` making one connection.
        close: ``async def (conn)`` closing one (default: just drop it).
        health_check: ``async def (conn) -> bool``: run on a connection whose user
            raised; ``False`` or an exception discards it. Without one, such a
            connection is always discarded.
        settings: Pool settings from configuration.
        min_size: Connections kept open even when idle.
        max_size: Most connections open or being created at once.
        acquire_timeout: Seconds :meth:`ConnectionPool.acquire` waits (``None``: for
            ever).
        max_idle: Seconds a connection may stay idle while more than ``min_size`` are
            open (``math.inf``: for ever).
        max_lifetime: Seconds after its creation at which a connection is closed
            instead of reused (``None``: no limit).
        name: Shown in statistics, events, metrics and logs.
        events: Bus on which :class:`~mister_smith.events.ResourcePoolExhausted` is
            announced.
        close_timeout: Seconds ``close`` may take before the connection is abandoned.
        check_timeout: Seconds ``health_check`` may take before it counts as failed.
    """
    base = PoolSettings() if settings is None else settings
    pool = ConnectionPool(
        factory,
        close=close,
        health_check=health_check,
        min_size=_pick(min_size, base.min_size),
        max_size=_pick(max_size, base.max_size),
        acquire_timeout=_pick(acquire_timeout, base.acquire_timeout),
        max_idle=_pick(max_idle, base.max_idle),
        max_lifetime=_pick(max_lifetime, base.max_lifetime),
        name=name,
        events=events,
        close_timeout=close_timeout,
        check_timeout=check_timeout,
    )
    try:
        async with open_owned_nursery() as nursery:
            pool._nursery = nursery
            try:
                await pool._warm_up()
                nursery.start_soon(pool._housekeep, name=f"{name}:housekeeping")
                yield pool
            finally:
                pool._shutdown()
    finally:
        pool._nursery = None
