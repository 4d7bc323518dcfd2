"""Fault isolation under ``RuntimeManager.open()``: one failing actor or subtree never
takes the runtime down; failures climb one level at a time (issue: fault isolation).

Every test runs the real runtime with its default configuration unless it says
otherwise, on the virtual clock.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import Actor, ActorContext, ActorStatus
from mister_smith.config import ActorSettings, AgentConfig, SupervisionSettings
from mister_smith.errors import (
    ActorCrashed,
    ActorStopped,
    EscalatedError,
    PoolExhausted,
    RecoveryAction,
    RecoveryStrategy,
    RestartIntensityExceeded,
    SupervisionError,
    root_cause,
)
from mister_smith.events import (
    AgentStopped,
    DeadLetter,
    HeartbeatMissed,
    SupervisionDecision,
)
from mister_smith.runtime import RuntimeManager
from mister_smith.supervision import (
    ChildEnd,
    ChildSpec,
    RestartLimit,
    open_supervisor,
    shutdown_grace,
)
from mister_smith.types import Restart


class Crashy(Actor):
    """Raises on ``"boom"``; answers anything else, with its incarnation."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "boom":
            raise ValueError("poison message")
        if message == "hang":
            await trio.sleep_forever()
        return (message, ctx.incarnation)


def decisions(runtime: RuntimeManager, child: str) -> list[RecoveryAction]:
    return [d.action for d in runtime.events.history(SupervisionDecision) if d.child == child]


# -- the scenarios -----------------------------------------------------------------


