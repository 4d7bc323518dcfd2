"""Spawning into a domain while its parent restarts it: the actor goes to the new
supervisor instance; a domain that ends for good meanwhile refuses it, never hangs."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from mister_smith.actors import Actor, ActorContext, ActorDomain
from mister_smith.config import AgentConfig, SupervisionSettings
from mister_smith.errors import ActorStopped, SupervisionError
from mister_smith.runtime import RuntimeManager
from mister_smith.supervision import RestartLimit

# Domains are restarted by their parent (the default domain) with the system's backoff.
SLOW_RESTARTS = AgentConfig(
    supervision=SupervisionSettings(backoff_initial="3s", backoff_max="3s", backoff_jitter=0)
)


def _restarting(domain: ActorDomain) -> bool:
    """Read afresh (a call, so mypy does not narrow it across awaits)."""
    return domain.restarting


class Worker(Actor):
    """Escalates on ``"escalate"``; answers anything else with its incarnation."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "escalate":
            raise SupervisionError(f"explicit escalation by {ctx.name}")
        return (message, ctx.incarnation)


async def test_a_spawn_waits_for_its_domain_to_come_back(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open(SLOW_RESTARTS) as rt:
        system = rt.actor_system
        team = await system.start_domain("team")
        member = await system.spawn(Worker, name="member", supervisor=team)
        member.tell_nowait("escalate")  # the team gives up; its parent restarts it in 3 s
        await trio.sleep(1.0)
        assert _restarting(team)
        late = await system.spawn(Worker, name="late", supervisor=team)
        assert trio.current_time() >= 3.0
        assert not _restarting(team)
        assert await late.ask("hi") == ("hi", 1)
        assert await member.ask("hi") == ("hi", 2)  # kept across the domain's restart
        assert "late" in team.members()


class SlowToStop(Worker):
    """Takes two seconds to stop: its domain stays given-up (not yet ended) that long."""

    async def on_stop(self, ctx: ActorContext) -> None:
        await trio.sleep(2.0)


async def test_a_spawn_into_a_domain_that_ends_meanwhile_is_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open(SLOW_RESTARTS) as rt:
        system = rt.actor_system
        team = await system.start_domain("team", restart_limit=RestartLimit(1, 60.0))
        member = await system.spawn(Worker, name="member", supervisor=team)
        await system.spawn(SlowToStop, name="slow", supervisor=team)
        member.tell_nowait("escalate")  # first give-up: restarted after 3 s
        await trio.sleep(8.0)
        assert await member.ask("hi") == ("hi", 2)
        member.tell_nowait("escalate")  # second: the team's own budget is spent
        await trio.sleep(0.5)
        assert _restarting(team)  # given up, still stopping its members
        with trio.fail_after(10):
            with pytest.raises(ActorStopped, match="team"):
                await system.spawn(Worker, name="late", supervisor=team)
        assert team.terminated
        assert trio.current_time() >= 10.0  # it waited for the verdict


async def test_spawning_waits_only_for_a_restarting_domain() -> None:
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        team = await system.start_domain("team")
        assert not _restarting(team)
        with trio.fail_after(1):
            await team.wait_running()  # running: returns at once
        ref = await system.spawn(Worker, name="w", supervisor=team.supervisor)
        assert await ref.ask("x") == ("x", 1)
