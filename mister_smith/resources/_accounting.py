"""Pool accounting without I/O: which connection is where, what to create, close or hand over.

:class:`PoolCore` is the synchronous, clock-free heart of
:class:`~mister_smith.resources.ConnectionPool`. It never awaits and never reads a
clock: times are passed in. Connections are known only by integer ids; the async layer
maps ids to the real objects. Side effects the async layer must carry out are left in
two outboxes, drained with :meth:`PoolCore.take_effects`: ids of connections to close,
and waiters to wake (each with its :class:`Grant` already set). A connection being
closed keeps its slot until the async layer reports :meth:`PoolCore.close_done`, so the
backend never sees more than ``max_size`` connections, even while closes are slow.

Invariants (checked by the stateful property test):

* ``idle + in_use + creating + closing <= max_size`` at all times;
* a connection id is in at most one place (idle, in use, or being closed);
* while anyone waits, nothing is idle and every slot is taken (a freed slot or
  returned connection goes straight to the longest waiter: no barging);
* once closed, nothing is handed out and everything is closed as soon as it is free.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import math

import attrs


class GrantKind(enum.Enum):
    """What an acquirer was given."""

    REUSE = "reuse"
    """An open connection, now in use by the acquirer."""
    CREATE = "create"
    """A reserved slot: the acquirer creates the connection itself."""
    CLOSED = "closed"
    """Nothing: the pool closed."""


@attrs.frozen
class Grant:
    """The outcome of a checkout: a connection id, a slot to create one in, or closed."""

    kind: GrantKind
    connection: int = -1


_CREATE = Grant(GrantKind.CREATE)
_CLOSED = Grant(GrantKind.CLOSED)


@attrs.define(eq=False)
class Waiter:
    """An acquirer queued for a connection or slot; :attr:`grant` is set when served."""

    grant: Grant | None = None


@attrs.define(eq=False)
class _Record:
    connection: int
    created_at: float
    idle_since: float


@attrs.frozen
class PoolStatistics:
    """A snapshot of a pool's state and counters.

    Attributes:
        name: The pool's name (``""`` for a bare :class:`PoolCore`).
        size: Open connections (idle + in use).
        idle: Open connections not in use.
        in_use: Connections handed out and not yet returned.
        creating: Connections being created (their slots are reserved).
        closing: Connections being closed (they keep their slots until closed).
        waiting: Acquirers queued because every slot was taken.
        max_size: Most connections open or being created at once.
        created: Connections created since the pool opened.
        closed: Connections whose closing finished (expired, idle too long,
            discarded, pool closed).
        acquired: Successful acquisitions.
        timeouts: Acquisitions that gave up after the acquire timeout.
        discarded: Connections dropped because their user failed and they did not
            pass (or had no) health check.
        expired: Connections closed for passing ``max_lifetime``.
        idle_closed: Connections closed for staying idle longer than ``max_idle``.
        creation_failures: Times the factory raised or was cancelled.
        is_closed: Whether the pool has closed.
    """

    name: str
    size: int
    idle: int
    in_use: int
    creating: int
    closing: int
    waiting: int
    max_size: int
    created: int
    closed: int
    acquired: int
    timeouts: int
    discarded: int
    expired: int
    idle_closed: int
    creation_failures: int
    is_closed: bool


def _check_sizes(min_size: int, max_size: int) -> None:
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size!r}")
    if not 0 <= min_size <= max_size:
        raise ValueError(f"min_size must be in [0, max_size={max_size}], got {min_size!r}")


class PoolCore:
    """The bookkeeping of a bounded pool of connections, with time passed in.

    Args:
        max_size: Most connections open or being created at once. >= 1.
        min_size: Connections kept open even when idle (see :meth:`reserve_warm`).
        max_idle: Seconds a connection may stay idle while the pool holds more than
            ``min_size``; ``math.inf`` keeps idle connections.
        max_lifetime: Seconds after its creation at which a connection is closed
            instead of being reused; ``None`` for no limit.
    """

    def __init__(
        self,
        max_size: int,
        *,
        min_size: int = 0,
        max_idle: float = math.inf,
        max_lifetime: float | None = None,
    ) -> None:
        _check_sizes(min_size, max_size)
        if not max_idle > 0:
            raise ValueError(f"max_idle must be > 0, got {max_idle!r}")
        if max_lifetime is not None and not max_lifetime > 0:
            raise ValueError(f"max_lifetime must be None or > 0, got {max_lifetime!r}")
        self.max_size = max_size
        self.min_size = min_size
        self.max_idle = max_idle
        self.max_lifetime = max_lifetime
        # Idle connections, least recently returned first: idle_since never decreases
        # along the list, so the first one is always the next to time out.
        self._idle: list[_Record] = []
        self._in_use: dict[int, _Record] = {}
        self._creating = 0
        self._closing = 0
        self._waiters: collections.deque[Waiter] = collections.deque()
        self._closed = False
        self._next_id = 0
        self._to_close: list[int] = []
        self._to_wake: list[Waiter] = []
        self._created = 0
        self._closed_count = 0
        self._acquired = 0
        self._timeouts = 0
        self._discarded = 0
        self._expired = 0
        self._idle_closed = 0
        self._creation_failures = 0

    # -- queries ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def total(self) -> int:
        """Slots taken: idle + in use + being created + being closed (<= ``max_size``)."""
        return len(self._idle) + len(self._in_use) + self._creating + self._closing

    @property
    def live(self) -> int:
        """Connections open or being created, not being closed (what ``min_size`` counts)."""
        return len(self._idle) + len(self._in_use) + self._creating

    def is_in_use(self, connection: int) -> bool:
        """Whether ``connection`` is currently checked out."""
        return connection in self._in_use

    def idle_connections(self) -> list[int]:
        """Ids of the idle connections, least recently returned first."""
        return [record.connection for record in self._idle]

    def in_use_connections(self) -> list[int]:
        """Ids of the connections checked out."""
        return list(self._in_use)

    def waiters(self) -> int:
        """How many acquirers are queued."""
        return len(self._waiters)

    def warm_deficit(self) -> int:
        """Connections to create now towards ``min_size`` (0 once closed).

        Bounded by the free slots: while connections are still closing, fewer.
        """
        if self._closed:
            return 0
        return max(0, min(self.min_size - self.live, self.max_size - self.total))

    def next_deadline(self) -> float:
        """The earliest time at which :meth:`reap` would close something (``inf``: never).

        Only idle connections time out here; one in use past its lifetime is closed when
        it is returned.
        """
        deadline = math.inf
        if self._idle and self.live > self.min_size:
            deadline = self._idle[0].idle_since + self.max_idle
        if self.max_lifetime is not None:
            for record in self._idle:
                deadline = min(deadline, record.created_at + self.max_lifetime)
        return deadline

    def statistics(self, name: str = "") -> PoolStatistics:
        """A frozen snapshot of the state and counters."""
        return PoolStatistics(
            name=name,
            size=len(self._idle) + len(self._in_use),
            idle=len(self._idle),
            in_use=len(self._in_use),
            creating=self._creating,
            closing=self._closing,
            waiting=len(self._waiters),
            max_size=self.max_size,
            created=self._created,
            closed=self._closed_count,
            acquired=self._acquired,
            timeouts=self._timeouts,
            discarded=self._discarded,
            expired=self._expired,
            idle_closed=self._idle_closed,
            creation_failures=self._creation_failures,
            is_closed=self._closed,
        )

    # -- effects ----------------------------------------------------------------------

    def take_effects(self) -> tuple[list[int], list[Waiter]]:
        """Return and clear the outboxes: ids to close, and waiters to wake."""
        to_close, to_wake = self._to_close, self._to_wake
        if to_close:
            self._to_close = []
        if to_wake:
            self._to_wake = []
        return to_close, to_wake

    def has_effects(self) -> bool:
        """Whether :meth:`take_effects` has anything to return."""
        return bool(self._to_close or self._to_wake)

    # -- acquiring --------------------------------------------------------------------

    def checkout(self, now: float) -> Grant | None:
        """Try to acquire without waiting.

        Returns a ``REUSE`` grant (most recently returned idle connection first, skipping
        and closing any past their lifetime), a ``CREATE`` grant (a reserved slot), a
        ``CLOSED`` grant, or ``None`` when the caller must :meth:`enqueue` and wait.
        """
        if self._closed:
            return _CLOSED
        if self._waiters:
            return None
        while self._idle:
            record = self._idle.pop()
            if self._is_expired(record, now):
                self._expired += 1
                self._close(record.connection)
                continue
            self._in_use[record.connection] = record
            return Grant(GrantKind.REUSE, record.connection)
        if self.total < self.max_size:
            self._creating += 1
            return _CREATE
        return None

    def enqueue(self, waiter: Waiter) -> None:
        """Queue ``waiter`` (after :meth:`checkout` returned ``None``)."""
        if self._closed:
            waiter.grant = _CLOSED
            self._to_wake.append(waiter)
            return
        self._waiters.append(waiter)

    def cancel_wait(self, waiter: Waiter, now: float) -> None:
        """The waiter gave up (timeout or cancellation): dequeue it or pass its grant on.

        A grant it had already been given but not used goes to the next waiter (or back
        to idle), so no slot or connection leaks.
        """
        grant = waiter.grant
        waiter.grant = None
        if grant is None:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        else:
            self._revoke(grant, now)

    def claim(self, waiter: Waiter, now: float) -> Grant:
        """A served waiter runs again: take its grant.

        If the pool closed after it was served, the grant is revoked (its connection is
        closed, its slot freed) and ``CLOSED`` is returned instead.

        Raises:
            RuntimeError: the waiter was not served.
        """
        grant = waiter.grant
        if grant is None:
            raise RuntimeError("claim() by a waiter that was not served")
        waiter.grant = None
        if self._closed and grant.kind is not GrantKind.CLOSED:
            self._revoke(grant, now)
            return _CLOSED
        return grant

    def _revoke(self, grant: Grant, now: float) -> None:
        if grant.kind is GrantKind.REUSE:
            self.checkin(grant.connection, now, reusable=True)
        elif grant.kind is GrantKind.CREATE:
            self._creating -= 1
            self._dispatch()

    def record_acquired(self) -> None:
        """Count one successful acquisition (the caller now holds a connection)."""
        self._acquired += 1

    def record_timeout(self) -> None:
        """Count one acquisition that timed out."""
        self._timeouts += 1

    # -- creating ---------------------------------------------------------------------

    def reserve_warm(self) -> int:
        """Reserve slots for the connections missing to reach ``min_size``; return how many.

        Create each and report it with ``created(now, checkout=False)`` or
        :meth:`creation_failed`.
        """
        count = self.warm_deficit()
        self._creating += count
        return count

    def created(self, now: float, *, checkout: bool) -> Grant:
        """A reserved slot's connection now exists; return its fate as a grant.

        With ``checkout=True`` (the creator acquires it) the grant is ``REUSE`` with the
        new id, now in use. With ``checkout=False`` (warming) it goes to the longest
        waiter or to idle, and the grant is ``REUSE`` with the id too. When the pool has
        closed meanwhile the grant is ``CLOSED`` and the new id is already queued for
        closing, with :attr:`Grant.connection` set so the caller can find it.
        """
        if self._creating < 1:
            raise RuntimeError("created() without a reserved slot")
        self._creating -= 1
        self._created += 1
        connection = self._next_id
        self._next_id += 1
        record = _Record(connection, now, now)
        if self._closed:
            self._close(connection)
            return Grant(GrantKind.CLOSED, connection)
        if checkout:
            self._in_use[connection] = record
        else:
            self._offer(record, now)
        return Grant(GrantKind.REUSE, connection)

    def creation_failed(self) -> None:
        """A reserved slot's creation raised or was cancelled: free the slot."""
        if self._creating < 1:
            raise RuntimeError("creation_failed() without a reserved slot")
        self._creating -= 1
        self._creation_failures += 1
        self._dispatch()

    def close_done(self) -> None:
        """A connection taken from the close outbox is now closed: free its slot."""
        if self._closing < 1:
            raise RuntimeError("close_done() without a connection being closed")
        self._closing -= 1
        self._closed_count += 1
        self._dispatch()

    # -- returning --------------------------------------------------------------------

    def checkin(self, connection: int, now: float, *, reusable: bool) -> None:
        """A connection comes back.

        It is closed if the pool closed, if it is not ``reusable`` (its user failed and
        it did not pass its health check: counted as discarded) or if it passed its
        lifetime; otherwise it goes to the longest waiter or to idle.

        Raises:
            KeyError: ``connection`` is not checked out.
        """
        record = self._in_use.pop(connection)
        # A connection closed here keeps its slot until close_done(), which passes it on.
        if self._closed:
            self._close(connection)
        elif not reusable:
            self._discarded += 1
            self._close(connection)
        elif self._is_expired(record, now):
            self._expired += 1
            self._close(connection)
        else:
            self._offer(record, now)

    # -- housekeeping -----------------------------------------------------------------

    def reap(self, now: float) -> None:
        """Close idle connections past their lifetime, then those idle longer than
        ``max_idle`` while the pool holds more than ``min_size`` (longest idle first)."""
        if self.max_lifetime is not None:
            keep: list[_Record] = []
            for record in self._idle:
                if self._is_expired(record, now):
                    self._expired += 1
                    self._close(record.connection)
                else:
                    keep.append(record)
            self._idle = keep
        while (
            self._idle
            and self.live > self.min_size
            and self._idle[0].idle_since + self.max_idle <= now
        ):
            record = self._idle.pop(0)
            self._idle_closed += 1
            self._close(record.connection)

    def close(self) -> None:
        """Close the pool: idle connections are closed now, in-use ones when returned,
        and every waiter is woken with a ``CLOSED`` grant. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for record in self._idle:
            self._close(record.connection)
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.grant = _CLOSED
            self._to_wake.append(waiter)

    # -- internals --------------------------------------------------------------------

    def _is_expired(self, record: _Record, now: float) -> bool:
        return self.max_lifetime is not None and now >= record.created_at + self.max_lifetime

    def _close(self, connection: int) -> None:
        self._closing += 1
        self._to_close.append(connection)

    def _offer(self, record: _Record, now: float) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()
            self._in_use[record.connection] = record
            waiter.grant = Grant(GrantKind.REUSE, record.connection)
            self._to_wake.append(waiter)
        else:
            record.idle_since = now
            self._idle.append(record)

    def _dispatch(self) -> None:
        """Give freed slots to waiters as ``CREATE`` grants."""
        while self._waiters and not self._closed and self.total < self.max_size:
            waiter = self._waiters.popleft()
            self._creating += 1
            waiter.grant = _CREATE
            self._to_wake.append(waiter)
