"""The JetStream store's index keeps exactly what the retention rules keep (no I/O).

Retention is decided by :class:`StoreIndex` alone (the store then deletes what it
dropped from the streams), so these properties pin the rules the SQLite store applies in
SQL: the receive window and ``dedupe_capacity`` for ids, ``dead_letter_max_age`` and
``dead_letter_capacity`` for dead letters, ``journal_max_age`` and ``journal_max_entries``
for the journal.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mister_smith.distributed._jetstream_index import (
    DeadMeta,
    PendingMeta,
    Remembered,
    StoreIndex,
)

_STEPS = st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=0, max_size=40)
_AGE = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.5, 10.0]))


def _times(steps: list[float]) -> list[float]:
    return list(itertools.accumulate(steps, initial=100.0))[1:]


@given(steps=_STEPS, window=st.sampled_from([0.5, 1.0, 2.5]), capacity=st.integers(1, 10))
def test_ids_are_forgotten_past_the_window_or_the_capacity(
    steps: list[float], window: float, capacity: int
) -> None:
    index = StoreIndex()
    times = _times(steps)
    for n, settled_at in enumerate(times):
        index.remember("box", f"id{n}", Remembered(n + 1, settled_at, 1000 + n))
    now = times[-1] + 1.0 if times else 100.0
    dropped = index.forget_ids(now, window, capacity)
    alive = [n for n, t in enumerate(times) if now - t < window][-capacity:]
    assert [key[1] for key in index.remembered] == [f"id{n}" for n in alive]
    assert sorted(dropped + [1000 + n for n in alive]) == [1000 + n for n in range(len(times))]
    for n, _ in enumerate(times):
        expected = n + 1 if n in alive else None
        assert index.duplicate_of("box", f"id{n}", now, window) == expected


@given(steps=_STEPS, max_age=_AGE, capacity=st.integers(1, 10))
def test_dead_letters_are_dropped_past_their_age_or_the_capacity(
    steps: list[float], max_age: float | None, capacity: int
) -> None:
    index = StoreIndex()
    times = _times(steps)
    for n, dead_at in enumerate(times):
        index.add_dead(DeadMeta("box", n + 1, None, "r", dead_at, dead_at, 1000 + n))
    now = times[-1] + 1.0 if times else 100.0
    dropped = index.drop_dead(now, max_age, capacity)
    kept = [n for n, t in enumerate(times) if max_age is None or now - t <= max_age][-capacity:]
    assert list(index.dead) == [n + 1 for n in kept]
    assert sorted(dropped + [1000 + n for n in kept]) == [1000 + n for n in range(len(times))]
    oldest = -1.0 if max_age is None else now - max_age
    assert [m.seq for m in index.dead_after("box", 0, 1000, oldest)] == [n + 1 for n in kept]


@given(steps=_STEPS, max_age=_AGE, max_entries=st.integers(1, 10))
def test_the_journal_keeps_the_newest_entries_within_age_and_count(
    steps: list[float], max_age: float | None, max_entries: int
) -> None:
    index = StoreIndex()
    times = _times(steps)
    for n, recorded_at in enumerate(times):
        index.add_journal(n + 1, "a" if n % 2 else "b", recorded_at)
    now = times[-1] + 1.0 if times else 100.0
    dropped, first_kept = index.trim_journal(now, max_age, max_entries)
    kept = [n for n, t in enumerate(times) if max_age is None or now - t <= max_age]
    kept = kept[-max_entries:]
    assert [seq for seq, _, _ in index.journal] == [n + 1 for n in kept]
    assert dropped == len(times) - len(kept)
    assert first_kept == (kept[0] + 1 if kept else None)
    assert [s for s, _ in index.journal_after("a", 0, -1.0, 1000)] == [n + 1 for n in kept if n % 2]


@given(ids=st.lists(st.sampled_from([None, "x", "y"]), max_size=20))
def test_pending_ids_follow_appends_and_settlements(ids: list[str | None]) -> None:
    index = StoreIndex()
    for seq, message_id in enumerate(ids, start=1):
        if index.duplicate_of("box", message_id, 0.0, 1.0) is None:
            index.add_pending("box", PendingMeta(seq, message_id, 0.0))
    pending = index.pending_after("box", 0, 1000)
    named = [m.message_id for m in pending if m.message_id is not None]
    assert len(named) == len(set(named))  # one pending copy per id
    for meta in pending:
        index.settle("box", meta.seq)
    assert index.pending == {}
    assert index.pending_ids == {}