async def test_four_poison_messages_stop_that_actor_alone(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open() as rt:
        crashy = await rt.actor_system.spawn(Crashy, name="crashy")
        other = await rt.actor_system.spawn(Crashy, name="other")
        await crashy.tell("queued later")  # handled by an incarnation before the end
        errors: list[type[BaseException]] = []
        for _ in range(6):
            try:
                await crashy.ask("boom")
            except Exception as exc:
                errors.append(type(exc))
        # The first four crash it (three restarts fit its budget of 3 in 60 s, the
        # fourth crash spends it); after that it is stopped for good.
        assert errors[:4] == [ActorCrashed] * 4
        assert errors[4:] == [ActorStopped, ActorStopped]
        assert not crashy.is_alive
        assert rt.supervision.state == "running"
        assert rt.actor_system.supervisor.state == "running"
        assert await other.ask("still there?") == ("still there?", 1)
        stopped = rt.events.history(AgentStopped, lambda e: e.name == "crashy")
        assert [e.reason for e in stopped] == ["restart intensity exceeded"]
        assert decisions(rt, "crashy")[-1] is RecoveryAction.STOP
        assert rt.actor_system.supervisor.statistics().stopped_children == 1
        # Nothing accepted was lost: every message was handled or dead-lettered.
        stats = rt.actor_system.statistics()
        assert stats.accepted == stats.handled + stats.dead_lettered


async def test_fifty_actors_each_crashing_once_in_a_minute_all_answer(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        refs = [await rt.actor_system.spawn(Crashy, name=f"a{i}") for i in range(50)]
        for ref in refs:
            with pytest.raises(Exception, match="crashed"):
                await ref.ask("boom")
            await trio.sleep(1.0)
        assert trio.current_time() < 60
        answers = [await ref.ask("ping") for ref in refs]
        assert answers == [("ping", 2)] * 50
        assert rt.supervision.state == "running"


async def test_backoff_initial_delays_the_restart(autojump_clock: trio.abc.Clock) -> None:
    config = AgentConfig(supervision=SupervisionSettings(backoff_initial="2s", backoff_jitter=0))
    async with RuntimeManager.open(config) as rt:
        ref = await rt.actor_system.spawn(Crashy, name="slow-back")
        with pytest.raises(Exception, match="crashed"):
            await ref.ask("boom")
        crashed_at = trio.current_time()
        assert ref.statistics().status is ActorStatus.RESTARTING
        assert await ref.ask("again") == ("again", 2)
        assert trio.current_time() - crashed_at == pytest.approx(2.0)


async def test_per_actor_budget_is_overridable_at_spawn(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open() as rt:
        fragile = await rt.actor_system.spawn(Crashy, name="fragile", max_restarts=0)
        with pytest.raises(Exception, match="crashed"):
            await fragile.ask("boom")
        await trio.sleep(0)
        assert not fragile.is_alive
        tough = await rt.actor_system.spawn(Crashy, name="tough", max_restarts=10)
        for _ in range(10):
            with pytest.raises(Exception, match="crashed"):
                await tough.ask("boom")
        assert await tough.ask("x", timeout=60) == ("x", 11)  # past a 30 s backoff


async def test_queued_messages_of_an_actor_that_spent_its_budget_are_dead_lettered(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        ref = await rt.actor_system.spawn(Crashy, name="q", max_restarts=0)
        ref.tell_nowait("boom")
        for i in range(3):
            ref.tell_nowait(f"m{i}")
        await ref.wait_stopped()
        letters = rt.events.history(DeadLetter, lambda e: e.actor == "q")
        assert [e.reason for e in letters[1:]] == ["actor restart intensity exceeded"] * 3
        stats = rt.actor_system.statistics()
        assert stats.accepted == 4 == stats.dead_lettered


# -- failures climb one level at a time ------------------------------------------------------


async def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent(
    autojump_clock: trio.abc.Clock,
) -> None:
    starts: list[float] = []

    async def worker() -> None:
        starts.append(trio.current_time())
        await trio.sleep(1)
        raise ValueError("again")

    specs = [ChildSpec.of(worker, name="w", restart=Restart.PERMANENT)]
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with open_supervisor("top", max_restarts=2, restart_window=100) as top:
            await top.start_supervisor("mid", max_restarts=1, restart_window=100, children=specs)
    # mid gives up after its 2nd restart request (at t=2), top restarts mid twice
    # (counted in top's intensity), then top itself gives up: one level at a time.
    assert len(starts) == 6
    error = caught.value
    assert "supervisor 'top' exceeded 2 restarts" in str(error)
    assert "ValueError: again" in str(error)  # the root cause is named
    assert isinstance(error.__cause__, RestartIntensityExceeded)
    assert isinstance(root_cause(error), ValueError)


async def test_escalate_stays_available_as_an_explicit_recovery(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def bad() -> None:
        raise SupervisionError("cannot go on")

    with pytest.raises(EscalatedError) as caught:
        async with open_supervisor("top") as top:
            mid = await top.start_supervisor("mid", recovery=RecoveryStrategy.Escalate())
            await mid.start_child(bad, name="bad")
    assert caught.value.child == "mid"
    assert isinstance(root_cause(caught.value), SupervisionError)


class Member(Actor):
    """A team member counting messages; ``"all-crash"`` crashes it."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "all-crash":
            raise ValueError("team member down")
        return (ctx.name, message, ctx.incarnation)


async def test_a_team_domain_that_gives_up_is_restarted_with_its_members(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        team = await system.start_domain("team-a", max_restarts=0, restart_window=60)
        other = await system.start_domain("team-b", max_restarts=0, restart_window=60)
        a1 = await system.spawn(Member, name="a1", supervisor=team)
        a2 = await system.spawn(Member, name="a2", supervisor=team)
        b1 = await system.spawn(Member, name="b1", supervisor=other)
        first = team.supervisor
        with pytest.raises(Exception, match="crashed"):
            await a1.ask("all-crash")
        await trio.sleep(1)  # the give-up and the restart (after a ~0.1 s backoff)
        # team-a gave up (intensity 0) and the default domain restarted it, with both
        # members: same refs, fresh incarnations. team-b never noticed.
        assert await a2.ask("hello") == ("a2", "hello", 2)
        assert await a1.ask("hello") == ("a1", "hello", 2)
        assert team.supervisor is not first
        assert await b1.ask("hello") == ("b1", "hello", 1)
        assert decisions(rt, "team-a") == [RecoveryAction.RESTART]
        assert rt.supervision.state == "running"


async def test_a_crash_looping_team_is_stopped_and_other_teams_are_untouched(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as rt:
        system = rt.actor_system
        team = await system.start_domain("looping", max_restarts=0, restart_window=60)
        calm = await system.start_domain("calm", max_restarts=0, restart_window=60)
        member = await system.spawn(Member, name="m", supervisor=team)
        calm_member = await system.spawn(Member, name="c", supervisor=calm)
        member.tell_nowait("all-crash")
        for _ in range(3):  # each crash takes the team down; restarts are counted
            await trio.sleep(1)
            if member.is_alive:
                member.tell_nowait("all-crash")
        await member.wait_stopped()
        # The default budget (3 restarts within 60 s) of the team domain is spent: it
        # and its member are stopped for good, announced with the reason.
        assert decisions(rt, "looping")[-1] is RecoveryAction.STOP
        stopped = rt.events.history(AgentStopped, lambda e: e.name == "m")
        assert [e.reason for e in stopped] == ["restart intensity exceeded"]
        with pytest.raises(LookupError):
            system.domain("looping")
        assert await calm_member.ask("ok") == ("c", "ok", 1)
        assert rt.supervision.state == "running"


async def test_messages_queued_while_a_domain_restarts_are_kept(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = AgentConfig(supervision=SupervisionSettings(backoff_initial="1s", backoff_jitter=0))
    async with RuntimeManager.open(config) as rt:
        system = rt.actor_system
        team = await system.start_domain("t", max_restarts=0)
        a = await system.spawn(Member, name="a", supervisor=team)
        b = await system.spawn(Member, name="b", supervisor=team)
        with pytest.raises(Exception, match="crashed"):
            await a.ask("all-crash")
        await b.tell("while down")  # accepted during the domain's backoff
        assert b.statistics().status is ActorStatus.RESTARTING
        assert await b.ask("after") == ("b", "after", 2)
        stats = b.statistics()
        assert stats.handled == 2
        assert stats.dead_lettered == 0


# -- every supervision setting acts -----------------------------------------------------------


async def test_max_agents_is_enforced_by_the_runtime(autojump_clock: trio.abc.Clock) -> None:
    config = AgentConfig(actors=ActorSettings(max_agents=3))
    async with RuntimeManager.open(config) as rt:
        refs = [await rt.actor_system.spawn(Crashy) for _ in range(3)]
        with pytest.raises(PoolExhausted, match="3 live actors"):
            await rt.actor_system.spawn(Crashy)
        await refs[0].stop()
        await rt.actor_system.spawn(Crashy)  # a slot was freed
        assert rt.actor_system.statistics().refused == 1


async def test_max_children_per_supervisor_overflows_into_sibling_domains(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = AgentConfig(supervision=SupervisionSettings(max_children_per_supervisor=2))
    async with RuntimeManager.open(config) as rt:
        refs = [await rt.actor_system.spawn(Crashy, name=f"w{i}") for i in range(5)]
        names = [d.name for d in rt.actor_system.domains()]
        assert names == ["actors", "actors#2", "actors#3"]
        assert [d.supervisor.child_count for d in rt.actor_system.domains()] == [2, 2, 1]
        assert [c.name for c in rt.supervision.children()][:2] == ["persistence", "actors"]
        assert "actors#2" in [c.name for c in rt.supervision.children()]
        assert [await r.ask("hi") for r in refs] == [("hi", 1)] * 5
        team = await rt.actor_system.start_domain("full", parent=rt.actor_system.domain("actors#3"))
        await rt.actor_system.spawn(Crashy, supervisor=team)
        await rt.actor_system.spawn(Crashy, supervisor=team)
        with pytest.raises(PoolExhausted, match="max_children_per_supervisor=2"):
            await rt.actor_system.spawn(Crashy, supervisor=team)


async def test_a_hung_handler_is_detected_by_heartbeat_and_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = AgentConfig(
        supervision=SupervisionSettings(heartbeat_interval="1s", heartbeat_timeout="3s")
    )
    async with RuntimeManager.open(config) as rt:
        ref = await rt.actor_system.spawn(Crashy, name="watched", heartbeat=True)
        await trio.sleep(100)  # idle for long: beats keep it alive
        assert rt.events.history(HeartbeatMissed) == []
        started = trio.current_time()
        with pytest.raises(Exception, match="crashed") as caught:
            await ref.ask("hang", timeout=60)
        assert trio.current_time() - started == pytest.approx(3.0, abs=1e-6)
        assert "HeartbeatTimeout" in repr(caught.value.__cause__)
        assert [e.child for e in rt.events.history(HeartbeatMissed)] == ["watched"]
        assert await ref.ask("back") == ("back", 2)


async def test_escalation_timeout_bounds_a_giving_up_supervisor(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stubborn() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with shutdown_grace():
                await trio.sleep(50)  # cleanup that would take 50 s

    async def bad() -> None:
        await trio.sleep(1)
        raise SupervisionError("explicit escalation")

    with pytest.raises(EscalatedError):
        async with open_supervisor("s", escalation_timeout=2.0, shutdown_timeout=100) as sup:
            await sup.start_child(stubborn, name="stubborn")
            await sup.start_child(bad, name="bad")
    assert trio.current_time() == pytest.approx(3.0)


async def test_breaker_gated_restarts_are_bounded(autojump_clock: trio.abc.Clock) -> None:
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(trio.current_time())
        raise ConnectionError("service down")  # CircuitBreaker recovery

    async with open_supervisor(
        "s", max_restarts=None, child_limit=RestartLimit(2, 60), keep_alive=True
    ) as sup:
        await sup.start_child(flaky, name="flaky", restart=Restart.PERMANENT)
        await trio.sleep(10_000)
        assert "flaky" not in [c.name for c in sup.children()]
        await sup.stop()
    # 5 failures open the breaker; then one probe per 60 s, each failing probe opening
    # it again; the third opening in a row is one more than the budget (2) allows: the
    # child stops instead of probing for ever.
    assert starts == [0.0] * 5 + [60.0, 120.0]
    assert [d.action for d in sup.events.history(SupervisionDecision)][-1] is RecoveryAction.STOP


async def test_root_giving_up_names_the_root_cause(autojump_clock: trio.abc.Clock) -> None:
    class Escalating(Actor):
        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            raise SupervisionError(f"fatal: {message}")

    config = AgentConfig(supervision=SupervisionSettings(max_restart_attempts=0))
    with pytest.raises(RestartIntensityExceeded) as caught:
        async with RuntimeManager.open(config) as rt:
            ref = await rt.actor_system.spawn(
                Escalating, name="doomed", recovery=RecoveryStrategy.Escalate()
            )
            await ref.tell("disk on fire")
            await trio.sleep_forever()
    error = caught.value
    assert "supervisor 'root'" in str(error)
    assert "SupervisionError: fatal: disk on fire" in str(error)
    assert isinstance(root_cause(error), SupervisionError)
    assert not isinstance(error, BaseExceptionGroup)


async def test_a_stopped_domain_terminates_its_members(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open() as rt:
        team = await rt.actor_system.start_domain("tmp")
        ref = await rt.actor_system.spawn(Member, name="x", supervisor=team)
        await ref.tell("left behind?")
        parent = team.parent_supervisor()
        assert parent is not None
        await parent.stop_child("tmp")
        assert not ref.is_alive
        assert team.terminated
        assert rt.actor_system.statistics().accepted == 1


def test_child_end_reasons_are_the_announced_reasons() -> None:
    assert ChildEnd.RESTART_BUDGET.value == "restart intensity exceeded"
    assert attrs.has(RestartLimit)


async def test_start_up_never_trips_the_blocking_detector_and_readiness_is_current() -> None:
    from mister_smith.config import MonitoringSettings
    from mister_smith.events import LoopBlocked
    from mister_smith.resources import HealthStatus

    config = AgentConfig(monitoring=MonitoringSettings(http_port=0))
    for _ in range(4):
        async with RuntimeManager.open(config, serve_http=True) as rt:
            ready = await rt.health.fresh_readiness()
            assert rt.events.history(LoopBlocked) == []
            assert (ready.status, ready.ok) == (HealthStatus.HEALTHY, True)
            assert ready.age is not None
            assert ready.age < 1.0
