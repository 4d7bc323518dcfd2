"""The NATS bridge: batched, bounded hand-offs between Trio and nats-py's asyncio loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from distributed_fixtures import nats_url, unique

from mister_smith.distributed import (
    BridgeSettings,
    ConnectionState,
    NatsBridge,
    NatsConnectionChanged,
    NatsUnavailable,
    PayloadTooLarge,
)
from mister_smith.errors import MailboxFull
from mister_smith.events import EventBus, SupervisionDecision

__all__ = ["nats_url"]


@asynccontextmanager
async def running(bridge: NatsBridge) -> AsyncIterator[NatsBridge]:
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.serve)
        try:
            yield bridge
        finally:
            nursery.cancel_scope.cancel()


async def test_publish_subscribe_and_request_reply(nats_url: str) -> None:
    subject = unique("s")
    async with running(NatsBridge(BridgeSettings(url=nats_url))) as bridge:
        assert bridge.state is ConnectionState.CONNECTED
        sub = await bridge.subscribe(f"{subject}.>")
        await bridge.publish(f"{subject}.a", b"one", headers={"K": "v"})
        bridge.publish_nowait(f"{subject}.b", b"two")
        first, second = await sub.receive(), await sub.receive()
        assert (first.subject, first.data, first.headers["K"]) == (f"{subject}.a", b"one", "v")
        assert (second.data, second.reply) == (b"two", "")

        async def echo() -> None:
            async for msg in sub:
                bridge.publish_nowait(msg.reply, msg.data.upper())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            reply = await bridge.request(f"{subject}.echo", b"hi", timeout=5)
            assert reply.data == b"HI"
            nursery.cancel_scope.cancel()
        stats = bridge.statistics()
        assert stats.received == 3
        assert stats.dropped == 0
        assert stats.requests_in_flight == 0


async def test_a_burst_crosses_in_few_wakeups(nats_url: str) -> None:
    """1,000 publishes made in one Trio step cross to asyncio in a handful of wake-ups
    (one, unless the asyncio thread drains concurrently while Trio still queues), and
    the 1,000 messages come back in far fewer than 1,000 wake-ups of Trio."""
    subject = unique("burst")
    async with running(NatsBridge(BridgeSettings(url=nats_url))) as bridge:
        sub = await bridge.subscribe(subject, capacity=2000)
        before = bridge.statistics()
        for i in range(1000):
            bridge.publish_nowait(subject, str(i).encode())
        await bridge.flush()
        got = [(await sub.receive()).data for _ in range(1000)]
        assert got == [str(i).encode() for i in range(1000)]  # in order, none lost
        after = bridge.statistics()
        assert after.wakeups_to_asyncio - before.wakeups_to_asyncio < 100
        assert after.wakeups_to_trio - before.wakeups_to_trio < 500


async def test_outbound_bound_backpressure_and_refusal(nats_url: str) -> None:
    """The outbound hand-off is bounded in bytes: tell_nowait-style publishes are refused
    with MailboxFull at the bound, awaiting publishes wait for room, and a message larger
    than the whole bound is refused outright."""
    subject = unique("bp")
    settings = BridgeSettings(url=nats_url, outbound_bytes=4096)
    async with running(NatsBridge(settings)) as bridge:
        sub = await bridge.subscribe(subject, capacity=1000)
        accepted = 0
        with pytest.raises(MailboxFull, match="outbound bound 4096 bytes"):
            for _ in range(1000):  # no checkpoint: the asyncio side cannot report room
                bridge.publish_nowait(subject, b"x" * 500)
                accepted += 1
        assert 0 < accepted < 10
        assert bridge.statistics().refused_full == 1
        with pytest.raises(PayloadTooLarge):
            bridge.publish_nowait(subject, b"x" * 5000)
        for _ in range(50):  # waits for room instead of failing
            await bridge.publish(subject, b"y" * 500)
        await bridge.flush()
        received = 0
        with trio.move_on_after(2):
            while received < accepted + 50:
                await sub.receive()
                received += 1
        assert received == accepted + 50
        assert bridge.statistics().outbound_bytes == 0


async def test_slow_subscriber_drops_and_counts(nats_url: str) -> None:
    subject = unique("slow")
    async with running(NatsBridge(BridgeSettings(url=nats_url))) as bridge:
        sub = await bridge.subscribe(subject, capacity=5)
        for i in range(50):
            bridge.publish_nowait(subject, b"%d" % i)
        await bridge.flush()
        with trio.move_on_after(5):
            while sub.delivered + sub.dropped < 50:
                await trio.sleep(0.01)
        assert (sub.delivered, sub.dropped) == (5, 45)
        assert [sub.receive_nowait().data for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
        assert bridge.statistics().dropped == 45


async def test_cancelling_a_trio_caller_cancels_the_asyncio_request(nats_url: str) -> None:
    subject = unique("silent")
    async with running(NatsBridge(BridgeSettings(url=nats_url))) as bridge:
        sub = await bridge.subscribe(subject)  # a responder that never answers
        with trio.move_on_after(0.2) as scope:
            await bridge.request(subject, b"?", timeout=60)
        assert scope.cancelled_caught
        assert (await sub.receive()).data == b"?"
        side = bridge._side
        assert side is not None
        with trio.fail_after(2):
            while side.tasks:  # the asyncio task of the request was cancelled
                await trio.sleep(0.01)
        assert bridge.statistics().requests_in_flight == 0


async def test_calls_fail_fast_when_not_connected() -> None:
    bridge = NatsBridge(BridgeSettings(url="nats://127.0.0.1:1"))
    with pytest.raises(NatsUnavailable, match="stopped"):
        bridge.publish_nowait("x", b"")
    with pytest.raises(NatsUnavailable):
        await bridge.request("x", b"", timeout=1)


async def test_state_changes_are_events(nats_url: str) -> None:
    bus = EventBus()
    async with running(NatsBridge(BridgeSettings(url=nats_url), events=bus, source="n1")):
        pass
    changes = [(e.old_state, e.new_state) for e in bus.history(NatsConnectionChanged)]
    assert changes == [
        ("stopped", "connecting"),
        ("connecting", "connected"),
        ("connected", "stopped"),
    ]


async def test_server_restart_fails_in_flight_requests_fast_then_reconnects(
    tmp_path: object,
) -> None:
    """nats-py lets a request in flight wait out its timeout when the connection drops;
    the bridge fails it at once, refuses new calls while down, and is back after the
    server restarts (same port)."""
    from pathlib import Path

    from mister_smith.distributed import NatsServer

    assert isinstance(tmp_path, Path)
    server = NatsServer(tmp_path)
    url = await server.start()
    bus = EventBus()
    settings = BridgeSettings(url=url, reconnect_wait=0.05, max_reconnect_attempts=200)
    try:
        async with running(NatsBridge(settings, events=bus)) as bridge:
            sub = await bridge.subscribe("silent")
            failed_after = -1.0

            async def ask() -> None:
                nonlocal failed_after
                start = trio.current_time()
                with pytest.raises(NatsUnavailable, match="disconnected"):
                    await bridge.request("silent", b"?", timeout=30)
                failed_after = trio.current_time() - start

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await sub.receive()
                await server.stop()
            assert 0 <= failed_after < 2  # not the 30 s timeout
            assert bridge.state is ConnectionState.DISCONNECTED
            with pytest.raises(NatsUnavailable):
                bridge.publish_nowait("silent", b"")
            await server.start()
            with trio.fail_after(10):
                await bridge.wait_connected()
            # the subscription was made again on the new connection
            await bridge.publish("silent", b"back")
            with trio.fail_after(5):
                assert (await sub.receive()).data == b"back"
            assert bridge.statistics().disconnects == 1
    finally:
        await server.stop()
    states = [e.new_state for e in bus.history(NatsConnectionChanged)]
    assert states[:4] == ["connecting", "connected", "disconnected", "connected"]


async def test_client_giving_up_crashes_the_child_and_supervision_restarts_it(
    tmp_path: object,
) -> None:
    from pathlib import Path

    from mister_smith.distributed import BridgeClosed, NatsServer
    from mister_smith.supervision import open_supervisor

    assert isinstance(tmp_path, Path)
    server = NatsServer(tmp_path)
    url = await server.start()
    settings = BridgeSettings(url=url, reconnect_wait=0.05, max_reconnect_attempts=2)
    bridge = NatsBridge(settings)
    try:
        bus = EventBus()
        async with open_supervisor("s", max_restarts=100, keep_alive=True, events=bus) as sup:
            child = await sup.start_child(bridge.serve, name="nats")
            sub = await bridge.subscribe("kept")
            await server.stop()
            with trio.fail_after(10):
                while child.restarts == 0:
                    await trio.sleep(0.02)
            decision = bus.history(SupervisionDecision)[0]
            assert (decision.child, decision.error_type) == ("nats", BridgeClosed.__name__)
            await server.start()
            with trio.fail_after(15):
                await bridge.wait_connected()
            await bridge.publish("kept", b"again")
            with trio.fail_after(5):
                assert (await sub.receive()).data == b"again"
            await sup.stop()
    finally:
        await server.stop()


async def test_jetstream_publish_fetch_and_ack_is_at_least_once(nats_url: str) -> None:
    """JetStream through the bridge: published messages are fetched in batches; an
    acknowledged one is gone, an unacknowledged one is delivered again after ack_wait."""
    stream = unique("S")
    async with running(NatsBridge(BridgeSettings(url=nats_url))) as bridge:
        await bridge.js_ensure_stream(stream, [f"{stream}.>"])
        await bridge.js_ensure_stream(stream, [f"{stream}.>"])  # idempotent
        sequences = [await bridge.js_publish(f"{stream}.work", b"job-%d" % i) for i in range(3)]
        assert sequences == [1, 2, 3]
        subject = f"{stream}.work"
        batch = await bridge.js_fetch(stream, "workers", subject=subject, ack_wait=0.5)
        assert [m.data for m in batch] == [b"job-0", b"job-1", b"job-2"]
        await bridge.js_ack(batch[0])
        await bridge.js_ack(batch[2])
        await bridge.flush()
        with pytest.raises(ValueError, match="not a JetStream message"):
            await bridge.js_ack(batch[0].__class__("x", "reply.x", {}, b""))
        await trio.sleep(0.7)  # past ack_wait: the unacknowledged one comes back
        again = await bridge.js_fetch(stream, "workers", subject=subject, ack_wait=0.5)
        assert [m.data for m in again] == [b"job-1"]
        await bridge.js_ack(again[0])
        await bridge.flush()
        await trio.sleep(0.7)
        left = await bridge.js_fetch(stream, "workers", subject=subject, timeout=0.3)
        assert left == []
