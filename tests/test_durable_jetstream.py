"""Durable actors over the JetStream store: the actor system takes any ``Store``, so a
durable mailbox kept in NATS replays after a shutdown exactly as the embedded one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from distributed_fixtures import nats_url, unique

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.distributed import (
    BridgeSettings,
    JetStreamStore,
    NatsBridge,
    delete_jetstream_store,
    open_jetstream_store,
)
from mister_smith.persistence import durable_message

__all__ = ["nats_url"]


@durable_message(tag="test.JetWork")
@attrs.frozen
class JetWork:
    """A test message."""

    n: int
    block: bool = False


class Recorder(Actor):
    """Records what it handles; blocks on ``block`` messages while ``blocks``."""

    def __init__(self, seen: list[Any], started: trio.Event | None, blocks: bool) -> None:
        self.seen, self.started, self.blocks = seen, started, blocks

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if isinstance(message, JetWork) and message.block and self.blocks:
            assert self.started is not None
            self.started.set()
            await trio.sleep_forever()
        self.seen.append(message)
        return len(self.seen)


@asynccontextmanager
async def jetstream_store(url: str, prefix: str) -> AsyncIterator[JetStreamStore]:
    bridge = NatsBridge(BridgeSettings(url=url, name="durable-jetstream-test"))
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.serve)
        try:
            async with open_jetstream_store(bridge, prefix=prefix) as store:
                yield store
        finally:
            nursery.cancel_scope.cancel()


async def _cleanup(url: str, prefix: str) -> None:
    bridge = NatsBridge(BridgeSettings(url=url, name="durable-jetstream-cleanup"))
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.serve)
        await delete_jetstream_store(bridge, prefix=prefix)
        nursery.cancel_scope.cancel()


async def test_a_durable_mailbox_in_jetstream_replays_after_a_shutdown(nats_url: str) -> None:
    prefix = unique("durable")
    seen: list[Any] = []
    started = trio.Event()
    try:
        with trio.fail_after(30):
            async with jetstream_store(nats_url, prefix) as store:
                async with open_actor_system(store=store) as system:
                    ref = await system.spawn(
                        Recorder, seen, started, True, name="worker", durable=True
                    )
                    assert await ref.ask(JetWork(0)) == 1  # handled and acked
                    await ref.tell(JetWork(1, block=True))  # in flight at shutdown
                    for n in range(2, 5):
                        await ref.tell(JetWork(n))
                    await started.wait()
                assert len(await store.pending("worker")) == 4

            again: list[Any] = []
            async with jetstream_store(nats_url, prefix) as store:
                async with open_actor_system(store=store) as system:
                    ref = await system.spawn(
                        Recorder, again, None, False, name="worker", durable=True
                    )
                    while len(again) < 4:
                        await trio.sleep(0.01)
                    stats = ref.statistics()
                    assert stats.replayed == 4
                    assert (
                        stats.accepted
                        == stats.handled + stats.dead_lettered + stats.queued + stats.in_flight
                    )
                while await store.pending("worker"):
                    await trio.sleep(0.01)
        assert seen == [JetWork(0)]
        assert again == [JetWork(1, block=True)] + [JetWork(n) for n in range(2, 5)]
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await _cleanup(nats_url, prefix)
