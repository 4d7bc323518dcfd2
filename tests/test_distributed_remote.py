"""Remote refs: the local ActorRef API over NATS, errors mapped to the local types, the
caller's deadline carried to the handler, bad envelopes dead-lettered, backpressure."""

from __future__ import annotations

from functools import partial
from typing import Any

import attrs
import pytest
import trio
from distributed_fixtures import nats_url, open_nodes

from mister_smith.actors import Actor, ActorContext
from mister_smith.distributed import (
    EnvelopeError,
    RemoteActorRef,
    RemoteDeadLetter,
    UnknownMessageType,
    WireFormat,
)
from mister_smith.errors import (
    ActorCrashed,
    ActorNotFound,
    ActorStopped,
    AskTimeout,
    MailboxFull,
)

__all__ = ["nats_url"]

WIRE = WireFormat()


@WIRE.register
@attrs.frozen
class Add:
    a: int
    b: int


@WIRE.register
@attrs.frozen
class Sleep:
    seconds: float


class Worker(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.log.append(message)
        if isinstance(message, Add):
            return message.a + message.b
        if isinstance(message, Sleep):
            await trio.sleep(message.seconds)
            return "slept"
        if message == "boom":
            raise ValueError("boom")
        if message == "object":
            return object()  # cannot cross the wire
        return message


async def test_tell_and_ask_with_registered_types(nats_url: str) -> None:
    log: list[Any] = []
    async with open_nodes(nats_url, wire=WIRE) as [(_, server), (_, client)]:
        await server.spawn(Worker, log, name="worker")
        ref = await client.lookup("worker")
        assert isinstance(ref, RemoteActorRef)
        assert await ref.ask(Add(2, 3), timeout=5) == 5
        await ref.tell(Add(1, 1))
        ref.tell_nowait("plain json")
        assert await ref.ask({"k": [1, 2]}, timeout=5) == {"k": [1, 2]}
        assert log == [Add(2, 3), Add(1, 1), "plain json", {"k": [1, 2]}]  # in send order
        stats = ref.statistics()
        assert (stats.told, stats.asked, stats.replied, stats.failed) == (2, 2, 2, 0)
        assert (await server.lookup("worker")) is not ref  # local on its own node


async def test_errors_map_to_the_local_types(nats_url: str) -> None:
    log: list[Any] = []
    async with open_nodes(nats_url, wire=WIRE) as [(server_system, server), (_, client)]:
        local = await server.spawn(Worker, log, name="worker")
        ref = client.remote("worker")
        with pytest.raises(ActorCrashed, match="ValueError: boom"):
            await ref.ask("boom", timeout=5)
        with pytest.raises(EnvelopeError, match="neither plain JSON"):
            await ref.ask("object", timeout=5)
        with pytest.raises(UnknownMessageType):  # refused before sending
            await ref.ask(object(), timeout=5)
        # a message queued behind a slow one, and the actor stopped meanwhile
        errors: list[BaseException] = []

        async def ask(message: Any) -> None:
            try:
                await ref.ask(message, timeout=5)
            except Exception as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, Sleep(0.3))
            await trio.sleep(0.05)
            nursery.start_soon(ask, "queued")
            await trio.sleep(0.05)
            await server_system.stop(local)
        assert [type(e) for e in errors] == [ActorStopped, ActorStopped]
        # gone: a message racing the withdrawal is answered (stopped); after it, nobody
        # serves the name any more, known at once (not after the timeout)
        with pytest.raises((ActorStopped, ActorNotFound)):
            await ref.ask("racing", timeout=10)
        await trio.sleep(0.2)
        start = trio.current_time()
        with pytest.raises(ActorNotFound, match="no node serves actor 'worker'"):
            await ref.ask("anyone?", timeout=10)
        assert trio.current_time() - start < 1
        with pytest.raises(ActorNotFound):
            await client.lookup("nobody")


