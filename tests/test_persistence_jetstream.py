"""The NATS JetStream store passes the same conformance suite as the embedded store.

Each store the suite opens gets a NATS connection of its own (a bridge on its own
asyncio thread) to the session's ``nats-server`` on 127.0.0.1, and a stream prefix of
its own; the same name reopens the same streams. Windows and ages are measured on the
store's clock, which the harness sets (as the SQLite harness does), so the suite's time
travel needs no sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import nats.js.errors
import pytest
import trio
from distributed_fixtures import nats_url, open_nodes, unique

from mister_smith.config import PersistenceSettings
from mister_smith.distributed import (
    BridgeSettings,
    JetStreamStore,
    NatsBridge,
    NatsServer,
    delete_jetstream_store,
    open_jetstream_store,
)
from mister_smith.errors import (
    InvalidStoreRequest,
    RecordTooLarge,
    StoreCorrupted,
    StoreLocked,
    StoreUnavailable,
    StoreWriteFailed,
)
from mister_smith.persistence import Store
from mister_smith.persistence.conformance import ManualClock, StoreConformance, StoreHarness

__all__ = ["nats_url"]


@asynccontextmanager
async def running_bridge(url: str) -> AsyncIterator[NatsBridge]:
    """A connected bridge for the body of the block."""
    bridge = NatsBridge(BridgeSettings(url=url, name="jetstream-store-test"))
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.serve)
        try:
            yield bridge
        finally:
            nursery.cancel_scope.cancel()


class JetStreamHarness:
    """Stores named ``<base>_<name>`` on one server, all on one settable clock."""

    time_scale = 1.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = unique("js")
        self.clock = ManualClock()
        self.prefixes: set[str] = set()

    def open(self, name: str = "default", **settings: Any) -> AbstractAsyncContextManager[Store]:
        return self._open(name, settings)

    @asynccontextmanager
    async def _open(self, name: str, settings: dict[str, Any]) -> AsyncIterator[Store]:
        prefix = f"{self.base}_{name}"
        self.prefixes.add(prefix)
        async with (
            running_bridge(self.url) as bridge,
            open_jetstream_store(
                bridge, prefix=prefix, settings=PersistenceSettings(**settings), clock=self.clock
            ) as store,
        ):
            yield store

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await trio.lowlevel.checkpoint()

    async def delete_all(self) -> None:
        async with running_bridge(self.url) as bridge:
            for prefix in sorted(self.prefixes):
                await delete_jetstream_store(bridge, prefix=prefix)


@pytest.fixture
def js_harness(nats_url: str) -> Iterator[JetStreamHarness]:
    harness = JetStreamHarness(nats_url)
    yield harness
    trio.run(harness.delete_all)


class TestJetStreamStore(StoreConformance):
    @pytest.fixture
    def store_harness(self, js_harness: JetStreamHarness) -> StoreHarness:
        return js_harness


# -- what only the JetStream store has ------------------------------------------------------


async def test_open_refuses_a_bad_prefix(nats_url: str) -> None:
    async with running_bridge(nats_url) as bridge:
        with pytest.raises(InvalidStoreRequest, match="store prefix"):
            async with open_jetstream_store(bridge, prefix="a.b"):
                pass  # pragma: no cover


async def test_open_without_a_server_is_unavailable() -> None:
    bridge = NatsBridge(BridgeSettings(url="nats://127.0.0.1:1"))
    with pytest.raises(StoreUnavailable, match="cannot open the JetStream store"):
        async with open_jetstream_store(bridge, prefix="nowhere", timeout=0.2):
            pass  # pragma: no cover


async def test_messages_larger_than_a_nats_message_are_refused_by_name(
    js_harness: JetStreamHarness,
) -> None:
    async with js_harness.open() as store:
        assert isinstance(store, JetStreamStore)
        limit = store.record_limit
        with pytest.raises(RecordTooLarge, match="max_payload"):
            await store.append("inbox", b"x" * (limit + 1))
        await store.append("inbox", b"x" * limit)
        big = bytes(range(256)) * (3 * limit // 256 + 1)  # checkpoints are chunked
        written = await store.put_checkpoint("big", big)
        again = await store.put_checkpoint("big", big[::-1], expected_version=written.version)
        stored = await store.get_checkpoint("big")
        assert stored is not None
        assert (stored.data, stored.version) == (big[::-1], again.version)


async def test_names_any_store_accepts_are_kept_exactly(js_harness: JetStreamHarness) -> None:
    names = ["a.b", "*", ">", "with space", "ünïcødé/κλειδί", "x" * 256]
    async with js_harness.open("names") as store:
        for name in names:
            await store.append(name, name.encode(), message_id=name)
            await store.put_checkpoint(name, name.encode())
            await store.journal_append(name, [name.encode()])
    async with js_harness.open("names") as store:
        assert await store.mailboxes() == sorted(names)
        assert await store.checkpoint_keys() == sorted(names)
        for name in names:
            (message,) = await store.pending(name)
            assert (message.message_id, message.payload) == (name, name.encode())
            assert [e.data for e in await store.journal_replay(name)] == [name.encode()]


async def test_one_store_object_writes_a_prefix_at_a_time(js_harness: JetStreamHarness) -> None:
    async with js_harness.open("held") as store, running_bridge(js_harness.url) as other:
        await store.append("inbox", b"x")
        with pytest.raises(StoreLocked, match="is held by"):
            async with open_jetstream_store(other, prefix=f"{js_harness.base}_held"):
                pass  # pragma: no cover
    async with js_harness.open("held") as store:  # released on close
        assert len(await store.pending("inbox")) == 1


async def test_a_lost_lease_stops_the_store_writing(js_harness: JetStreamHarness) -> None:
    prefix = f"{js_harness.base}_lost"
    js_harness.prefixes.add(prefix)
    async with (
        running_bridge(js_harness.url) as bridge,
        open_jetstream_store(bridge, prefix=prefix, lease_ttl=1.0) as store,
    ):
        await store.append("inbox", b"x")
        # Someone else takes the prefix (as if this holder had been cut off too long).
        await bridge.kv_delete(f"MS_{prefix}_LEASE", "holder")
        await bridge.kv_put(f"MS_{prefix}_LEASE", "holder", b"another")
        refused: StoreLocked | None = None
        with trio.fail_after(5):
            while refused is None:
                try:
                    await store.append("inbox", b"y")
                except StoreLocked as exc:
                    refused = exc
                await trio.sleep(0.05)
        assert "lease" in str(refused)
        with pytest.raises(StoreLocked):
            await store.pending("inbox")


async def test_a_settlement_recorded_before_a_crash_is_finished_on_reopen(
    js_harness: JetStreamHarness,
) -> None:
    """The process died after recording an ack and before deleting the message: the
    reopened store does not redeliver it, remembers its id, and deletes it."""
    from mister_smith.distributed import _jetstream_io as io

    async with js_harness.open("crash") as store:
        acked = await store.append("inbox", b"handled", message_id="h-1")
        kept = await store.append("inbox", b"kept")
    prefix = f"{js_harness.base}_crash"
    layout = io.Layout(prefix)
    record = io.Outgoing(
        layout.subject("settled", "inbox"),
        {io.SEQ: str(acked.seq), io.MESSAGE_ID: io.quote("h-1"), io.AT: repr(js_harness.clock())},
        b"",
    )
    async with running_bridge(js_harness.url) as bridge:

        async def settle(side: Any) -> list[int | BaseException]:
            info = await side.nc.jetstream().stream_info(layout.settled)
            return await io.publish_many(side, layout.settled, [record], info.state.last_seq, 5.0)

        (result,) = await bridge._call(settle)
        assert isinstance(result, int)
    async with js_harness.open("crash") as store:
        assert [m.seq for m in await store.pending("inbox")] == [kept.seq]
        again = await store.append("inbox", b"handled", message_id="h-1")
        assert (again.duplicate, again.seq) == (True, acked.seq)
    async with running_bridge(js_harness.url) as bridge:

        async def gone(side: Any) -> dict[int, bytes]:
            return await io.get_payloads(side, layout.mailboxes, [acked.seq, kept.seq])

        assert sorted(await bridge._call(gone)) == [kept.seq]


async def test_a_resent_publish_is_answered_as_a_duplicate(js_harness: JetStreamHarness) -> None:
    """What the store's resend after a lost ack relies on: the copy is sent with the
    same ``Nats-Msg-Id`` and without ``Nats-Expected-Last-Sequence`` (the server checks
    that one first, and the stored first copy moved the last sequence on), and is
    answered with the first copy's sequence instead of being stored again."""
    from mister_smith.distributed import _jetstream_io as io

    async with js_harness.open("resend") as store:
        await store.append("inbox", b"first")
    layout = io.Layout(f"{js_harness.base}_resend")
    async with running_bridge(js_harness.url) as bridge:

        async def publish_twice(side: Any) -> list[tuple[int, bool]]:
            js = side.nc.jetstream()
            last = (await js.stream_info(layout.mailboxes)).state.last_seq
            headers = {
                "Nats-Msg-Id": "resend-1",
                "Nats-Expected-Last-Sequence": str(last),
                io.AT: "0.0",
            }
            subject = layout.subject("mbox", "inbox")
            first = await js.publish(subject, b"x", headers=dict(headers))
            with pytest.raises(nats.js.errors.BadRequestError, match="wrong last sequence"):
                await js.publish(subject, b"x", headers=dict(headers))
            del headers["Nats-Expected-Last-Sequence"]
            again = await js.publish(subject, b"x", headers=dict(headers))
            return [(int(ack.seq), bool(ack.duplicate)) for ack in (first, again)]

        first, second = await bridge._call(publish_twice)
    assert first[1] is False
    assert second == (first[0], True)


