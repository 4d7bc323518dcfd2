"""``PoolCore`` examples that pin what the state machine in ``test_pool_core.py`` leaves
loose: exact counters and statistics, deadlines with several idle connections, slots
still held by closing connections, and error messages.

Each test names the mutation of ``resources/_accounting.py`` it kills (``nox -s
mutants`` found them surviving).
"""

from __future__ import annotations

import math

import pytest

from mister_smith.resources import Grant, GrantKind, PoolCore, PoolStatistics, Waiter


def create(core: PoolCore, now: float) -> int:
    """Check out a new slot and create its connection at ``now``; return its id."""
    grant = core.checkout(now)
    assert grant == Grant(GrantKind.CREATE)
    return core.created(now, checkout=True).connection


def grant_of(waiter: Waiter) -> Grant | None:
    """The waiter's grant, read anew (not narrowed by an earlier assertion)."""
    return waiter.grant


def test_defaults_keep_nothing_warm_and_never_time_out() -> None:
    core = PoolCore(3)
    assert (core.min_size, core.max_idle, core.max_lifetime) == (0, math.inf, None)
    assert core.warm_deficit() == 0
    assert core.closed is False
    assert core.statistics() == PoolStatistics(
        name="",
        size=0,
        idle=0,
        in_use=0,
        creating=0,
        closing=0,
        waiting=0,
        max_size=3,
        created=0,
        closed=0,
        acquired=0,
        timeouts=0,
        discarded=0,
        expired=0,
        idle_closed=0,
        creation_failures=0,
        is_closed=False,
    )


@pytest.mark.parametrize(
    ("max_size", "min_size", "max_lifetime"),
    [(1, 0, None), (3, 3, None), (2, 1, 0.5)],
)
def test_sizes_on_their_bounds_are_accepted(
    max_size: int, min_size: int, max_lifetime: float | None
) -> None:
    core = PoolCore(max_size, min_size=min_size, max_lifetime=max_lifetime)
    assert (core.max_size, core.min_size, core.max_lifetime) == (max_size, min_size, max_lifetime)


def test_negative_min_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"min_size must be in \[0, max_size=2\], got -1"):
        PoolCore(2, min_size=-1)


def test_connection_ids_count_from_zero() -> None:
    """Mutants: ``_next_id = 1``, ``_next_id += 2``, ``_next_id -= 1``."""
    core = PoolCore(3)
    assert [create(core, 0.0) for _ in range(3)] == [0, 1, 2]


def test_statistics_report_every_field() -> None:
    """Mutants: each field of ``statistics()`` dropped, ``size`` as idle - in use."""
    core = PoolCore(7, max_lifetime=10.0)
    a, b, c, d, e = (create(core, 0.0) for _ in range(5))
    assert core.checkout(1.0) == Grant(GrantKind.CREATE)  # still being created
    assert core.checkout(1.0) == Grant(GrantKind.CREATE)
    core.creation_failed()
    for _ in range(3):
        core.record_acquired()
    for _ in range(2):
        core.record_timeout()
    core.checkin(a, 1.0, reusable=True)
    core.checkin(b, 1.0, reusable=True)
    core.checkin(c, 1.0, reusable=False)  # discarded
    core.close_done()
    core.checkin(d, 20.0, reusable=True)  # expired: closing
    assert core.in_use_connections() == [e]
    assert core.statistics("db") == PoolStatistics(
        name="db",
        size=3,
        idle=2,
        in_use=1,
        creating=1,
        closing=1,
        waiting=0,
        max_size=7,
        created=5,
        closed=1,
        acquired=3,
        timeouts=2,
        discarded=1,
        expired=1,
        idle_closed=0,
        creation_failures=1,
        is_closed=False,
    )
    core.close()
    assert core.statistics().is_closed is True


def test_counters_count_each_event_once() -> None:
    """Mutants: ``+= 1`` as ``= 1``, ``-= 1`` or ``+= 2`` on every counter."""
    core = PoolCore(6, max_lifetime=5.0)
    ids = [create(core, 0.0) for _ in range(6)]
    for _ in range(3):
        core.record_acquired()
        core.record_timeout()
    core.checkin(ids[0], 1.0, reusable=False)
    core.checkin(ids[1], 1.0, reusable=False)
    core.checkin(ids[2], 6.0, reusable=True)  # expired on return
    core.checkin(ids[3], 6.0, reusable=True)
    core.checkin(ids[4], 1.0, reusable=True)  # idle, expired by reap
    core.checkin(ids[5], 1.0, reusable=True)
    core.reap(6.0)
    for _ in range(6):
        core.close_done()
    for _ in range(2):
        assert core.checkout(7.0) == Grant(GrantKind.CREATE)
        core.creation_failed()
    stats = core.statistics()
    assert (stats.acquired, stats.timeouts, stats.discarded) == (3, 3, 2)
    assert (stats.expired, stats.closed, stats.creation_failures) == (4, 6, 2)
    assert (stats.size, stats.closing, stats.created) == (0, 0, 6)


