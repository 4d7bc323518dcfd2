"""Regressions found by the chaos soak (``tests/properties/test_chaos_soak.py``).

Each test is the smallest reproduction of a bug the soak found, run on the real
runtime with its default configuration and virtual time.
"""

from __future__ import annotations

from typing import Any

import trio

from mister_smith.actors import Actor, ActorContext
from mister_smith.config import AgentConfig, SupervisionSettings
from mister_smith.errors import SupervisionError
from mister_smith.events import AgentStopped, SupervisionDecision
from mister_smith.runtime import RuntimeManager


class Escalating(Actor):
    """Escalates explicitly on ``"escalate"``, crashes on ``"poison"``; answers
    anything else."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "escalate":
            raise SupervisionError(f"explicit escalation by {ctx.name}")
        if message == "poison":
            raise ValueError(f"poison for {ctx.name}")
        return (message, ctx.incarnation)


class SlowStart(Escalating):
    """Takes a second to start."""

    async def on_start(self, ctx: ActorContext) -> None:
        await trio.sleep(1)


async def test_a_domain_failing_while_its_restarted_parent_starts_it_is_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A domain whose member fails as soon as the domain's restarted parent starts it
    again gave up during that start; its parent took that for a start failure and
    dropped the domain and its members for good ("failed"), without spending any
    budget, and failed its own restart too."""
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        inner = await system.start_domain("inner")
        member = await system.spawn(Escalating, name="member", supervisor=inner)
        # More members, the first slow to start: ``inner`` is still starting them
        # when ``member`` (started before them) fails.
        await system.spawn(SlowStart, name="slow", supervisor=inner)
        await system.spawn(Escalating, name="last", supervisor=inner)
        sibling = await system.spawn(Escalating, name="sibling")
        # Both domains give up at once; the root restarts ``actors``, which starts
        # ``inner`` again, whose member then handles its second escalation at once.
        member.tell_nowait("escalate")
        member.tell_nowait("escalate")
        sibling.tell_nowait("escalate")
        await trio.sleep(10)
        assert rt.events.history(AgentStopped) == []
        assert await member.ask("still there?") == ("still there?", 3)
        assert await sibling.ask("still there?") == ("still there?", 2)
        assert system.domain("inner") is inner
        restarts = [
            (d.supervisor, d.child, d.action.value)
            for d in rt.events.history(SupervisionDecision)
            if d.action.value == "restart"
        ]
        # One level at a time: inner's second give-up is restarted by ``actors``.
        assert restarts == [("root", "actors", "restart"), ("actors", "inner", "restart")]


async def test_a_spawn_overflowing_the_default_domain_skips_a_restarting_sibling(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With the default domain full, a spawn went to the first overflow sibling with
    room even while that sibling waited for its restart, and was refused with
    ``ActorStopped`` though the default domain (where it was asked for) ran."""
    config = AgentConfig(
        supervision=SupervisionSettings(
            max_children_per_supervisor=2, backoff_initial="2s", backoff_jitter=0
        )
    )
    async with RuntimeManager.open(config) as rt:
        system = rt.actor_system
        refs = [await system.spawn(Escalating, name=f"w{i}") for i in range(3)]
        assert system.domain("actors#2").members() == ["w2"]
        refs[2].tell_nowait("escalate")  # ``actors#2`` gives up; back in 2 s
        await trio.sleep(0.5)
        late = await system.spawn(Escalating, name="late")
        assert await late.ask("hi") == ("hi", 1)
        assert trio.current_time() == 0.5
        assert await refs[2].ask("back?") == ("back?", 2)  # kept by its domain


async def test_an_actor_stopped_while_its_domain_restarts_skips_none_of_the_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A domain's supervisor started its actors again by iterating the domain's live
    spec list; an actor stopped for good meanwhile (its budget spent on a message
    queued for it) was removed from that list mid-iteration, so the next actor was
    skipped: never started again, ``RESTARTING`` for ever, its messages never handled."""
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        fragile = await system.spawn(Escalating, name="fragile", max_restarts=0)
        slow = await system.spawn(SlowStart, name="slow")  # being started again...
        last = await system.spawn(Escalating, name="last")
        fragile.tell_nowait("escalate")  # ``actors`` gives up; the root restarts it
        fragile.tell_nowait("poison")  # ...when ``fragile`` spends its budget of 0
        await fragile.wait_stopped()
        # Whichever the iteration was at, the one after it was skipped.
        assert await slow.ask("started again?", timeout=5) == ("started again?", 2)
        assert await last.ask("started again?", timeout=5) == ("started again?", 2)


# -- found by the soak, left to the lead (design choices, see the issue note) ---------------


class FailsItsSecondStart(Escalating):
    """Its second incarnation fails in ``on_start`` (a transient start-up failure)."""

    async def on_start(self, ctx: ActorContext) -> None:
        if ctx.incarnation == 2:
            raise ValueError("cannot start right now")


async def test_a_member_failing_to_start_when_its_domain_restarts_is_not_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        team = await system.start_domain("team")
        member = await system.spawn(FailsItsSecondStart, name="member", supervisor=team)
        trigger = await system.spawn(Escalating, name="trigger", supervisor=team)
        trigger.tell_nowait("escalate")  # ``team`` gives up; ``actors`` restarts it
        await trio.sleep(10)
        # Whoever pays for the failed start (the member's budget, as for any crash of
        # it, or the domain's, as in OTP), a transient one must not end the member.
        assert rt.events.history(AgentStopped) == []
        assert await member.ask("back?") == ("back?", 3)


async def test_spawning_while_the_default_domain_restarts_waits_for_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = AgentConfig(supervision=SupervisionSettings(backoff_initial="2s", backoff_jitter=0))
    async with RuntimeManager.open(config) as rt:
        system = rt.actor_system
        escalating = await system.spawn(Escalating, name="escalating")
        escalating.tell_nowait("escalate")  # ``actors`` gives up; back in 2 s
        await trio.sleep(0.5)
        assert rt.supervision.state == "running"
        late = await system.spawn(Escalating, name="late")
        assert await late.ask("hi") == ("hi", 1)
        assert trio.current_time() >= 2.0