async def test_a_server_restart_fails_operations_by_type_then_the_store_carries_on(
    tmp_path: Path,
) -> None:
    """While the server is down, writes fail fast with ``StoreWriteFailed`` and reads
    with ``StoreUnavailable`` (no hang); once it is back, the store reads its streams
    back and carries on, and what returned before the outage is still there."""
    server = NatsServer(tmp_path)
    url = await server.start()
    settings = BridgeSettings(url=url, reconnect_wait=0.05, max_reconnect_attempts=200)
    try:
        async with trio.open_nursery() as nursery:
            bridge = NatsBridge(settings)
            await nursery.start(bridge.serve)
            # The store's own bound on one round of work (an ack is awaited a third of
            # it): "no hang" means within that, however slowly the client notices the
            # server is gone (a write sent just before waits out its ack).
            timeout = 3.0
            async with open_jetstream_store(bridge, prefix="restart", timeout=timeout) as store:
                before = await store.append("inbox", b"before", message_id="b-1")
                await server.stop()
                with trio.fail_after(2 * timeout + 1):
                    with pytest.raises(StoreWriteFailed, match="may or may not"):
                        await store.append("inbox", b"during")
                    with pytest.raises(StoreUnavailable):
                        await store.pending("inbox")
                await server.start()
                with trio.fail_after(10):
                    await bridge.wait_connected()
                after = await store.append("inbox", b"after")
                assert [m.seq for m in await store.pending("inbox")] == [before.seq, after.seq]
                assert (await store.append("inbox", b"again", message_id="b-1")).duplicate
            nursery.cancel_scope.cancel()
    finally:
        await server.stop()