def test_lifetime_counts_from_creation() -> None:
    """Mutant: ``now >= created_at - max_lifetime`` in ``_is_expired``."""
    core = PoolCore(1, max_lifetime=5.0)
    connection = create(core, 100.0)
    core.checkin(connection, 104.0, reusable=True)
    assert core.checkout(104.9) == Grant(GrantKind.REUSE, connection)
    core.checkin(connection, 105.0, reusable=True)
    assert core.take_effects() == ([connection], [])


def test_checkout_skips_an_expired_idle_connection_for_a_good_one() -> None:
    """Mutant: ``continue`` → ``break`` after closing an expired idle connection (a new
    connection would be opened, or the caller made to wait, while a good one is idle)."""
    core = PoolCore(2, max_lifetime=100.0)
    old = create(core, 0.0)
    young = create(core, 50.0)
    core.checkin(young, 60.0, reusable=True)
    core.checkin(old, 61.0, reusable=True)  # returned last: tried first
    grant = core.checkout(120.0)
    assert grant == Grant(GrantKind.REUSE, young)
    assert core.is_in_use(young)
    assert core.take_effects() == ([old], [])
    core.checkin(young, 121.0, reusable=True)  # the record kept in use comes back whole
    assert core.idle_connections() == [young]


def test_warm_deficit_counts_slots_still_closing() -> None:
    """Mutant: ``max_size + total`` in ``warm_deficit``: with ``min_size == max_size``
    and a connection still closing, warming would reserve past ``max_size``."""
    core = PoolCore(2, min_size=2)
    assert core.warm_deficit() == 2
    assert core.reserve_warm() == 2
    first = core.created(0.0, checkout=False).connection
    second = core.created(0.0, checkout=False).connection
    assert core.idle_connections() == [first, second]
    assert core.checkout(1.0) == Grant(GrantKind.REUSE, second)
    core.checkin(second, 1.0, reusable=False)  # discarded: closing, its slot still taken
    assert (core.live, core.total) == (1, 2)
    assert core.warm_deficit() == 0
    assert core.reserve_warm() == 0
    assert core.total == 2
    core.close_done()
    assert core.warm_deficit() == 1


def test_closed_pool_wants_nothing_warm() -> None:
    core = PoolCore(2, min_size=2)
    core.close()
    assert core.warm_deficit() == 0
    assert core.reserve_warm() == 0


def test_cancelled_create_grant_passes_the_slot_on() -> None:
    """Mutant: ``_revoke`` of a ``CREATE`` grant without ``_dispatch()``: the slot of a
    served waiter that gave up would stay free while the next waiter waits."""
    core = PoolCore(1)
    held = create(core, 0.0)
    first, second = Waiter(), Waiter()
    core.enqueue(first)
    core.enqueue(second)
    core.checkin(held, 1.0, reusable=False)
    core.close_done()  # the slot goes to the first waiter, as a CREATE grant
    assert core.take_effects() == ([held], [first])
    assert first.grant == Grant(GrantKind.CREATE)
    core.cancel_wait(first, 2.0)
    assert grant_of(first) is None
    assert core.take_effects() == ([], [second])
    assert second.grant == Grant(GrantKind.CREATE)
    assert core.claim(second, 2.0) == Grant(GrantKind.CREATE)
    assert second.grant is None


def test_cancelled_reuse_grant_goes_back_to_idle_at_that_time() -> None:
    """Mutant: the revoked connection checked in with ``now=None``."""
    core = PoolCore(1, max_idle=10.0, max_lifetime=100.0)
    held = create(core, 0.0)
    waiter = Waiter()
    core.enqueue(waiter)
    core.checkin(held, 1.0, reusable=True)  # handed to the waiter
    core.cancel_wait(waiter, 5.0)
    assert core.idle_connections() == [held]
    assert core.next_deadline() == 15.0


