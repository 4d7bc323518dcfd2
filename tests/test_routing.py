"""Routing: pure strategy properties and the MessageBus over real actors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.actors import Actor, ActorContext, ActorRef, open_actor_system
from mister_smith.errors import DispatchQueueFull, NoRouteError
from mister_smith.transport import (
    CapabilityBasedRouting,
    ConsistentHashRouting,
    LoadBalancedRouting,
    MessageBus,
    PriorityScheduler,
    RoundRobinRouting,
    Routed,
    open_message_bus,
)


@attrs.frozen
class _Stats:
    load: int


@attrs.define
class FakeRef:
    """Duck-typed stand-in for an ActorRef: what strategies read."""

    name: str
    load: int = 0
    capabilities: frozenset[str] = frozenset()
    is_alive: bool = True

    def statistics(self) -> _Stats:
        return _Stats(self.load)


def refs(fakes: Sequence[FakeRef]) -> list[ActorRef]:
    return cast(list[ActorRef], list(fakes))


loads = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=30)


@given(loads)
def test_load_balanced_never_picks_a_busier_member_when_an_idler_exists(
    member_loads: list[int],
) -> None:
    fakes = [FakeRef(f"m{i}", load) for i, load in enumerate(member_loads)]
    chosen = cast(FakeRef, LoadBalancedRouting().select_recipient("x", refs(fakes)))
    assert chosen.load == min(member_loads)
    assert all(f.load >= chosen.load for f in fakes)


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=12, unique=True),
    st.lists(st.text(max_size=16), min_size=1, max_size=200),
    st.data(),
)
def test_consistent_hashing_moves_only_the_departed_members_keys(
    names: list[str], keys: list[str], data: st.DataObject
) -> None:
    ring = ConsistentHashRouting(virtual_nodes=16)
    departed = data.draw(st.sampled_from(names))
    remaining = [n for n in names if n != departed]
    for key in keys:
        before = ring.owner(key, names)
        after = ring.owner(key, remaining)
        if before != departed:
            assert after == before
        else:
            assert after in remaining


def test_consistent_hashing_is_sticky_and_spreads_keys() -> None:
    ring = ConsistentHashRouting()
    names = [f"agent-{i}" for i in range(5)]
    owners = {ring.owner(f"conversation-{k}", names) for k in range(500)}
    assert owners == set(names)
    assert ring.owner("c-1", names) == ring.owner("c-1", list(reversed(names)))


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=10), st.booleans()),
        min_size=1,
        max_size=80,
    ),
    st.integers(min_value=0, max_value=10),
)
def test_priority_scheduler_bounds_overtaking(ops: list[tuple[int, bool]], bound: int) -> None:
    """Each op pushes an item; when its flag is set, one item is popped afterwards."""
    scheduler = PriorityScheduler(max_overtakes=bound)
    pushed_at: dict[int, int] = {}
    popped: list[int] = []
    for seq, (priority, pop_after) in enumerate(ops):
        scheduler.push(seq, priority)
        pushed_at[seq] = len(popped)
        if pop_after:
            popped.append(scheduler.pop())
    while len(scheduler):
        popped.append(scheduler.pop())
    assert sorted(popped) == list(range(len(ops)))
    position = {item: index for index, item in enumerate(popped)}
    for item in popped:
        overtakers = [
            other
            for other in popped[pushed_at[item] : position[item]]
            if other > item  # pushed later, popped earlier
        ]
        assert len(overtakers) <= bound


@given(st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=60))
def test_priority_scheduler_without_pressure_is_priority_then_fifo(priorities: list[int]) -> None:
    scheduler = PriorityScheduler(max_overtakes=10_000)
    for seq, priority in enumerate(priorities):
        scheduler.push(seq, priority)
    order = [scheduler.pop() for _ in priorities]
    assert order == sorted(range(len(priorities)), key=lambda s: (-priorities[s], s))
    with pytest.raises(IndexError):
        scheduler.pop()


def test_capability_routing_requires_every_capability() -> None:
    fakes = [
        FakeRef("coder", 3, frozenset({"python", "tests"})),
        FakeRef("writer", 0, frozenset({"prose"})),
        FakeRef("senior", 1, frozenset({"python", "tests", "review"})),
    ]
    strategy = CapabilityBasedRouting()
    chosen = strategy.select_recipient(Routed("fix", requires={"python"}), refs(fakes))
    assert cast(FakeRef, chosen).name == "senior"  # capable and least loaded
    assert strategy.select_recipient("no requirements", refs(fakes)) is None
    with pytest.raises(NoRouteError, match="gpu"):
        strategy.select_recipient({"requires": ["gpu"]}, refs(fakes))


def test_round_robin_takes_turns() -> None:
    fakes = refs([FakeRef("a"), FakeRef("b"), FakeRef("c")])
    strategy = RoundRobinRouting()
    names = [cast(FakeRef, strategy.select_recipient(i, fakes)).name for i in range(6)]
    assert names == ["a", "b", "c", "a", "b", "c"]


class Recorder(Actor):
    def __init__(self, log: list[tuple[str, Any]], delay: float = 0.0) -> None:
        self.log = log
        self.delay = delay

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if self.delay:
            await trio.sleep(self.delay)
        self.log.append((ctx.name, message))
        return ctx.name


async def test_bus_routes_to_live_members_and_skips_stopped_ones(autojump_clock: Any) -> None:
    log: list[tuple[str, Any]] = []
    async with open_actor_system() as system:
        a = await system.spawn(Recorder, log, name="a", capabilities=["python"])
        b = await system.spawn(Recorder, log, name="b", capabilities=["prose"])
        bus = MessageBus()
        bus.join("team", a, b)
        assert await bus.ask("team", Routed("code it", requires={"python"})) == "a"
        assert await bus.ask("team", Routed("write it", requires={"prose"})) == "b"
        first = await bus.ask("team", Routed("chat", key="conversation-7"))
        assert await bus.ask("team", Routed("chat again", key="conversation-7")) == first
        await a.stop()
        assert bus.members("team") == [b]
        assert await bus.ask("team", Routed("chat", key="conversation-7")) == "b"
        with pytest.raises(NoRouteError):
            await bus.send("team", Routed("code", requires={"python"}))
        with pytest.raises(NoRouteError):
            bus.route("nobody", "x")
        with pytest.raises(NoRouteError, match="no routing strategy named"):
            bus.route("team", "x", strategy="nonsense")
        await b.stop()
        with pytest.raises(NoRouteError, match="no live member"):
            bus.route("team", "x")
        stats = bus.statistics()
        assert stats.routed == 5
        assert stats.by_strategy == {"capability": 2, "consistent_hash": 3}
        assert stats.no_route == 4


async def test_load_balanced_bus_uses_live_mailbox_depth(autojump_clock: Any) -> None:
    log: list[tuple[str, Any]] = []
    async with open_actor_system() as system:
        slow = await system.spawn(Recorder, log, 10.0, name="slow")
        fast = await system.spawn(Recorder, log, 0.0, name="fast")
        bus = MessageBus()
        bus.join("pool", slow, fast)
        await slow.tell("busy work")
        await trio.sleep(0.1)  # slow is now handling it: load 1
        chosen = []
        for i in range(3):
            chosen.append(await bus.send("pool", i))
            await trio.sleep(0.1)  # fast handles it at once; slow is still busy
        assert chosen == [fast, fast, fast]
        # Without time to drain, a pending message counts as load like a busy one.
        assert fast.load == 0
        fast.tell_nowait("pending")  # no checkpoint: fast cannot run before we look
        assert fast.load == 1


async def test_submitted_messages_leave_in_priority_order(autojump_clock: Any) -> None:
    log: list[tuple[str, Any]] = []
    async with open_actor_system() as system, open_message_bus() as bus:
        worker = await system.spawn(Recorder, log, 1.0, name="w", mailbox_capacity=1)
        bus.join("w", worker)
        await worker.tell("first")  # occupies the worker
        await trio.sleep(0.5)
        for label, priority in [("low", 1), ("mid", 5), ("high", 10), ("mid2", 5)]:
            bus.submit("w", Routed(label, priority=priority))
        await trio.sleep(20)
        assert [message for _, message in log] == ["first", "high", "mid", "mid2", "low"]


async def test_submit_needs_the_dispatcher() -> None:
    bus = MessageBus()
    bus.join("g")
    with pytest.raises(RuntimeError, match="open_message_bus"):
        bus.submit("g", "x")


async def test_submit_is_bounded_and_refuses_with_a_typed_error(autojump_clock: Any) -> None:
    log: list[tuple[str, Any]] = []
    async with open_actor_system() as system, open_message_bus(max_queued=3) as bus:
        worker = await system.spawn(Recorder, log, 1.0, name="w", mailbox_capacity=1)
        bus.join("w", worker)
        await worker.tell("first")  # occupies the worker; the dispatcher holds one more
        await trio.sleep(0.5)
        accepted = 0
        with pytest.raises(DispatchQueueFull, match="'w' is full \\(3 messages\\)"):
            for n in range(100_000):
                bus.submit("w", Routed(n, priority=1))
                accepted += 1
        assert accepted == 3
        assert bus.statistics().refused == 1
        assert bus.statistics().queued_by_priority == 3
        await trio.sleep(10)
        assert [message for _, message in log] == ["first", 0, 1, 2]
    with pytest.raises(ValueError, match="max_queued"):
        MessageBus(max_queued=0)