async def test_a_foreign_message_in_the_streams_is_reported_as_corruption(
    js_harness: JetStreamHarness,
) -> None:
    async with js_harness.open("foreign") as store:
        await store.append("inbox", b"ours")
    prefix = f"{js_harness.base}_foreign"
    async with running_bridge(js_harness.url) as bridge:
        await bridge.js_publish(f"ms.{prefix}.mbox.not-base64!", b"theirs")
        with pytest.raises(StoreCorrupted, match="did not write"):
            async with open_jetstream_store(bridge, prefix=prefix):
                pass  # pragma: no cover


async def test_a_node_opens_the_store_on_its_own_connection(nats_url: str) -> None:
    prefix = unique("node")
    async with open_nodes(nats_url, 1) as [(_, node)]:
        try:
            async with open_jetstream_store(node, prefix=prefix) as store:
                appended = await store.append("inbox", b"x", message_id="m")
                assert [m.seq for m in await store.pending("inbox")] == [appended.seq]
                assert store.statistics().pending == 1
        finally:
            await delete_jetstream_store(node, prefix=prefix)


async def test_long_reads_are_exact_for_every_kind_of_record(js_harness: JetStreamHarness) -> None:
    """Reads past a few dozen records take the batched path; it returns exactly the
    records a read asks for, also with settled ones interleaved on the same subject."""
    count = 120
    async with js_harness.open("long") as store:
        seqs = [a.seq for a in await store.append_many("inbox", [bytes([i]) for i in range(count)])]
        await store.append_many("other", [b"elsewhere"] * 10)
        for seq in seqs[::3]:
            await store.dead_letter("inbox", seq, f"reason {seq}")
        await store.journal_append("audit", [bytes([i]) for i in range(count)])
        await store.journal_append("other", [b"elsewhere"] * 10)
        kept = [seq for index, seq in enumerate(seqs) if index % 3]
        pending = await store.pending("inbox", limit=count)
        assert [m.seq for m in pending] == kept
        assert [m.payload for m in pending] == [bytes([i]) for i in range(count) if i % 3]
        page = await store.pending("inbox", after=kept[5], limit=40)
        assert [m.seq for m in page] == kept[6:46]
        letters = await store.dead_letters("inbox")
        assert [(d.seq, d.payload, d.reason) for d in letters] == [
            (seq, bytes([seqs.index(seq)]), f"reason {seq}") for seq in seqs[::3]
        ]
        entries = await store.journal_replay("audit")
        assert [e.data for e in entries] == [bytes([i]) for i in range(count)]
        later = await store.journal_replay("audit", after=entries[9].seq, limit=50)
        assert [e.data for e in later] == [bytes([i]) for i in range(10, 60)]