def test_cancel_wait_twice_or_unqueued_is_harmless() -> None:
    """Mutant: ``contextlib.suppress(None)``: a waiter no longer queued must not raise."""
    core = PoolCore(1)
    create(core, 0.0)
    waiter = Waiter()
    core.enqueue(waiter)
    core.cancel_wait(waiter, 1.0)
    core.cancel_wait(waiter, 1.0)
    core.cancel_wait(Waiter(), 1.0)
    assert core.waiters() == 0


def test_enqueue_on_a_closed_pool_wakes_the_waiter_closed() -> None:
    core = PoolCore(1)
    core.close()
    waiter = Waiter()
    core.enqueue(waiter)
    assert waiter.grant == Grant(GrantKind.CLOSED)
    assert core.has_effects()
    assert core.take_effects() == ([], [waiter])
    assert not core.has_effects()
    assert core.waiters() == 0


def test_has_effects_sees_either_outbox() -> None:
    """Mutant: ``_to_close and _to_wake``."""
    core = PoolCore(1)
    held = create(core, 0.0)
    assert not core.has_effects()
    core.checkin(held, 1.0, reusable=False)
    assert core.has_effects()  # something to close, nobody to wake
    core.take_effects()
    core.close_done()
    held = create(core, 1.0)
    core.enqueue(Waiter())
    core.checkin(held, 2.0, reusable=True)
    assert core.has_effects()  # somebody to wake, nothing to close
    assert core.take_effects()[0] == []


def test_warm_connection_idles_from_its_creation() -> None:
    """Mutant: a warm connection offered with ``now=None`` (no idle time)."""
    core = PoolCore(3, min_size=1, max_idle=5.0)
    assert core.reserve_warm() == 1
    assert core.checkout(0.0) == Grant(GrantKind.CREATE)  # a user's slot, meanwhile
    warm = core.created(10.0, checkout=False).connection
    core.created(11.0, checkout=True)
    assert core.idle_connections() == [warm]
    assert core.next_deadline() == 15.0


def test_next_deadline_is_the_longest_idle_connection() -> None:
    """Mutants: ``_idle[1]`` / ``_idle[-1]`` in ``next_deadline`` and ``reap``."""
    core = PoolCore(3, max_idle=10.0)
    ids = [create(core, 0.0) for _ in range(3)]
    for returned_at, connection in zip((1.0, 2.0, 3.0), ids, strict=True):
        core.checkin(connection, returned_at, reusable=True)
    assert core.next_deadline() == 11.0
    core.reap(11.5)
    assert core.take_effects() == ([ids[0]], [])
    assert core.next_deadline() == 12.0


def test_next_deadline_is_the_earliest_lifetime_end() -> None:
    """Mutants: the lifetime loop of ``next_deadline`` (``min`` dropped or swapped)."""
    core = PoolCore(3, max_lifetime=100.0)
    ids = [create(core, created_at) for created_at in (20.0, 10.0, 30.0)]
    for connection in ids:
        core.checkin(connection, 40.0, reusable=True)
    assert core.next_deadline() == 110.0


def test_next_deadline_takes_the_sooner_of_idle_and_lifetime() -> None:
    core = PoolCore(2, max_idle=5.0, max_lifetime=100.0)
    connection = create(core, 0.0)
    core.checkin(connection, 1.0, reusable=True)
    assert core.next_deadline() == 6.0
    core.reap(3.0)
    assert core.checkout(98.0) == Grant(GrantKind.REUSE, connection)
    core.checkin(connection, 98.0, reusable=True)
    assert core.next_deadline() == 100.0


def test_reap_closes_only_expired_idle_connections() -> None:
    """Mutants: the lifetime pass of ``reap`` (its guard, its kept list, its count)."""
    core = PoolCore(3, max_lifetime=10.0)
    old, young = create(core, 0.0), create(core, 5.0)
    in_use = create(core, 0.0)
    core.checkin(old, 6.0, reusable=True)
    core.checkin(young, 6.0, reusable=True)
    core.reap(9.9)
    assert core.take_effects() == ([], [])
    core.reap(10.0)
    assert core.take_effects() == ([old], [])
    assert core.idle_connections() == [young]
    assert core.in_use_connections() == [in_use]
    assert core.statistics().expired == 1
    assert core.checkout(10.0) == Grant(GrantKind.REUSE, young)


