"""SpawnController on virtual time: at most ``max_agents`` live actors, refusal or a
bounded wait beyond that, and ``active`` exact however the actors end."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
import trio
import trio.testing

from mister_smith.actors import (
    Actor,
    ActorContext,
    ActorRef,
    SpawnController,
    SpawnStatistics,
    open_actor_system,
)
from mister_smith.errors import (
    ActorCrashed,
    ActorNameTaken,
    ActorNotFound,
    EscalatedError,
    PoolExhausted,
    RecoveryStrategy,
    ResourceError,
)
from mister_smith.events import AgentSpawned
from mister_smith.types import Restart


class Worker(Actor):
    """``("sleep", s)`` sleeps; ``("crash", tag)`` raises; anything else is echoed."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
        if isinstance(message, tuple) and message[0] == "crash":
            raise ValueError(message[1])
        return message


def test_max_agents_must_be_positive() -> None:
    async def main() -> None:
        async with open_actor_system() as system:
            for bad in (0, -3):
                with pytest.raises(ValueError, match="max_agents"):
                    SpawnController(system, bad)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_beyond_the_bound_spawn_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 2)
        first = await controller.spawn_bounded(Worker, name="one")
        await controller.spawn_bounded(Worker, name="two")
        assert controller.active == 2
        with pytest.raises(PoolExhausted, match="2 live agents") as refused:
            await controller.spawn_bounded(Worker, name="three")
        assert isinstance(refused.value, ResourceError)
        assert trio.current_time() == 0.0
        assert system.get("three") is None
        assert len(system.events.history(AgentSpawned)) == 2
        assert controller.statistics() == SpawnStatistics(
            max_agents=2, active=2, spawned=2, refused=1
        )
        # Spawning directly through the system is not counted against the bound.
        await system.spawn(Worker, name="unbounded")
        assert controller.active == 2
        assert await first.ask("still fine") == "still fine"


async def test_a_bounded_wait_is_refused_after_exactly_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        await controller.spawn_bounded(Worker)
        await trio.sleep(1)
        with pytest.raises(PoolExhausted, match=r"none freed within 2\.5 s"):
            await controller.spawn_bounded(Worker, timeout=2.5)
        assert trio.current_time() == 3.5
        assert controller.statistics() == SpawnStatistics(1, 1, 1, 1)


async def test_a_zero_timeout_spawns_when_a_slot_is_free(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 5)
        ref = await controller.spawn_bounded(Worker, timeout=0)
        assert ref.is_alive
        assert controller.active == 1


async def test_a_negative_timeout_is_refused_up_front(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        with pytest.raises(ValueError, match="timeout"):
            await controller.spawn_bounded(Worker, timeout=-1)
        assert controller.active == 0


async def test_a_waiting_spawn_gets_the_slot_freed_by_a_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stop_later(ref: ActorRef) -> None:
        await trio.sleep(2)
        await ref.stop()

    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        holder = await controller.spawn_bounded(Worker)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_later, holder)
            ref = await controller.spawn_bounded(Worker, name="waited", timeout=10)
            assert trio.current_time() == 2.0
        assert ref.is_alive
        assert not holder.is_alive
        assert controller.active == 1
        assert controller.statistics().refused == 0


async def test_waiting_spawns_are_served_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[tuple[str, float]] = []

    async def wait_for_slot(controller: SpawnController, name: str) -> None:
        await controller.spawn_bounded(Worker, name=name, timeout=100)
        got.append((name, trio.current_time()))

    async with open_actor_system() as system:
        controller = SpawnController(system, 2)
        a = await controller.spawn_bounded(Worker)
        b = await controller.spawn_bounded(Worker)
        async with trio.open_nursery() as nursery:
            for name in ("first", "second", "third"):
                nursery.start_soon(wait_for_slot, controller, name)
                await trio.sleep(0.1)
            await trio.sleep(1)
            await a.stop()
            await trio.sleep(1)
            await b.stop()
            await trio.sleep(1)
            assert controller.active == 2
            await system.stop("first")
        assert [name for name, _ in got] == ["first", "second", "third"]
        assert [when for _, when in got] == pytest.approx([1.3, 2.3, 3.3])
        assert controller.active == 2


async def test_the_slot_is_released_on_stop(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 3)
        refs = [await controller.spawn_bounded(Worker) for _ in range(3)]
        for expected, ref in zip((2, 1, 0), refs, strict=True):
            await ref.stop()
            assert controller.active == expected
        await refs[0].stop()  # a second stop releases nothing more
        assert controller.active == 0
        assert controller.statistics().spawned == 3


async def test_the_slot_is_released_when_a_temporary_actor_crashes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 2)
        ref = await controller.spawn_bounded(Worker, restart=Restart.TEMPORARY)
        await ref.tell(("sleep", 2))
        await ref.tell(("crash", "x"))
        await ref.wait_stopped()
        assert trio.current_time() == 2.0
        assert controller.active == 0


