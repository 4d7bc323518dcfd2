"""The conformance suite every :class:`~mister_smith.persistence.Store` must pass.

For tests only (it imports pytest and hypothesis; the library never imports it). To run
it against a store, subclass :class:`StoreConformance` in a test module and provide a
``store_harness`` fixture returning a :class:`StoreHarness`::

    class TestSQLiteStore(StoreConformance):
        @pytest.fixture
        def store_harness(self, tmp_path: Path) -> StoreHarness:
            return SQLiteHarness(tmp_path)

A harness opens stores by name (the same name reopens the same durable store, a new
name gives an empty one) with some ``PersistenceSettings`` fields overridden, and
advances the store's clock: a harness with a settable clock advances it; one against a
server that keeps real time sleeps, and sets :attr:`StoreHarness.time_scale` below 1 so
that the suite's windows and ages are short.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import attrs
import hypothesis
import pytest
import trio
from hypothesis import strategies as st

from ..errors import (
    CheckpointConflict,
    InvalidStoreRequest,
    RecordTooLarge,
    StoreClosed,
)
from ._records import Appended, StoreStatistics
from ._store import MAX_READ_LIMIT, Store


class StoreHarness(Protocol):
    """Opens the stores under test and moves their clock."""

    time_scale: float
    """Multiplies every window, age and clock step the suite uses (1.0 on a settable
    clock; smaller for a real-time server so the suite stays fast)."""

    def open(self, name: str = "default", **settings: Any) -> AbstractAsyncContextManager[Store]:
        """Open the store called ``name`` with these ``PersistenceSettings`` fields
        overridden; the same name reopens the same durable store."""
        ...

    async def advance(self, seconds: float) -> None:
        """Move the stores' clock ``seconds`` forward (or sleep that long)."""
        ...


@attrs.define
class ManualClock:
    """A settable store clock for tests (pass it as ``clock=``).

    Attributes:
        now: The time it returns, in seconds since the epoch.
    """

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


async def _pending_ids(store: Store, mailbox: str) -> list[str | None]:
    return [message.message_id for message in await store.pending(mailbox)]


_BAD_CALLS: list[tuple[str, Callable[[Store], Awaitable[object]]]] = [
    ("empty mailbox", lambda s: s.append("", b"x")),
    ("control character in mailbox", lambda s: s.append("a\nb", b"x")),
    ("mailbox too long", lambda s: s.append("m" * 257, b"x")),
    ("mailbox not a string", lambda s: s.append(7, b"x")),  # type: ignore[arg-type]
    ("payload not bytes", lambda s: s.append("m", "text")),  # type: ignore[arg-type]
    ("payload a bytearray", lambda s: s.append("m", bytearray(b"x"))),  # type: ignore[arg-type]
    ("empty message id", lambda s: s.append("m", b"x", message_id="")),
    ("message id not a string", lambda s: s.append("m", b"x", message_id=5)),  # type: ignore[arg-type]
    ("seq zero", lambda s: s.ack("m", 0)),
    ("seq a bool", lambda s: s.ack("m", True)),
    ("seq too large", lambda s: s.ack("m", 1 << 64)),
    ("reason not a string", lambda s: s.dead_letter("m", 1, None)),  # type: ignore[arg-type]
    ("limit zero", lambda s: s.pending("m", limit=0)),
    ("limit too large", lambda s: s.pending("m", limit=MAX_READ_LIMIT + 1)),
    ("negative cursor", lambda s: s.pending("m", after=-1)),
    ("negative version", lambda s: s.put_checkpoint("k", b"x", expected_version=-1)),
    ("checkpoint data not bytes", lambda s: s.put_checkpoint("k", {"a": 1})),  # type: ignore[arg-type]
    ("since not finite", lambda s: s.journal_replay("j", since=float("nan"))),
    ("since a string", lambda s: s.journal_replay("j", since="yesterday")),  # type: ignore[arg-type]
    ("entries not a list", lambda s: s.journal_append("j", b"x")),  # type: ignore[arg-type]
    ("payloads not a list", lambda s: s.append_many("m", b"x")),  # type: ignore[arg-type]
    ("a payload not bytes", lambda s: s.append_many("m", [b"x", 1])),  # type: ignore[list-item]
    ("ids of another length", lambda s: s.append_many("m", [b"x"], message_ids=["a", "b"])),
    ("a bad id", lambda s: s.append_many("m", [b"x", b"y"], message_ids=["a", ""])),
    ("an entry not bytes", lambda s: s.journal_append("j", [b"x", "y"])),  # type: ignore[list-item]
]


