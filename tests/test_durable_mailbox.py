"""Durable mailboxes: ``spawn(..., durable=True)`` keeps every accepted message in the
store until it was handled (acked) or dropped (dead-lettered), and replays what was left
pending when the same name is spawned again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import Actor, ActorContext, DurableActorRef, open_actor_system
from mister_smith.config import AgentConfig, PersistenceSettings
from mister_smith.errors import (
    ActorStopped,
    DurabilityUnavailable,
    MessageNotDurable,
)
from mister_smith.persistence import (
    DEFAULT_CODEC,
    MessageCodec,
    SQLiteStore,
    durable_message,
    open_sqlite_store,
    to_payload,
)
from mister_smith.runtime import RuntimeManager


@durable_message
@attrs.frozen
class Work:
    """A test message."""

    n: int
    label: str = ""


@attrs.frozen
class Unregistered:
    """An attrs class nobody registered."""

    n: int


class Recorder(Actor):
    """Records what it handles in a list shared across incarnations and runs; crashes on
    ``label == "crash"``, waits forever on ``label == "block"``."""

    def __init__(
        self, seen: list[Any], started: trio.Event | None = None, blocks: bool = True
    ) -> None:
        self.seen = seen
        self.started = started
        self.blocks = blocks

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if isinstance(message, Work) and message.label == "crash":
            raise ValueError("poison")
        if isinstance(message, Work) and message.label == "block" and self.blocks:
            if self.started is not None:
                self.started.set()
            await trio.sleep_forever()
        self.seen.append(message)
        return len(self.seen)


def settings(tmp_path: Path) -> PersistenceSettings:
    return PersistenceSettings(path=str(tmp_path / "store.db"))


async def settle(store: SQLiteStore, mailbox: str) -> None:
    """Wait (real time, bounded) until ``mailbox`` has nothing pending."""
    with trio.fail_after(5):
        while await store.pending(mailbox):
            await trio.sleep(0.001)


async def test_tell_persists_then_handles_and_acks(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, name="worker", durable=True)
            assert isinstance(ref, DurableActorRef)
            for n in range(20):
                assert await ref.tell(Work(n)) is True
            assert await ref.ask(Work(99)) == 21
            await settle(store, "worker")
            stats = system.statistics()
        assert seen == [Work(n) for n in range(20)] + [Work(99)]
        assert (stats.accepted, stats.handled, stats.dead_lettered, stats.replayed) == (
            21,
            21,
            0,
            0,
        )
        counts = store.statistics()
        assert (counts.appended, counts.acked, counts.pending) == (21, 21, 0)


async def test_plain_json_messages_are_durable_too(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:  # noqa: SIM117 (the store outlives the system)
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, name="json", durable=True)
            await ref.tell({"job": [1, 2.5, None, "x"]})
            await settle(store, "json")
    assert seen == [{"job": [1, 2.5, None, "x"]}]


async def test_pending_messages_are_replayed_first_after_a_shutdown(tmp_path: Path) -> None:
    seen: list[Any] = []
    started = trio.Event()
    async with open_sqlite_store(settings(tmp_path)) as store:
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, started, name="worker", durable=True)
            await ref.tell(Work(0, "block"))  # in flight at shutdown
            for n in range(1, 6):
                await ref.tell(Work(n))
            await started.wait()
        # the system shut down: the in-flight and queued messages stay pending
        assert [m.seq for m in await store.pending("worker")] == sorted(
            m.seq for m in await store.pending("worker")
        )
        assert len(await store.pending("worker")) == 6
        assert await store.dead_letters("worker") == []

    again: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:  # noqa: SIM117 (the store outlives the system)
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, again, None, False, name="worker", durable=True)
            await ref.tell(Work(6))
            stats = ref.statistics()
            assert stats.replayed == 6
            assert stats.accepted == 7
            assert (
                stats.accepted
                == stats.handled + stats.dead_lettered + stats.queued + stats.in_flight
            )
            with trio.fail_after(5):
                while len(again) < 7:
                    await trio.sleep(0.001)
            stats = ref.statistics()
            # the accounting invariant holds with the replayed messages counted
            assert (
                stats.accepted
                == stats.handled + stats.dead_lettered + stats.queued + stats.in_flight
            )
            assert system.statistics().replayed == 6
    # oldest first (the one in flight at shutdown too), the new one after
    assert again == [Work(0, "block")] + [Work(n) for n in range(1, 7)]


async def test_a_message_that_cannot_be_encoded_is_refused_at_tell(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, name="worker", durable=True)
            with pytest.raises(MessageNotDurable, match="Unregistered is not registered"):
                await ref.tell(Unregistered(1))
            with pytest.raises(MessageNotDurable, match="non-finite"):
                await ref.tell({"x": float("nan")})
            with pytest.raises(MessageNotDurable, match="neither plain JSON"):
                await ref.ask(object())
            assert ref.statistics().accepted == 0
        assert store.statistics().appended == 0


async def test_a_repeated_message_id_is_delivered_once(tmp_path: Path) -> None:
    seen: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:  # noqa: SIM117 (the store outlives the system)
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, name="worker", durable=True)
            assert isinstance(ref, DurableActorRef)
            assert await ref.tell(Work(1), message_id="order-1") is True
            await settle(store, "worker")
            assert await ref.tell(Work(1), message_id="order-1") is False  # within the window
            assert await ref.tell(Work(2), message_id="order-2") is True
            await settle(store, "worker")
            assert ref.statistics().accepted == 2
    assert seen == [Work(1), Work(2)]


async def test_dropped_messages_are_dead_lettered_in_the_store(tmp_path: Path) -> None:
    seen: list[Any] = []
    started = trio.Event()
    async with open_sqlite_store(settings(tmp_path)) as store:
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, started, name="worker", durable=True)
            await ref.tell(Work(1, "crash"))  # poison: crashes the handler, is restarted
            await ref.tell(Work(2))
            await settle(store, "worker")
            await ref.tell(Work(3, "block"))
            await ref.tell(Work(4))
            await started.wait()
            await ref.stop()  # stopped for good: in flight and queued become dead letters
            with pytest.raises(ActorStopped):
                await ref.tell(Work(5))
            await settle(store, "worker")
            stats = system.statistics()
        reasons = [(d.seq, d.reason) for d in await store.dead_letters("worker")]
    assert seen == [Work(2)]
    assert [reason for _, reason in reasons] == [
        "crashed while handling it: ValueError('poison')",
        "stopped while handling it",
        "actor stopped",
    ]
    assert stats.accepted == stats.handled + stats.dead_lettered


async def test_a_stored_message_this_process_cannot_read_is_dead_lettered(tmp_path: Path) -> None:
    other = MessageCodec()
    other.register(Unregistered, tag="elsewhere.Unregistered")
    seen: list[Any] = []
    async with open_sqlite_store(settings(tmp_path)) as store:
        await store.append("worker", to_payload(other, Unregistered(1)))
        await store.append("worker", to_payload(DEFAULT_CODEC, Work(2)))
        async with open_actor_system(store=store) as system:
            ref = await system.spawn(Recorder, seen, name="worker", durable=True)
            await settle(store, "worker")
            stats = ref.statistics()
        dead = await store.dead_letters("worker")
    assert seen == [Work(2)]
    assert (stats.replayed, stats.dead_lettered, stats.handled) == (2, 1, 1)
    assert "not registered" in dead[0].reason


async def test_durability_needs_a_store_a_name_and_awaited_sends(tmp_path: Path) -> None:
    async with open_actor_system() as system:
        with pytest.raises(DurabilityUnavailable, match="has no store"):
            await system.spawn(Recorder, [], name="worker", durable=True)
    async with open_sqlite_store(settings(tmp_path)) as store:  # noqa: SIM117 (the store outlives the system)
        async with open_actor_system(store=store) as system:
            with pytest.raises(ValueError, match="explicit name"):
                await system.spawn(Recorder, [], durable=True)
            ref = await system.spawn(Recorder, [], name="worker", durable=True)
            with pytest.raises(DurabilityUnavailable, match="tell_nowait"):
                ref.tell_nowait(Work(1))


async def test_the_runtime_opens_its_store_only_for_durable_actors(tmp_path: Path) -> None:
    config = AgentConfig(persistence=settings(tmp_path))
    async with RuntimeManager.open(config) as runtime:
        await runtime.actor_system.spawn(Recorder, [], name="plain")
        assert not (tmp_path / "store.db").exists()
        seen: list[Any] = []
        ref = await runtime.actor_system.spawn(Recorder, seen, name="kept", durable=True)
        assert await ref.ask(Work(1)) == 1
        assert (tmp_path / "store.db").exists()
    # closed on exit: another runtime can open it, and finds nothing pending
    async with open_sqlite_store(settings(tmp_path)) as store:
        assert await store.pending("kept") == []
        assert store.statistics().pending == 0