async def test_deadline_travels_and_bounds_the_remote_handler(nats_url: str) -> None:
    """The caller's remaining deadline goes in Ms-Deadline-Ms: the remote handler is
    cancelled when it passes (a dead letter, not a crash), and a message still queued at
    its deadline is dropped unseen."""
    log: list[Any] = []
    async with open_nodes(nats_url, wire=WIRE) as [(server_system, server), (_, client)]:
        local = await server.spawn(Worker, log, name="worker")
        ref = client.remote("worker")
        start = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(Sleep(5), timeout=0.3)
        assert 0.3 <= trio.current_time() - start < 1
        with trio.fail_after(2):
            while local.statistics().dead_lettered < 1:
                await trio.sleep(0.01)
        stats = local.statistics()
        assert (stats.failed, stats.handled, stats.dead_lettered) == (0, 0, 1)  # not a crash
        letter = server_system.dead_letters()[-1]
        assert "deadline passed while actor 'worker' handled it" in letter.reason
        assert log == [Sleep(5)]
        # queued behind a 0.4 s message with a 0.2 s deadline: never reaches the handler
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(ref.ask, Sleep(0.4), timeout=5))
            await trio.sleep(0.05)
            with pytest.raises(AskTimeout):
                await ref.ask(Add(1, 1), timeout=0.2)
        assert log == [Sleep(5), Sleep(0.4)]
        assert (
            "deadline passed before actor 'worker' took it"
            in server_system.dead_letters()[-1].reason
        )
        stats = local.statistics()
        assert stats.accepted == stats.handled + stats.dead_lettered


async def test_bad_envelopes_are_dead_lettered_not_raised(nats_url: str) -> None:
    log: list[Any] = []
    async with open_nodes(nats_url, wire=WIRE) as [(_, server), (_, client)]:
        await server.spawn(Worker, log, name="worker")
        subject = server.subject_of("worker")
        good = {"Ms-Kind": "tell", "Ms-Type": "json", "Ms-Schema": "1.0.0", "Ms-Sender": "x"}
        bridge = client.bridge
        await bridge.publish(subject, b"{}", headers={**good, "Ms-Type": "evil.Pickle"})
        await bridge.publish(
            subject, b'{"a": "1", "b": 2}', headers={**good, "Ms-Type": f"{Add.__module__}.Add"}
        )
        await bridge.publish(subject, b"\x80\x04", headers=good)
        await bridge.publish(subject, b"1", headers={"Ms-Kind": "nope"})
        await bridge.publish(subject, b"1")  # no headers at all
        reply = await bridge.request(subject, b"{", headers={**good, "Ms-Kind": "ask"}, timeout=5)
        assert reply.headers["Ms-Kind"] == "error"
        assert b"bad_envelope" in reply.data
        with trio.fail_after(2):
            while len(server.dead_letters()) < 6:
                await trio.sleep(0.01)
        reasons = [letter.reason for letter in server.dead_letters()]
        assert "not registered" in reasons[0]
        assert "does not match" in reasons[1]
        assert "a" in reasons[1]
        assert "not valid JSON" in reasons[2]
        assert "Ms-Kind" in reasons[3]
        assert "Ms-Kind" in reasons[4]
        assert len(server.events.history(RemoteDeadLetter)) == 6
        assert log == []  # nothing reached the actor
        assert await client.remote("worker").ask(Add(1, 2), timeout=5) == 3  # still serving


async def test_backpressure_across_the_bridge(nats_url: str) -> None:
    """The sender's outbound bound refuses tell_nowait (MailboxFull) and makes tell
    wait; on the receiving node a slow actor's full mailbox fills the bounded
    subscription and the overflow is dropped and counted: every message sent is either
    accepted by the actor or counted as dropped."""
    log: list[Any] = []
    async with open_nodes(nats_url, wire=WIRE, outbound_bytes=2048, inbound_capacity=4) as [
        (_, server),
        (_, client),
    ]:
        local = await server.spawn(Worker, log, name="worker", mailbox_capacity=2)
        ref = client.remote("worker")
        sent = 0
        with pytest.raises(MailboxFull):
            for _ in range(100):
                ref.tell_nowait(Sleep(0.05))
                sent += 1
        assert 0 < sent < 20
        for _ in range(60 - sent):
            await ref.tell(Sleep(0.05))  # waits for room instead
        await client.bridge.flush()
        subscription_dropped = 0
        with trio.fail_after(10):
            while True:
                stats = local.statistics()
                subscription_dropped = server.bridge.statistics().dropped
                if (
                    stats.accepted + subscription_dropped >= 60
                    and stats.queued == 0
                    and stats.in_flight == 0
                ):
                    break
                await trio.sleep(0.02)
        assert subscription_dropped > 0
        assert stats.accepted + subscription_dropped == 60
        assert stats.accepted == stats.handled
