"""The routing benchmark's live-receivers baseline sends where ours sends.

That row is only fair if the raw sends wake as many receivers as the bus's deliveries
wake actors: its recipients are modelled, so check the model against the bus. No timing
is asserted here.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bench_routing import _MESSAGES, _recipients
from mister_smith.actors import Actor, ActorContext, ActorRef, open_actor_system
from mister_smith.transport import MessageBus


class _Idle(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        return None


@pytest.mark.parametrize("strategy", ["load_balanced", "round_robin", "capability"])
async def test_the_live_baseline_sends_to_the_members_ours_chooses(
    strategy: str, autojump_clock: Any
) -> None:
    members, loops = 12, 40
    async with open_actor_system(mailbox_capacity=loops + 1) as system:
        refs: list[ActorRef] = [
            await system.spawn(_Idle, capabilities=["python"] if i % 2 else [])
            for i in range(members)
        ]  # as the benchmark spawns them
        bus = MessageBus()
        bus.join("group", *refs)
        chosen = []
        for i in range(loops):
            message = _MESSAGES[strategy](i)
            recipient = bus.route("group", message, strategy=strategy)
            recipient.tell_nowait(message)
            chosen.append(refs.index(recipient))
        assert chosen == _recipients(strategy, members, loops)
        bus.close()
        await system.supervisor.stop()


def test_the_hash_baseline_spreads_keys_as_the_ring_does() -> None:
    recipients = _recipients("consistent_hash", 1_000, 2_000)
    # 97 conversation keys: as many receivers as distinct owners, each key always one.
    assert 80 <= len(set(recipients)) <= 97
    assert recipients[:97] == recipients[97:194]