class StoreConformance:
    """The contract of :class:`~mister_smith.persistence.Store`, as tests.

    Subclass it (with a name starting with ``Test``) and provide a ``store_harness``
    fixture; every test then runs against that store.
    """

    # -- durable mailboxes ------------------------------------------------------------

    async def test_append_then_pending_in_order(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            appended = [await store.append("inbox", f"m{i}".encode()) for i in range(5)]
            assert [a.seq for a in appended] == sorted({a.seq for a in appended})
            assert not any(a.duplicate for a in appended)
            pending = await store.pending("inbox")
            assert [m.payload for m in pending] == [f"m{i}".encode() for i in range(5)]
            assert [m.seq for m in pending] == [a.seq for a in appended]
            assert await store.pending("elsewhere") == []

    async def test_pending_pages_with_after_and_limit(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            seqs = [(await store.append("inbox", bytes([i]))).seq for i in range(7)]
            first = await store.pending("inbox", limit=3)
            assert [m.seq for m in first] == seqs[:3]
            rest = await store.pending("inbox", after=first[-1].seq, limit=10)
            assert [m.seq for m in rest] == seqs[3:]

    async def test_ack_settles_once(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            one = await store.append("inbox", b"1")
            two = await store.append("inbox", b"2")
            assert await store.ack("inbox", one.seq) is True
            assert await store.ack("inbox", one.seq) is False  # twice: harmless
            assert await store.ack("other", two.seq) is False  # wrong mailbox
            assert await store.ack("inbox", two.seq + 1000) is False  # never appended
            assert [m.seq for m in await store.pending("inbox")] == [two.seq]

    async def test_ack_many_settles_each_like_ack(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            first, second, third = await store.append_many(
                "inbox", [b"1", b"2", b"3"], message_ids=["a", None, "c"]
            )
            assert await store.ack_many("inbox", []) == []
            settled = await store.ack_many("inbox", [third.seq, first.seq, third.seq, 10**9])
            assert settled == [True, True, False, False]  # in order; twice and unknown: False
            assert [m.seq for m in await store.pending("inbox")] == [second.seq]
            again = await store.append("inbox", b"1", message_id="a")
            assert again.duplicate  # remembered like an acked id
            with pytest.raises(InvalidStoreRequest, match=r"seqs\[1\]"):
                await store.ack_many("inbox", [second.seq, 0])
            with pytest.raises(InvalidStoreRequest, match="seqs must be a list"):
                await store.ack_many("inbox", second.seq)  # type: ignore[arg-type]
            assert [m.seq for m in await store.pending("inbox")] == [second.seq]

    async def test_duplicate_of_a_pending_message_is_not_written(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open() as store:
            first = await store.append("inbox", b"v1", message_id="order-1")
            again = await store.append("inbox", b"v2", message_id="order-1")
            assert again == Appended("inbox", first.seq, "order-1", duplicate=True)
            pending = await store.pending("inbox")
            assert [(m.message_id, m.payload) for m in pending] == [("order-1", b"v1")]

    async def test_append_many_appends_in_order_in_one_call(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open() as store:
            first = await store.append("inbox", b"before", message_id="b")
            many = await store.append_many(
                "inbox", [b"1", b"2", b"3", b"4"], message_ids=[None, "x", "x", "b"]
            )
            assert [m.duplicate for m in many] == [False, False, True, True]
            assert many[1].seq == many[2].seq  # the same id twice in one call
            assert many[3].seq == first.seq  # an id already pending
            assert first.seq < many[0].seq < many[1].seq
            pending = await store.pending("inbox")
            assert [m.payload for m in pending] == [b"before", b"1", b"2"]
            assert await store.append_many("inbox", []) == []
            plain = await store.append_many("other", [b"a", b"b"])
            assert [m.message_id for m in plain] == [None, None]
            assert plain[0].seq < plain[1].seq

    async def test_message_ids_are_per_mailbox(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            a = await store.append("a", b"x", message_id="same")
            b = await store.append("b", b"x", message_id="same")
            assert not a.duplicate
            assert not b.duplicate
            assert a.seq != b.seq

    async def test_idempotent_receive_window(self, store_harness: StoreHarness) -> None:
        scale = store_harness.time_scale
        async with store_harness.open(dedupe_window=10.0 * scale) as store:
            first = await store.append("inbox", b"x", message_id="m-1")
            assert await store.ack("inbox", first.seq)
            await store_harness.advance(5.0 * scale)
            within = await store.append("inbox", b"x", message_id="m-1")
            assert within.duplicate
            assert within.seq == first.seq
            assert await store.pending("inbox") == []
            await store_harness.advance(6.0 * scale)  # 11 s after the ack: forgotten
            after = await store.append("inbox", b"x", message_id="m-1")
            assert not after.duplicate
            assert after.seq > first.seq
            assert await _pending_ids(store, "inbox") == ["m-1"]

    async def test_dead_letters_are_kept_and_their_ids_remembered(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open() as store:
            kept = await store.append("inbox", b"poison", message_id="p-1")
            assert await store.dead_letter("inbox", kept.seq, "handler crashed: ValueError")
            assert await store.dead_letter("inbox", kept.seq, "again") is False
            assert await store.ack("inbox", kept.seq) is False
            assert await store.pending("inbox") == []
            (letter,) = await store.dead_letters("inbox")
            assert (letter.seq, letter.message_id, letter.payload) == (kept.seq, "p-1", b"poison")
            assert letter.reason == "handler crashed: ValueError"
            assert letter.dead_at >= letter.appended_at
            assert (await store.append("inbox", b"poison", message_id="p-1")).duplicate

    async def test_mailboxes_lists_those_with_pending_messages(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open() as store:
            b = await store.append("b", b"x")
            await store.append("a", b"x")
            await store.append("c", b"x")
            await store.ack("b", b.seq)
            assert await store.mailboxes() == ["a", "c"]

    async def test_concurrent_appends_all_land_in_each_senders_order(
        self, store_harness: StoreHarness
    ) -> None:
        senders, each = 20, 15
        async with store_harness.open() as store:
            results: dict[int, list[int]] = {}

            async def sender(index: int) -> None:
                results[index] = [
                    (await store.append("inbox", f"{index}:{n}".encode())).seq for n in range(each)
                ]

            async with trio.open_nursery() as nursery:
                for index in range(senders):
                    nursery.start_soon(sender, index)
            pending = await store.pending("inbox")
            assert len(pending) == senders * each
            assert len({m.seq for m in pending}) == senders * each
            for index, seqs in results.items():
                assert seqs == sorted(seqs)
                mine = [m.payload for m in pending if m.payload.startswith(f"{index}:".encode())]
                assert mine == [f"{index}:{n}".encode() for n in range(each)]

    async def test_cancelled_appends_are_written_exactly_when_they_returned(
        self, store_harness: StoreHarness
    ) -> None:
        """Senders are cancelled while their appends are queued, committing or done:
        afterwards exactly the appends that returned are in the store."""
        returned: set[bytes] = set()
        enough = trio.Event()
        async with store_harness.open() as store:

            async def sender(index: int) -> None:
                for n in range(10):
                    payload = f"{index}:{n}".encode()
                    await store.append("inbox", payload)
                    returned.add(payload)
                    if len(returned) >= 50:
                        enough.set()

            async with trio.open_nursery() as nursery:
                for index in range(30):
                    nursery.start_soon(sender, index)
                await enough.wait()
                nursery.cancel_scope.cancel()
            written = {m.payload for m in await store.pending("inbox")}
            assert 50 <= len(returned) < 300
            assert written == returned

    # -- durability -------------------------------------------------------------------

    async def test_everything_survives_a_reopen(self, store_harness: StoreHarness) -> None:
        async with store_harness.open("durable") as store:
            kept = await store.append("inbox", b"kept", message_id="k")
            handled = await store.append("inbox", b"handled", message_id="h")
            await store.ack("inbox", handled.seq)
            dead = await store.append("inbox", b"dead")
            await store.dead_letter("inbox", dead.seq, "stopped")
            checkpoint = await store.put_checkpoint("agent/1", b"turn 3")
            await store.journal_append("audit", [b"e1", b"e2"])
        async with store_harness.open("durable") as store:
            assert [(m.seq, m.payload) for m in await store.pending("inbox")] == [
                (kept.seq, b"kept")
            ]
            assert (await store.append("inbox", b"handled", message_id="h")).duplicate
            assert (await store.append("inbox", b"kept", message_id="k")).duplicate
            assert [d.seq for d in await store.dead_letters("inbox")] == [dead.seq]
            assert await store.get_checkpoint("agent/1") == checkpoint
            assert [e.data for e in await store.journal_replay("audit")] == [b"e1", b"e2"]
            later = await store.append("inbox", b"later")
            assert later.seq > dead.seq  # sequence numbers are never reused

    async def test_a_closed_store_refuses_operations(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            await store.append("inbox", b"x")
            await store.aclose()
            await store.aclose()  # idempotent
            with pytest.raises(StoreClosed):
                await store.append("inbox", b"y")
            with pytest.raises(StoreClosed):
                await store.get_checkpoint("k")

    # -- bad input --------------------------------------------------------------------

    @pytest.mark.parametrize(("case", "call"), _BAD_CALLS, ids=[case for case, _ in _BAD_CALLS])
    async def test_bad_input_is_refused_by_name(
        self,
        store_harness: StoreHarness,
        case: str,
        call: Callable[[Store], Awaitable[object]],
    ) -> None:
        async with store_harness.open() as store:
            with pytest.raises(InvalidStoreRequest) as excinfo:
                await call(store)
            assert str(excinfo.value)
            assert await store.pending("m") == []
            assert await store.get_checkpoint("k") is None

    async def test_records_over_the_size_limit_are_refused(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open(max_record_bytes=1024) as store:
            await store.append("inbox", b"x" * 1024)
            with pytest.raises(RecordTooLarge, match="1025 bytes"):
                await store.append("inbox", b"x" * 1025)
            with pytest.raises(RecordTooLarge):
                await store.put_checkpoint("k", b"x" * 2048)
            with pytest.raises(RecordTooLarge):
                await store.journal_append("j", [b"ok", b"x" * 2048])
            assert len(await store.pending("inbox")) == 1
            assert await store.journal_replay("j") == []

    # -- checkpoints ------------------------------------------------------------------

    async def test_checkpoints_are_whole_and_versioned(self, store_harness: StoreHarness) -> None:
        big = bytes(range(256)) * 4096  # 1 MiB
        async with store_harness.open() as store:
            assert await store.get_checkpoint("task/7") is None
            first = await store.put_checkpoint("task/7", b"turn 1")
            second = await store.put_checkpoint("task/7", big)
            assert first.version >= 1
            assert second.version > first.version
            stored = await store.get_checkpoint("task/7")
            assert stored is not None
            assert stored.data == big
            assert stored.version == second.version

    async def test_checkpoint_compare_and_set(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            created = await store.put_checkpoint("k", b"a", expected_version=0)
            with pytest.raises(CheckpointConflict) as excinfo:
                await store.put_checkpoint("k", b"b", expected_version=0)
            assert (excinfo.value.key, excinfo.value.expected) == ("k", 0)
            assert excinfo.value.actual == created.version
            updated = await store.put_checkpoint("k", b"b", expected_version=created.version)
            with pytest.raises(CheckpointConflict):
                await store.put_checkpoint("k", b"c", expected_version=created.version)
            stored = await store.get_checkpoint("k")
            assert stored is not None
            assert (stored.data, stored.version) == (b"b", updated.version)

    async def test_checkpoint_delete(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            assert await store.delete_checkpoint("k") is False
            written = await store.put_checkpoint("k", b"a")
            with pytest.raises(CheckpointConflict):
                await store.delete_checkpoint("k", expected_version=written.version + 1)
            assert await store.delete_checkpoint("k", expected_version=written.version)
            assert await store.get_checkpoint("k") is None
            assert (await store.put_checkpoint("k", b"new", expected_version=0)).data == b"new"

    async def test_checkpoint_keys_by_prefix(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            for key in ("task/2", "agent/a", "task/1", "task", "tasks/x"):
                await store.put_checkpoint(key, b"x")
            assert await store.checkpoint_keys("task/") == ["task/1", "task/2"]
            assert await store.checkpoint_keys() == sorted(
                ["task/2", "agent/a", "task/1", "task", "tasks/x"]
            )

    # -- journal ----------------------------------------------------------------------

    async def test_journal_replay_in_order_with_cursor_and_since(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open() as store:
            early = await store.journal_append("audit", [b"a", b"b"])
            await store_harness.advance(10.0 * store_harness.time_scale)
            late = await store.journal_append("audit", [b"c"])
            await store.journal_append("other", [b"z"])
            entries = await store.journal_replay("audit")
            assert [e.data for e in entries] == [b"a", b"b", b"c"]
            assert [e.seq for e in entries] == early + late
            assert entries[0].recorded_at <= entries[1].recorded_at <= entries[2].recorded_at
            since = await store.journal_replay("audit", since=entries[2].recorded_at)
            assert [e.data for e in since] == [b"c"]
            after = await store.journal_replay("audit", after=early[0], limit=1)
            assert [e.data for e in after] == [b"b"]
            assert await store.journal_append("audit", []) == []

    async def test_journal_retention_by_count(self, store_harness: StoreHarness) -> None:
        async with store_harness.open(journal_max_entries=5) as store:
            for n in range(8):
                await store.journal_append("audit", [str(n).encode()])
            assert [e.data for e in await store.journal_replay("audit")] == [
                b"3",
                b"4",
                b"5",
                b"6",
                b"7",
            ]

    async def test_journal_retention_by_age(self, store_harness: StoreHarness) -> None:
        scale = store_harness.time_scale
        async with store_harness.open(journal_max_age=10.0 * scale) as store:
            await store.journal_append("audit", [b"old"])
            await store_harness.advance(11.0 * scale)
            await store.journal_append("audit", [b"new"])
            assert [e.data for e in await store.journal_replay("audit")] == [b"new"]

    # -- retention of ids and dead letters --------------------------------------------

    async def test_remembered_ids_are_bounded_oldest_first(
        self, store_harness: StoreHarness
    ) -> None:
        async with store_harness.open(dedupe_capacity=2) as store:
            for name in ("a", "b", "c"):
                appended = await store.append("inbox", b"x", message_id=name)
                await store.ack("inbox", appended.seq)
                await store_harness.advance(0.01 * store_harness.time_scale)
            assert not (await store.append("inbox", b"x", message_id="a")).duplicate
            assert (await store.append("inbox", b"x", message_id="c")).duplicate

    async def test_dead_letters_are_bounded_by_count_and_age(
        self, store_harness: StoreHarness
    ) -> None:
        scale = store_harness.time_scale
        async with store_harness.open(
            dead_letter_capacity=2, dead_letter_max_age=10.0 * scale
        ) as store:
            for n in range(3):
                appended = await store.append("inbox", str(n).encode())
                await store.dead_letter("inbox", appended.seq, f"reason {n}")
            assert [d.payload for d in await store.dead_letters("inbox")] == [b"1", b"2"]
            await store_harness.advance(11.0 * scale)
            assert await store.dead_letters("inbox") == []

    async def test_statistics_count_what_happened(self, store_harness: StoreHarness) -> None:
        async with store_harness.open() as store:
            one = await store.append("inbox", b"1", message_id="x")
            await store.append("inbox", b"1", message_id="x")
            await store.append("inbox", b"2")
            await store.ack("inbox", one.seq)
            stats = store.statistics()
            assert isinstance(stats, StoreStatistics)
            assert (stats.appended, stats.duplicates, stats.acked, stats.pending) == (2, 1, 1, 1)

    # -- the contract as a model ------------------------------------------------------

    @hypothesis.settings(
        max_examples=25,
        deadline=None,
        # One subclass per store runs this same test (a different executor each, by
        # design); the model and its examples do not depend on the store.
        suppress_health_check=[
            hypothesis.HealthCheck.function_scoped_fixture,
            hypothesis.HealthCheck.differing_executors,
        ],
    )
    @hypothesis.given(data=st.data())
    def test_mailboxes_follow_the_model(
        self, store_harness: StoreHarness, data: st.DataObject
    ) -> None:
        """Random appends (with ids from a small pool, so duplicates happen), acks,
        dead letters, clock steps and reopens, checked against a model of the contract
        after every step."""
        name = f"model-{next(_EXAMPLES)}"
        window = 10.5 * store_harness.time_scale  # no sum of steps lands on it
        steps = data.draw(st.lists(_STEP, min_size=1, max_size=30))
        trio.run(_follow_model, store_harness, name, window, steps)


_EXAMPLES = itertools.count()

_STEP = st.one_of(
    st.tuples(
        st.just("append"), st.sampled_from(["a", "b"]), st.sampled_from([None, "1", "2", "3"])
    ),
    st.tuples(st.just("ack"), st.sampled_from(["a", "b"]), st.integers(0, 7)),
    st.tuples(st.just("dead"), st.sampled_from(["a", "b"]), st.integers(0, 7)),
    st.tuples(st.just("advance"), st.just(""), st.sampled_from([1, 6, 11])),
    st.tuples(st.just("reopen"), st.just(""), st.just(0)),
)


async def _follow_model(
    harness: StoreHarness, name: str, window: float, steps: list[tuple[str, str, Any]]
) -> None:
    now = 0.0
    pending: dict[int, tuple[str, str | None]] = {}  # seq -> (mailbox, id)
    settled: dict[tuple[str, str], tuple[int, float]] = {}  # (mailbox, id) -> (seq, when)
    seen: list[int] = []
    scale = harness.time_scale
    store_cm = harness.open(name, dedupe_window=window)
    store = await store_cm.__aenter__()
    try:
        for kind, mailbox, arg in steps:
            if kind == "append":
                result = await store.append(mailbox, b"p", message_id=arg)
                same = [s for s, (m, i) in pending.items() if arg and (m, i) == (mailbox, arg)]
                remembered = settled.get((mailbox, arg)) if arg else None
                if same:
                    assert result.duplicate
                    assert result.seq == same[0]
                elif remembered is not None and now - remembered[1] < window:
                    assert result.duplicate
                    assert result.seq == remembered[0]
                else:
                    assert not result.duplicate
                    assert all(result.seq > s for s in seen)
                    seen.append(result.seq)
                    pending[result.seq] = (mailbox, arg)
            elif kind in ("ack", "dead"):
                target = seen[arg % len(seen)] if seen else 1
                is_pending = pending.get(target, ("", None))[0] == mailbox
                if kind == "ack":
                    done = await store.ack(mailbox, target)
                else:
                    done = await store.dead_letter(mailbox, target, "model")
                assert done is is_pending
                if done:
                    _, message_id = pending.pop(target)
                    if message_id is not None:
                        settled[(mailbox, message_id)] = (target, now)
            elif kind == "advance":
                await harness.advance(arg * scale)
                now += arg * scale
            else:
                await store_cm.__aexit__(None, None, None)
                store_cm = harness.open(name, dedupe_window=window)
                store = await store_cm.__aenter__()
            for box in ("a", "b"):
                expected = [(s, i) for s, (m, i) in sorted(pending.items()) if m == box]
                actual = [(m.seq, m.message_id) for m in await store.pending(box)]
                assert actual == expected
    finally:
        await store_cm.__aexit__(None, None, None)
