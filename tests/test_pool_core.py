"""Stateful property test of the pool's pure bookkeeping (``PoolCore``).

A model plays every party around the core — users holding connections, creators with
reserved slots, queued waiters, the clock — and after every step checks that the count
never exceeds ``max_size``, that no connection is handed out twice, leaked, or closed
twice, and that nobody waits while something is free.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mister_smith.resources import GrantKind, PoolCore, Waiter


class PoolCoreMachine(RuleBasedStateMachine):
    """Drives a :class:`PoolCore` through random acquire/release/fail/expire/close steps."""

    def __init__(self) -> None:
        super().__init__()
        self.core = PoolCore(1)
        self.now = 0.0
        self.held: list[int] = []  # connection ids users hold (a list to see duplicates)
        self.open: set[int] = set()  # created and not yet closed
        self.closing: list[int] = []  # taken from the close outbox, not yet closed
        self.closed_ids: set[int] = set()
        self.waiters: list[Waiter] = []  # queued in the core
        self.woken: list[Waiter] = []  # served (grant set) but not yet running again
        self.creators = 0  # CREATE grants outstanding (acquirers creating)
        self.warmers = 0  # warm slots reserved and not yet created

    @initialize(
        max_size=st.integers(1, 5),
        min_fraction=st.floats(0, 1),
        max_idle=st.sampled_from([1.0, 5.0, math.inf]),
        max_lifetime=st.sampled_from([None, 3.0, 10.0]),
    )
    def setup(
        self, max_size: int, min_fraction: float, max_idle: float, max_lifetime: float | None
    ) -> None:
        min_size = int(min_fraction * max_size)
        self.core = PoolCore(
            max_size, min_size=min_size, max_idle=max_idle, max_lifetime=max_lifetime
        )

    # -- effects ------------------------------------------------------------------------

    def settle(self) -> None:
        to_close, to_wake = self.core.take_effects()
        for connection in to_close:
            assert connection in self.open, f"closing unknown or closed {connection}"
            assert connection not in self.held, f"closing {connection} while held"
            assert connection not in self.closing, f"closing {connection} twice"
            self.closing.append(connection)
        for waiter in to_wake:
            assert waiter in self.waiters, "woke a waiter twice or one never queued"
            assert waiter.grant is not None
            self.waiters.remove(waiter)
            self.woken.append(waiter)

    def take(self, connection: int) -> None:
        assert connection not in self.held, f"{connection} handed out twice"
        assert connection in self.open
        assert self.core.is_in_use(connection)
        self.held.append(connection)

    def granted(self, kind: GrantKind) -> list[int]:
        return [
            waiter.grant.connection
            for waiter in self.woken
            if waiter.grant is not None and waiter.grant.kind is kind
        ]

    # -- rules --------------------------------------------------------------------------

    @precondition(lambda self: self.woken)
    @rule(data=st.data())
    def wake(self, data: st.DataObject) -> None:
        """A served waiter runs again and takes what it was given."""
        waiter = data.draw(st.sampled_from(self.woken))
        self.woken.remove(waiter)
        closed = self.core.closed
        grant = self.core.claim(waiter, self.now)
        self.settle()
        if closed:
            assert grant.kind is GrantKind.CLOSED
        if grant.kind is GrantKind.REUSE:
            self.take(grant.connection)
        elif grant.kind is GrantKind.CREATE:
            self.creators += 1
        else:
            assert self.core.closed

    @precondition(lambda self: self.closing)
    @rule(data=st.data())
    def finish_closing(self, data: st.DataObject) -> None:
        connection = data.draw(st.sampled_from(self.closing))
        self.closing.remove(connection)
        self.open.discard(connection)
        self.closed_ids.add(connection)
        self.core.close_done()
        self.settle()

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def acquire(self) -> None:
        grant = self.core.checkout(self.now)
        if grant is None:
            waiter = Waiter()
            self.core.enqueue(waiter)
            self.waiters.append(waiter)
        elif grant.kind is GrantKind.REUSE:
            self.settle()  # expired idle connections skipped on the way are closed
            self.take(grant.connection)
        elif grant.kind is GrantKind.CREATE:
            self.creators += 1
        else:
            assert self.core.closed
        self.settle()

    @precondition(lambda self: self.creators > 0)
    @rule(ok=st.booleans())
    def finish_creating(self, ok: bool) -> None:
        self.creators -= 1
        if not ok:
            self.core.creation_failed()
        else:
            grant = self.core.created(self.now, checkout=True)
            self.open.add(grant.connection)
            if grant.kind is GrantKind.REUSE:
                self.take(grant.connection)
            else:
                assert grant.kind is GrantKind.CLOSED
                assert self.core.closed
        self.settle()

    @rule()
    def warm(self) -> None:
        self.warmers += self.core.reserve_warm()
        assert self.core.warm_deficit() == 0

    @precondition(lambda self: self.warmers > 0)
    @rule(ok=st.booleans())
    def finish_warming(self, ok: bool) -> None:
        self.warmers -= 1
        if not ok:
            self.core.creation_failed()
        else:
            grant = self.core.created(self.now, checkout=False)
            self.open.add(grant.connection)
            assert not self.core.is_in_use(grant.connection) or any(
                waiter.grant is not None
                and waiter.grant.kind is GrantKind.REUSE
                and waiter.grant.connection == grant.connection
                for waiter in self.waiters
            )
        self.settle()

    @precondition(lambda self: not self.core.closed and not self.waiters)
    @rule(count=st.integers(1, 3))
    def borrow_and_return(self, count: int) -> None:
        """Users each take a connection and give it back at once: idle ones pile up (the
        other rules reach idle connections only rarely)."""
        taken = []
        for _ in range(count):
            grant = self.core.checkout(self.now)
            self.settle()  # expired idle connections skipped on the way are closed
            if grant is None:
                break
            if grant.kind is GrantKind.CREATE:
                grant = self.core.created(self.now, checkout=True)
                self.open.add(grant.connection)
            self.take(grant.connection)
            taken.append(grant.connection)
        for connection in taken:
            self.held.remove(connection)
            self.core.checkin(connection, self.now, reusable=True)
            self.settle()

    @precondition(lambda self: self.held)
    @rule(data=st.data(), reusable=st.booleans())
    def release(self, data: st.DataObject, reusable: bool) -> None:
        connection = data.draw(st.sampled_from(self.held))
        self.held.remove(connection)
        self.core.checkin(connection, self.now, reusable=reusable)
        self.settle()

    @precondition(lambda self: self.waiters or self.woken)
    @rule(data=st.data())
    def give_up_waiting(self, data: st.DataObject) -> None:
        """A waiter times out or is cancelled, perhaps just after being served."""
        waiter = data.draw(st.sampled_from(self.waiters + self.woken))
        if waiter in self.waiters:
            self.waiters.remove(waiter)
        else:
            self.woken.remove(waiter)
        self.core.cancel_wait(waiter, self.now)
        self.settle()

    @rule()
    def reap(self) -> None:
        deadline = self.core.next_deadline()
        closing_before = len(self.closing)
        self.core.reap(self.now)
        self.settle()
        if deadline <= self.now:
            assert len(self.closing) > closing_before, "a due deadline closed nothing"
        else:
            assert len(self.closing) == closing_before, "closed before the deadline"

    @precondition(lambda self: not self.core.closed)  # closing again is a no-op: spend
    @rule()  # the steps on what happens after
    def close(self) -> None:
        self.core.close()
        self.settle()

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def bounded(self) -> None:
        assert self.core.total <= self.core.max_size
        stats = self.core.statistics()
        assert stats.size + stats.creating + stats.closing <= stats.max_size

    @invariant()
    def statistics_agree(self) -> None:
        stats = self.core.statistics()
        idle, in_use = self.core.idle_connections(), self.core.in_use_connections()
        assert (stats.idle, stats.in_use) == (len(idle), len(in_use))
        assert stats.size == len(idle) + len(in_use)
        assert (stats.waiting, stats.is_closed, stats.name) == (
            self.core.waiters(),
            self.core.closed,
            "",
        )

    @invariant()
    def nothing_handed_out_twice_or_leaked(self) -> None:
        assert len(self.held) == len(set(self.held))
        idle = set(self.core.idle_connections())
        in_use = set(self.core.in_use_connections())
        given = self.granted(GrantKind.REUSE)
        assert not idle & in_use
        assert not set(given) & set(self.held)
        assert in_use == set(self.held) | set(given)
        assert not (idle | in_use) & set(self.closing)
        assert idle | in_use | set(self.closing) == self.open, "a connection leaked"
        assert not self.open & self.closed_ids

    @invariant()
    def slots_accounted(self) -> None:
        stats = self.core.statistics()
        slots_given = len(self.granted(GrantKind.CREATE))
        assert stats.creating == self.creators + self.warmers + slots_given
        assert stats.waiting == len(self.waiters)
        assert stats.created == len(self.open) + len(self.closed_ids)
        assert stats.closed == len(self.closed_ids)
        assert stats.closing == len(self.closing)

    @invariant()
    def no_waiting_while_something_is_free(self) -> None:
        """Also why closing a connection (checkin, reap) needs no dispatch: its slot
        stays taken until ``close_done``, so with waiters every slot is still taken."""
        if self.waiters:
            assert not self.core.idle_connections()
            assert self.core.total == self.core.max_size
            assert not self.core.closed

    @invariant()
    def closed_pool_holds_nothing_idle(self) -> None:
        if self.core.closed:
            assert not self.core.idle_connections()
            assert not self.waiters


TestPoolCore = PoolCoreMachine.TestCase
# Bugs here need a few specific steps in a row: more examples than the default profile.
TestPoolCore.settings = settings(
    max_examples=max(200, settings().max_examples), stateful_step_count=30, deadline=None
)


def test_checkout_prefers_most_recently_returned() -> None:
    core = PoolCore(3)
    ids = []
    for _ in range(3):
        grant = core.checkout(0.0)
        assert grant is not None
        assert grant.kind is GrantKind.CREATE
        ids.append(core.created(0.0, checkout=True).connection)
    for connection in ids:
        core.checkin(connection, 1.0, reusable=True)
    grant = core.checkout(2.0)
    assert grant is not None
    assert grant.connection == ids[-1]


def test_idle_timeout_spares_min_size() -> None:
    core = PoolCore(4, min_size=1, max_idle=10.0)
    ids = []
    for _ in range(3):
        assert core.checkout(0.0) is not None
        ids.append(core.created(0.0, checkout=True).connection)
    for connection in ids:
        core.checkin(connection, 0.0, reusable=True)
    assert core.next_deadline() == 10.0
    core.reap(9.9)
    assert core.take_effects() == ([], [])
    core.reap(10.0)
    to_close, _ = core.take_effects()
    assert to_close == ids[:2]  # the longest idle first, keeping min_size open
    assert core.next_deadline() == math.inf
    assert core.statistics().idle_closed == 2


def test_expired_connection_is_closed_on_return_and_on_checkout() -> None:
    core = PoolCore(2, max_lifetime=5.0)
    assert core.checkout(0.0) is not None
    first = core.created(0.0, checkout=True).connection
    core.checkin(first, 6.0, reusable=True)
    assert core.take_effects() == ([first], [])
    core.close_done()
    assert core.checkout(6.0) is not None
    second = core.created(6.0, checkout=True).connection
    core.checkin(second, 7.0, reusable=True)
    grant = core.checkout(11.0)  # second expired while idle: skipped, a new slot given
    assert grant is not None
    assert grant.kind is GrantKind.CREATE
    assert core.take_effects() == ([second], [])
    stats = core.statistics()
    assert (stats.expired, stats.closing, stats.closed) == (2, 1, 1)


def test_waiters_are_served_first_come_first_served() -> None:
    core = PoolCore(1)
    assert core.checkout(0.0) is not None
    held = core.created(0.0, checkout=True).connection
    first, second = Waiter(), Waiter()
    for waiter in (first, second):
        assert core.checkout(0.0) is None
        core.enqueue(waiter)
    core.checkin(held, 1.0, reusable=True)
    _, woken = core.take_effects()
    assert woken == [first]
    assert first.grant is not None
    assert first.grant.connection == held
    # A discarded connection frees its slot once closed: the next waiter may create one.
    core.checkin(held, 2.0, reusable=False)
    to_close, woken = core.take_effects()
    assert to_close == [held]
    assert woken == []
    core.close_done()
    _, woken = core.take_effects()
    assert woken == [second]
    assert second.grant is not None
    assert second.grant.kind is GrantKind.CREATE


def test_cancelled_waiter_passes_its_grant_on() -> None:
    core = PoolCore(1)
    assert core.checkout(0.0) is not None
    held = core.created(0.0, checkout=True).connection
    first, second = Waiter(), Waiter()
    core.enqueue(first)
    core.enqueue(second)
    core.checkin(held, 1.0, reusable=True)
    core.take_effects()
    core.cancel_wait(first, 1.0)  # woke with the connection but was cancelled
    _, woken = core.take_effects()
    assert woken == [second]
    assert second.grant is not None
    assert second.grant.connection == held


def test_close_wakes_waiters_and_closes_returns() -> None:
    core = PoolCore(1)
    assert core.checkout(0.0) is not None
    held = core.created(0.0, checkout=True).connection
    waiter = Waiter()
    core.enqueue(waiter)
    core.close()
    _, woken = core.take_effects()
    assert woken == [waiter]
    assert waiter.grant is not None
    assert waiter.grant.kind is GrantKind.CLOSED
    checkout = core.checkout(0.0)
    assert checkout is not None
    assert checkout.kind is GrantKind.CLOSED
    core.checkin(held, 1.0, reusable=True)
    assert core.take_effects() == ([held], [])
    core.close_done()
    stats = core.statistics()
    assert (stats.size, stats.closing, stats.closed) == (0, 0, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_size": 0}, "max_size"),
        ({"max_size": 2, "min_size": 3}, "min_size"),
        ({"max_size": 2, "max_idle": 0.0}, "max_idle"),
        ({"max_size": 2, "max_lifetime": 0.0}, "max_lifetime"),
    ],
)
def test_invalid_sizes(kwargs: dict[str, float], message: str) -> None:
    options = dict(kwargs)  # a copy: the parameters stay intact for a second run
    max_size = int(options.pop("max_size"))
    with pytest.raises(ValueError, match=message):
        PoolCore(max_size, **options)  # type: ignore[arg-type]


def test_misuse_is_refused() -> None:
    core = PoolCore(1)
    with pytest.raises(RuntimeError):
        core.created(0.0, checkout=True)
    with pytest.raises(RuntimeError):
        core.creation_failed()
    with pytest.raises(RuntimeError):
        core.close_done()
    with pytest.raises(RuntimeError):
        core.claim(Waiter(), 0.0)
    with pytest.raises(KeyError):
        core.checkin(42, 0.0, reusable=True)