@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        (lambda core: core.created(0.0, checkout=True), r"^created\(\) without a reserved slot$"),
        (
            lambda core: core.creation_failed(),
            r"^creation_failed\(\) without a reserved slot$",
        ),
        (
            lambda core: core.close_done(),
            r"^close_done\(\) without a connection being closed$",
        ),
        (
            lambda core: core.claim(Waiter(), 0.0),
            r"^claim\(\) by a waiter that was not served$",
        ),
    ],
)
def test_misuse_names_the_call(misuse: object, message: str) -> None:
    core = PoolCore(1)
    with pytest.raises(RuntimeError, match=message):
        misuse(core)  # type: ignore[operator]


def test_close_closes_idle_connections_now() -> None:
    """Mutants: ``close()`` without closing or forgetting its idle connections."""
    core = PoolCore(3)
    ids = [create(core, 0.0) for _ in range(3)]
    core.checkin(ids[0], 1.0, reusable=True)
    core.checkin(ids[1], 1.0, reusable=True)
    core.close()
    core.close()  # idempotent
    assert core.closed
    assert core.idle_connections() == []
    assert core.take_effects() == ([ids[0], ids[1]], [])
    assert core.statistics().closing == 2
    assert core.checkout(2.0) == Grant(GrantKind.CLOSED)


@pytest.mark.parametrize("checkout", [True, False])
def test_connection_created_after_close_is_closed(checkout: bool) -> None:
    """Mutants: ``created()`` on a closed pool not closing the new connection, or not
    saying which one it was."""
    core = PoolCore(2, min_size=1)
    assert core.reserve_warm() == 1
    core.close()
    grant = core.created(1.0, checkout=checkout)
    assert grant == Grant(GrantKind.CLOSED, 0)
    assert core.take_effects() == ([0], [])
    assert (core.total, core.statistics().created) == (1, 1)  # its slot held until closed
    core.close_done()
    assert core.total == 0


@pytest.mark.parametrize("reusable_slot", [True, False])
def test_claim_after_close_gives_back_what_was_granted(reusable_slot: bool) -> None:
    """Mutants: ``claim()`` on a closed pool returning the stale grant, or not revoking
    it (its connection or slot would leak)."""
    core = PoolCore(1)
    held = create(core, 0.0)
    waiter = Waiter()
    core.enqueue(waiter)
    core.checkin(held, 1.0, reusable=reusable_slot)
    if not reusable_slot:
        core.close_done()  # the freed slot goes to the waiter
    core.take_effects()
    granted = waiter.grant
    assert granted == (Grant(GrantKind.REUSE, held) if reusable_slot else Grant(GrantKind.CREATE))
    core.close()
    assert core.claim(waiter, 2.0) == Grant(GrantKind.CLOSED)
    assert waiter.grant is None
    if reusable_slot:
        assert core.take_effects() == ([held], [])
        assert core.total == 1  # closing
    else:
        assert core.take_effects() == ([], [])
        assert core.total == 0


def test_claim_of_a_closed_grant_is_closed() -> None:
    core = PoolCore(1)
    create(core, 0.0)
    waiter = Waiter()
    core.enqueue(waiter)
    core.close()
    assert core.take_effects() == ([], [waiter])
    assert core.claim(waiter, 1.0) == Grant(GrantKind.CLOSED)
    assert core.total == 1  # the connection in use is untouched until returned


def test_a_failed_creation_passes_its_slot_to_a_waiter() -> None:
    """Mutant: ``creation_failed`` without ``_dispatch()`` (the freed slot would stay
    free while a waiter waits)."""
    core = PoolCore(1)
    assert core.checkout(0.0) == Grant(GrantKind.CREATE)
    waiter = Waiter()
    assert core.checkout(0.0) is None
    core.enqueue(waiter)
    core.creation_failed()
    assert core.take_effects() == ([], [waiter])
    assert core.claim(waiter, 1.0) == Grant(GrantKind.CREATE)
    stats = core.statistics()
    assert (stats.creating, stats.creation_failures, stats.waiting) == (1, 1, 0)


def test_a_slot_dispatched_while_another_is_creating_is_counted() -> None:
    """Mutant: ``_creating = 1`` in ``_dispatch`` (a second slot being created would
    be forgotten, and the pool could open past ``max_size``)."""
    core = PoolCore(2)
    held = create(core, 0.0)
    assert core.checkout(0.0) == Grant(GrantKind.CREATE)  # still being created
    waiter = Waiter()
    assert core.checkout(0.0) is None
    core.enqueue(waiter)
    core.checkin(held, 1.0, reusable=False)
    core.close_done()
    assert core.take_effects() == ([held], [waiter])
    assert core.statistics().creating == 2
    assert core.total == 2