async def test_the_slot_is_kept_while_a_crashed_actor_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        ref = await controller.spawn_bounded(Worker)
        for n in range(3):
            with pytest.raises(ActorCrashed):
                await ref.ask(("crash", n))
            assert controller.active == 1
        assert await ref.ask("back") == "back"
        with pytest.raises(PoolExhausted):
            await controller.spawn_bounded(Worker)


async def test_slots_are_released_at_system_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 5)
        for _ in range(4):
            ref = await controller.spawn_bounded(Worker)
            await ref.tell(("sleep", 10))
        assert controller.active == 4
        await trio.sleep(1)
    assert controller.active == 0
    assert controller.statistics() == SpawnStatistics(5, 0, 4, 0)


async def test_slots_are_released_when_an_actor_spends_its_budget_and_when_the_system_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(EscalatedError):
        async with open_actor_system(max_restarts=1) as system:
            controller = SpawnController(system, 3)
            flaky = await controller.spawn_bounded(Worker)
            await controller.spawn_bounded(Worker)
            await flaky.tell(("crash", 1))
            await flaky.tell(("crash", 2))
            await trio.sleep(10)
            # flaky spent its own budget: stopped alone, its slot given back.
            assert controller.active == 1
            doomed = await controller.spawn_bounded(Worker, recovery=RecoveryStrategy.Escalate())
            await doomed.tell(("crash", 3))  # asks to fail the whole system
            await trio.sleep(10)
    assert controller.active == 0


async def test_a_failed_spawn_gives_its_slot_back(autojump_clock: trio.testing.MockClock) -> None:
    class BadStart(Worker):
        async def on_start(self, ctx: ActorContext) -> None:
            await trio.sleep(1)
            raise RuntimeError("cannot start")

    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        with pytest.raises(RuntimeError, match="cannot start"):
            await controller.spawn_bounded(BadStart)
        assert controller.active == 0
        taken = await controller.spawn_bounded(Worker, name="taken")
        with pytest.raises(PoolExhausted):
            await controller.spawn_bounded(Worker, name="taken")
        await taken.stop()
        await controller.spawn_bounded(Worker, name="other")
        with pytest.raises(ActorNameTaken):
            await SpawnController(system, 1).spawn_bounded(Worker, name="other")
        assert controller.active == 1
        assert controller.statistics().spawned == 2


async def test_an_actor_that_ends_during_its_spawn_frees_its_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Quitter(Worker):
        async def on_start(self, ctx: ActorContext) -> None:
            await ctx.ref.stop()

    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        ref = await controller.spawn_bounded(Quitter)
        assert not ref.is_alive
        assert controller.active == 0
        assert await (await controller.spawn_bounded(Worker)).ask("ok") == "ok"


async def test_cancelling_a_spawn_waiting_for_a_slot_takes_no_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        holder = await controller.spawn_bounded(Worker)
        with trio.move_on_after(2) as scope:
            await controller.spawn_bounded(Worker, name="cancelled", timeout=10)
        assert scope.cancelled_caught
        assert trio.current_time() == 2.0
        assert controller.active == 1
        assert system.get("cancelled") is None
        await holder.stop()
        assert controller.active == 0


async def test_close_stops_tracking_terminations(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 2)
        ref = await controller.spawn_bounded(Worker)
        controller.close()
        await ref.stop()
        assert controller.active == 1  # no longer told about endings


async def cancelled_spawn_bounded(
    controller: SpawnController, name: str, *, cancel_after: float, factory: type[Actor]
) -> bool:
    """Call spawn_bounded under a scope cancelled after ``cancel_after`` s (0: at once);
    say whether it had returned (or raised) by t=5.

    Written so that it cannot hang: a spawn stuck at t=5 is unstuck by stopping the
    actor by name.
    """
    finished = trio.Event()

    async def spawner() -> None:
        try:
            with trio.CancelScope() as scope:
                if cancel_after == 0:
                    scope.cancel()
                else:
                    scope.deadline = trio.current_time() + cancel_after
                await controller.spawn_bounded(factory, name=name)
        finally:
            finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spawner)
        await trio.sleep(5)
        in_time = finished.is_set()
        if not in_time:
            with suppress(ActorNotFound):
                await controller.system.stop(name)
    return in_time


async def test_a_spawn_cancelled_before_it_starts_takes_no_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        assert await cancelled_spawn_bounded(controller, "never", cancel_after=0, factory=Worker)
        assert system.actors() == []
        assert controller.active == 0


class SlowStart(Worker):
    async def on_start(self, ctx: ActorContext) -> None:
        await trio.sleep(1)


async def test_a_spawn_cancelled_during_on_start_leaves_the_count_exact(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        controller = SpawnController(system, 1)
        in_time = await cancelled_spawn_bounded(
            controller, "slow", cancel_after=0.5, factory=SlowStart
        )
        assert in_time
        assert system.actors() == []
        assert controller.active == 0
