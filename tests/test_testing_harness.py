"""The test harness itself: failure injection, recovery assertions, invariants, fakes,
strategies and the pytest plugin — all on virtual time with exact times asserted."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith.actors import ActorStatus
from mister_smith.config import AgentConfig, SupervisionSettings
from mister_smith.errors import (
    ActorCrashed,
    ErrorSeverity,
    EscalatedError,
    EventTimeout,
    HeartbeatTimeout,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    RestartIntensityExceeded,
    SupervisionError,
    ToolExecutionFailed,
    ToolPermissionDenied,
    ToolTimeout,
)
from mister_smith.events import (
    ChildExited,
    ComponentRecovered,
    DeadLetter,
    ExitKind,
    HeartbeatMissed,
    SupervisionDecision,
    ToolCalled,
    ToolOutcome,
)
from mister_smith.supervision import Backoff, Child, heartbeat
from mister_smith.testing import (
    PING,
    PONG,
    ActorSpec,
    CallTool,
    FailureType,
    FlakyTool,
    FlakyToolSpec,
    InjectedCrash,
    InjectionRefused,
    Scenario,
    ScheduledFailure,
    Script,
    ScriptedActor,
    Send,
    SupervisorSpec,
    SystemTestHarness,
    TaskCounter,
    WorkerSpec,
    advance,
    mock_clock,
    run_virtual,
)
from mister_smith.testing.strategies import (
    failure_schedules,
    message_workloads,
    scenarios,
    supervision_trees,
)
from mister_smith.tools import EchoTool
from mister_smith.types import Restart, StrategyKind

pytest_plugins = ["mister_smith.testing.pytest_plugin", "pytester"]


@pytest.fixture
def harness_config() -> AgentConfig:
    """These tests pin exact virtual instants of recoveries: restarts without backoff.

    (The runtime's default restart backoff, 0.1 s with jitter, is tested in
    tests/test_fault_isolation.py.)
    """
    return AgentConfig(supervision=SupervisionSettings(backoff_initial=0, backoff_jitter=0))


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


async def beating_worker() -> None:
    """A child that heartbeats every second."""
    while True:
        heartbeat()
        await trio.sleep(1)


# -- actors ------------------------------------------------------------------------------


async def test_crash_of_an_idle_actor_is_seen_and_recovered(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, ["hello"], name="greeter")
    assert await ref.ask("hi") == "hello"
    injection = await harness.inject_failure(ref, FailureType.CRASH)
    recovered = await harness.assert_recovered(ref)
    assert recovered.action is RecoveryAction.RESTART
    assert recovered.timestamp == 0.0
    assert injection.applied
    assert injection.applied_at == 0.0
    assert isinstance(injection.error, InjectedCrash)
    [decision] = harness.decisions(ref)
    assert (decision.error_type, decision.severity, decision.action) == (
        "InjectedCrash",
        ErrorSeverity.CRITICAL,
        RecoveryAction.RESTART,
    )
    # The trigger was dead-lettered, the ping answered: accounting still balances.
    stats = ref.statistics()
    assert (stats.accepted, stats.handled, stats.dead_lettered, stats.failed) == (3, 2, 1, 1)
    [dead] = harness.events_of(DeadLetter)
    assert dead.message is not None
    assert "crashed while handling it" in dead.reason
    assert harness.statistics().control_sent == 2
    harness.assert_invariants()


async def test_error_kind_drives_the_decision(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="worker")
    await harness.inject_failure("worker", FailureType.ERROR(ResourceError))
    recovered = await harness.assert_recovered(ref, RecoveryAction.RETRY)
    assert recovered.timestamp == 1.0  # ResourceError: Retry(3 attempts, 1 s)
    override = FailureType.ERROR(
        ResourceError, severity=ErrorSeverity.LOW, recovery=RecoveryStrategy.Restart()
    )
    await harness.inject_failure(ref, override)
    recovered = await harness.assert_recovered(ref, RecoveryAction.RESTART)
    assert recovered.timestamp == 1.0
    decisions = harness.decisions("worker")
    assert [(d.action, d.severity) for d in decisions] == [
        (RecoveryAction.RETRY, ErrorSeverity.MEDIUM),
        (RecoveryAction.RESTART, ErrorSeverity.LOW),
    ]


async def test_fault_applies_to_the_next_queued_message(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    async def busy(message: Any) -> Any:
        await trio.sleep(5)
        return message

    ref = await harness.actor_system.spawn(ScriptedActor, [busy], name="echo")
    await ref.tell("busy")
    await ref.tell("first")  # queued behind "busy": no trigger is needed
    injection = await harness.inject_failure(ref, FailureType.CRASH)
    assert not injection.applied
    assert await ref.ask("second") == "second"  # a fresh incarnation: busy again
    assert injection.applied_at == 5.0
    assert trio.current_time() == 10.0
    dead = harness.events_of(DeadLetter)
    assert [d.message for d in dead] == ["first"]
    assert harness.statistics().control_sent == 0
    harness.assert_invariants()


async def test_fault_waits_for_a_real_message_when_not_triggered(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="lazy")
    injection = await harness.inject_failure(ref, FailureType.CRASH, trigger=False)
    await trio.sleep(10)
    assert not injection.applied
    with pytest.raises(ActorCrashed) as raised:
        await ref.ask("boom")
    assert isinstance(raised.value.__cause__, InjectedCrash)
    assert injection.applied_at == 10.0
    await harness.assert_recovered(ref)


async def test_hang_with_a_handler_timeout_becomes_a_handler_timeout(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="stuck", handler_timeout=2.0)
    await harness.inject_failure(ref, FailureType.HANG)
    recovered = await harness.assert_recovered(ref, RecoveryAction.RETRY)
    # HandlerTimeout is an ActorError: one light retry after 100 ms.
    assert recovered.timestamp == pytest.approx(2.1)
    [decision] = harness.decisions(ref)
    assert decision.error_type == "HandlerTimeout"


async def test_hang_without_a_deadline_is_not_recovered(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="frozen")
    await harness.inject_failure(ref, FailureType.HANG)
    assert not await harness.ping(ref, timeout=5)
    assert trio.current_time() == 5.0
    assert ref.statistics().status is ActorStatus.BUSY
    with pytest.raises(AssertionError, match="did not recover within 3"):
        await harness.assert_recovered(ref, timeout=3)


async def test_slow_handler_delays_but_does_not_fail(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="slow")
    await harness.inject_failure(ref, FailureType.SLOW(4), trigger=False)
    assert await ref.ask("late") == "late"
    assert trio.current_time() == 4.0
    assert ref.statistics().failed == 0
    assert harness.decisions(ref) == []


async def test_escalation_to_the_root_is_raised_and_checked_post_mortem(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The actor's failure asks for escalation: the actors domain gives up; the root,
    # allowed no restart, gives up in turn (failures climb one level at a time).
    config = AgentConfig(supervision=SupervisionSettings(max_restart_attempts=0))
    with pytest.raises(RestartIntensityExceeded) as raised:
        async with SystemTestHarness.open(config) as harness:
            ref = await harness.actor_system.spawn(ScriptedActor, name="doomed")
            await ref.tell("queued")
            await harness.inject_failure(ref, FailureType.ERROR(SupervisionError))
            await trio.sleep_forever()
    assert "supervisor 'root' exceeded 0 restarts" in str(raised.value)
    assert isinstance(raised.value.__cause__, EscalatedError)
    assert harness.closed
    assert harness.shutdown is None  # no orderly shutdown: the root failed
    harness.assert_invariants()
    actions = [(d.supervisor, d.action) for d in harness.decisions()]
    assert actions == [
        ("actors", RecoveryAction.ESCALATE),
        ("root", RecoveryAction.ESCALATE),
    ]


async def test_spending_its_restart_budget_stops_the_actor_alone(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="fragile")
    bystander = await harness.actor_system.spawn(ScriptedActor, ["ok"], name="bystander")
    for _ in range(4):
        await harness.inject_failure(ref, FailureType.CRASH)
        await trio.sleep(1)
    actions = [d.action for d in harness.decisions(ref)]
    assert actions == [RecoveryAction.RESTART] * 3 + [RecoveryAction.STOP]
    assert not ref.is_alive
    assert await bystander.ask("still up?") == "ok"
    assert harness.check_invariants() == []


async def test_refused_injections(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, name="plain")
    with pytest.raises(InjectionRefused, match="not heartbeat-monitored"):
        await harness.inject_failure(ref, FailureType.DROP_HEARTBEAT)
    idle = await harness.supervision.start_child(trio.sleep_forever, name="idle")
    with pytest.raises(InjectionRefused, match="no heartbeat_timeout"):
        await harness.inject_failure(idle, FailureType.HANG)
    await ref.stop()
    with pytest.raises(InjectionRefused, match="not running"):
        await harness.inject_failure(ref, FailureType.CRASH)
    with pytest.raises(LookupError, match="nobody"):
        await harness.inject_failure("nobody", FailureType.CRASH)
    assert harness.injections() == []


# -- supervised children -------------------------------------------------------------------


async def test_hang_is_detected_by_the_failure_detector(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    child = await harness.supervision.start_child(
        beating_worker, name="beater", heartbeat_timeout=3, restart=Restart.PERMANENT
    )
    await trio.sleep(0.5)
    await harness.inject_failure(child, FailureType.HANG)
    missed = await harness.wait_for_event(HeartbeatMissed, lambda e: e.child == "beater")
    # Last beat at 0, silenced at 0.5: the detector fires 3 s after the last beat.
    assert (missed.timestamp, missed.silent_for) == (3.0, 3.0)
    await harness.assert_recovered("beater")
    assert not child.heartbeats_dropped
    exits = harness.events_of(ChildExited, lambda e: e.child == "beater")
    assert [(e.exit, e.error_type) for e in exits] == [(ExitKind.FAILED, HeartbeatTimeout.__name__)]
    await trio.sleep(10)
    assert harness.events_of(HeartbeatMissed) == [missed]  # healthy again


async def test_dropped_heartbeats_and_slow_children(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    child = await harness.supervision.start_child(
        beating_worker, name="beater", heartbeat_timeout=3, restart=Restart.PERMANENT
    )
    await trio.sleep(0.5)  # between beats, so the order of same-instant steps is moot
    await harness.inject_failure("beater", FailureType.SLOW(1.0))
    await trio.sleep(5)
    assert harness.events_of(HeartbeatMissed) == []  # a short stall goes unnoticed
    await harness.inject_failure(child, FailureType.SLOW(10))  # at 5.5, last beat at 5
    missed = await harness.wait_for_event(HeartbeatMissed)
    assert missed.timestamp == 8.0
    await harness.assert_recovered(child)
    await trio.sleep(0.5)
    await harness.inject_failure("root/beater", FailureType.DROP_HEARTBEAT)
    await harness.wait_for_event(HeartbeatMissed)
    assert trio.current_time() == 11.0
    await harness.assert_recovered(child)


async def test_crash_of_a_child_and_its_decision(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    child = await harness.supervision.start_child(
        trio.sleep_forever, name="sleeper", restart=Restart.PERMANENT
    )
    await harness.inject_failure(child, FailureType.ERROR(ValueError))
    event = await harness.assert_recovered(child)
    assert event.supervisor == "root"
    [decision] = harness.decisions(child)
    assert (decision.error_type, decision.action) == ("ValueError", RecoveryAction.RESTART)
    with pytest.raises(AssertionError, match="recovered by restart, expected retry"):
        await harness.assert_recovered(child, RecoveryAction.RETRY)


async def test_find_child_disambiguates(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.supervision.start_child(trio.sleep_forever, name="twin")
    await harness.actor_system.supervisor.start_child(trio.sleep_forever, name="twin")
    with pytest.raises(ValueError, match="ambiguous"):
        harness.find_child("twin")
    assert harness.find_child("actors/twin").supervisor is harness.actor_system.supervisor
    assert isinstance(harness.find_child("root/twin"), Child)


# -- tools ---------------------------------------------------------------------------------


async def test_tool_timeout_is_reported(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.register_tool(FlakyTool("search", work=1.0), timeout=5.0, policy="open")
    assert await harness.tool_bus.call("me", "search", {"q": "x"}) == {"q": "x"}
    await harness.inject_failure("search", FailureType.HANG)
    with pytest.raises(ToolTimeout):
        await harness.tool_bus.call("me", "search", {"q": "x"})
    assert trio.current_time() == 6.0
    outcomes = [e.outcome for e in harness.events_of(ToolCalled)]
    assert outcomes == [ToolOutcome.OK, ToolOutcome.TIMEOUT]
    await harness.inject_failure("search", FailureType.SLOW(4.5))
    with pytest.raises(ToolTimeout):  # 4.5 s late plus 1 s of work: past 5 s
        await harness.tool_bus.call("me", "search", {})
    harness.assert_invariants()


async def test_faults_in_tools_registered_on_the_bus(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.tool_bus.register_tool(EchoTool(), policy="open")
    injection = await harness.inject_failure("echo", FailureType.CRASH)
    with pytest.raises(ToolExecutionFailed) as raised:
        await harness.tool_bus.call("me", "echo", {"message": "hi"})
    assert raised.value.__cause__ is injection.error
    assert await harness.tool_bus.call("me", "echo", {"message": "hi"}) == {"message": "hi"}
    with pytest.raises(InjectionRefused):
        await harness.inject_failure("echo", FailureType.DROP_HEARTBEAT)
    harness.assert_invariants()


async def test_gating_a_tool_keeps_its_grants(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    tester = harness.runtime.identities.mint("tester")
    harness.tool_bus.register_tool(EchoTool(), callers=[tester])  # deny by default
    assert await harness.tool_bus.call(tester, "echo", {"message": "hi"}) == {"message": "hi"}
    injection = await harness.inject_failure("echo", FailureType.CRASH)  # swaps in a gate
    with pytest.raises(ToolExecutionFailed) as raised:
        await harness.tool_bus.call(tester, "echo", {"message": "hi"})
    assert raised.value.__cause__ is injection.error
    assert await harness.tool_bus.call(tester, "echo", {"message": "hi"}) == {"message": "hi"}
    with pytest.raises(ToolPermissionDenied):
        await harness.tool_bus.call("tester", "echo", {"message": "hi"})
    assert harness.tool_bus.statistics().tools["echo"].calls == 3  # counted since gating
    harness.assert_invariants()


async def test_flaky_tool_follows_its_schedule(autojump_clock: trio.testing.MockClock) -> None:
    tool = FlakyTool(
        "flaky",
        [None, FailureType.CRASH, FailureType.ERROR(ToolTimeout), FailureType.SLOW(2)],
        cycle=True,
        work=0.5,
    )
    outcomes: list[str] = []
    for _ in range(5):
        try:
            await tool.execute({})
            outcomes.append(f"ok@{trio.current_time()}")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == ["ok@0.5", "InjectedCrash", "ToolTimeout", "ok@3.0", "ok@3.5"]
    assert (tool.calls, tool.succeeded, tool.failed) == (5, 3, 3)
    with pytest.raises(ValueError, match="DROP_HEARTBEAT"):
        FlakyTool(schedule=[FailureType.DROP_HEARTBEAT])


# -- waiting, time, tasks ---------------------------------------------------------------------


async def test_wait_for_event_times_out_in_virtual_time(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(EventTimeout):
        await harness.wait_for_event(ComponentRecovered, timeout=7)
    assert trio.current_time() == 7.0
    await harness.supervision.start_child(trio.sleep, 1, name="napper")
    await trio.sleep(2)
    event = await harness.wait_for_event(ChildExited, include_history=True, timeout=0)
    assert (event.child, event.exit, event.timestamp) == ("napper", ExitKind.RETURNED, 8.0)


async def test_advance_moves_a_mock_clock(mock_clock: trio.testing.MockClock) -> None:
    woke: list[float] = []

    async def sleeper() -> None:
        await trio.sleep(5)
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        await advance(4)
        assert woke == []
        await advance(1)
        assert woke == [5.0]
    with pytest.raises(ValueError, match="cannot advance"):
        await advance(-1)


def test_virtual_time_helpers_refuse_a_real_clock() -> None:
    async def main() -> None:
        mock_clock()

    with pytest.raises(RuntimeError, match="MockClock"):
        trio.run(main)

    async def sleepy() -> float:
        await trio.sleep(3600)
        return trio.current_time()

    assert run_virtual(sleepy) == 3600.0


async def test_leaked_tasks_are_reported(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as outside:
        async with SystemTestHarness.open() as harness:
            outside.start_soon(trio.sleep_forever, name="stray")
        assert harness.leaked_tasks() == ["stray"]
        assert "task 'stray' outlived the runtime" in harness.check_invariants()
        outside.cancel_scope.cancel()
    assert harness.shutdown is not None
    assert harness.shutdown.within_bound


def test_task_counter_counts_spawns_and_exits() -> None:
    counter = TaskCounter()

    async def main() -> None:
        counter.mark()
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(trio.sleep, 1)
            assert len(counter.live_since_mark()) == 3

    run_virtual(main, instruments=[counter])
    assert counter.live_since_mark() == []
    assert counter.spawned - counter.exited == len(counter.live())


# -- ScriptedActor ---------------------------------------------------------------------------


async def test_scripted_actor_plays_its_script(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow_double(message: Any) -> Any:
        await trio.sleep(1)
        return message * 2

    script = Script(
        steps=["first", lambda m: m + 1, slow_double, KeyError, ValueError("bad")],
        crash_on=["poison"],
    )
    ref = await harness.actor_system.spawn(ScriptedActor, script, name="scripted")
    assert await ref.ask(0) == "first"
    assert await ref.ask(1) == 2
    assert await ref.ask(3) == 6
    assert trio.current_time() == 1.0
    for raised in (KeyError, ValueError, InjectedCrash):
        with pytest.raises(ActorCrashed) as crash:
            await ref.ask("poison" if raised is InjectedCrash else "x")
        assert isinstance(crash.value.__cause__, raised)
    assert await ref.ask("after") == "after"  # the tape survived the restarts
    assert script.exhausted
    assert script.received == [0, 1, 3, "x", "x", "poison", "after"]
    assert ref.statistics().restarts == 3
    assert await ref.ask(PING) == PONG  # control messages never reach the script
    assert script.received[-1] == "after"
    with pytest.raises(ValueError, match="crash_on"):
        ScriptedActor(script, crash_on=["x"])


async def test_plain_step_lists_restart_with_the_actor(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    ref = await harness.actor_system.spawn(ScriptedActor, ["a", "b"], ["die"], name="fresh")
    assert await ref.ask(1) == "a"
    with pytest.raises(ActorCrashed):
        await ref.ask("die")
    assert await ref.ask(2) == "a"  # a new incarnation starts the list again


# -- trees and scenarios -----------------------------------------------------------------------


TREE = SupervisorSpec(
    "top",
    children=(
        ActorSpec("front", handler_timeout=5.0),
        SupervisorSpec(
            "inner",
            children=(WorkerSpec("beater", heartbeat_timeout=3.0), ActorSpec("back")),
            strategy=StrategyKind.ONE_FOR_ALL,
            max_restarts=1,
            recovery=RecoveryStrategy.Restart(),
        ),
    ),
    tools=(FlakyToolSpec("lookup", timeout=1.0),),
)


async def test_build_runs_a_tree_and_follows_restarts(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    tree = await harness.build(TREE)
    inner = tree.supervisor("inner")
    back = tree.actor("back")
    assert inner is not None
    assert back is not None
    assert tree.target("lookup") == "lookup"
    assert isinstance(tree.target("beater"), Child)
    # Two crashes within the window exceed "inner"'s intensity of 1: "top" restarts it.
    for _ in range(2):
        await harness.inject_failure("back", FailureType.CRASH)
        await trio.sleep(0)
    await harness.wait_for_event(
        ComponentRecovered, lambda e: e.child == "inner", include_history=True
    )
    new_inner = tree.supervisor("inner")
    assert new_inner is not None
    assert new_inner is not inner
    new_back = tree.actor("back")
    assert new_back is not None
    assert new_back != back
    assert not back.is_alive
    assert await new_back.ask(PING) == PONG
    harness.assert_invariants()


async def test_run_scenario_reports_every_operation_and_failure(
    harness: SystemTestHarness, autojump_clock: trio.testing.MockClock
) -> None:
    scenario = Scenario(
        TREE,
        workload=(
            Send(0.0, "front", ask=True, work=1.0),
            Send(1.0, "back"),
            CallTool(2.0, "lookup"),
            CallTool(3.0, "lookup"),
            Send(4.0, "front", ask=True),
        ),
        schedule=(
            ScheduledFailure(2.5, "lookup", FailureType.HANG),
            ScheduledFailure(3.5, "front", FailureType.SLOW(10.0)),
            ScheduledFailure(4.0, "nobody", FailureType.CRASH),
        ),
        settle=5.0,
    )
    report = await harness.run_scenario(scenario)
    assert report.started == 0.0
    assert report.finished is not None
    by_op = {(o.operation.at, type(o.operation).__name__): o for o in report.operations}
    assert by_op[(0.0, "Send")].outcome == "replied"
    assert by_op[(1.0, "Send")].outcome == "accepted"
    assert by_op[(2.0, "CallTool")].outcome == "ok"
    assert by_op[(3.0, "CallTool")].outcome == "failed"
    assert "ToolTimeout" in by_op[(3.0, "CallTool")].detail
    # The trigger sent at 3.5 hit the 10 s stall and ran past the 5 s handler deadline;
    # the ask queued behind it was answered by the retried actor.
    assert by_op[(4.0, "Send")].outcome == "replied"
    [decision] = harness.decisions("front")
    assert (decision.error_type, decision.action) == ("HandlerTimeout", RecoveryAction.RETRY)
    assert decision.timestamp == 8.5
    assert [f.refused for f in report.failures][:2] == ["", ""]
    assert "nobody" in report.failures[2].refused
    assert report.outcome_counts()["replied"] == 2
    harness.assert_invariants()


# -- strategies ----------------------------------------------------------------------------------


@settings(max_examples=100)
@given(tree=supervision_trees(), data=st.data())
def test_strategies_respect_their_bounds(tree: SupervisorSpec, data: st.DataObject) -> None:
    assert tree.depth() <= 4
    names = [node.name for node in tree.walk()] + [tool.name for tool in tree.tools]
    assert len(names) == len(set(names))
    assert len(names) - len(tree.tools) - 1 <= 10
    schedule = data.draw(failure_schedules(tree))
    workload = data.draw(message_workloads(tree))
    assert list(schedule) == sorted(schedule, key=lambda e: e.at)
    for entry in schedule:
        node = next((n for n in tree.walk() if n.name == entry.target), None)
        if isinstance(node, WorkerSpec) and node.heartbeat_timeout is None:
            assert entry.failure in (FailureType.CRASH,) or type(entry.failure).__name__ == "Error"
        if node is None:
            assert entry.target in {tool.name for tool in tree.tools}
    actor_names = {actor.name for actor in tree.actors()}
    for op in workload:
        assert op.actor in actor_names if isinstance(op, Send) else True


@settings(max_examples=50)
@given(scenario=scenarios())
def test_generated_values_print_as_reproductions(scenario: Scenario) -> None:
    from mister_smith import errors
    from mister_smith.errors import ErrorSeverity as ErrorSeverity_
    from mister_smith.testing import CallTool as CallTool_

    namespace: dict[str, Any] = {
        **vars(errors),
        "ErrorSeverity": ErrorSeverity_,
        "CallTool": CallTool_,
        "ActorSpec": ActorSpec,
        "WorkerSpec": WorkerSpec,
        "FlakyToolSpec": FlakyToolSpec,
        "SupervisorSpec": SupervisorSpec,
        "Scenario": Scenario,
        "Send": Send,
        "ScheduledFailure": ScheduledFailure,
        "FailureType": FailureType,
        "Restart": Restart,
        "StrategyKind": StrategyKind,
        "RecoveryStrategy": RecoveryStrategy,
        "Backoff": Backoff,
        "KeyError": KeyError,
        "ValueError": ValueError,
        "ConnectionError": ConnectionError,
        "TimeoutError": TimeoutError,
    }
    assert eval(repr(scenario), namespace) == scenario


def test_failure_types_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="SLOW delay"):
        FailureType.SLOW(-1)
    with pytest.raises(ValueError, match="HANG"):
        FailureType.SLOW(float("inf"))
    with pytest.raises(TypeError, match="Exception subclass"):
        FailureType.ERROR(KeyboardInterrupt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only be overridden"):
        FailureType.ERROR(ValueError, severity=ErrorSeverity.LOW)
    error = FailureType.ERROR(ResourceError, severity=ErrorSeverity.LOW).make_error("x")
    assert isinstance(error, ResourceError)
    assert error.severity is ErrorSeverity.LOW
    assert repr(FailureType.SLOW(2.5)) == "FailureType.SLOW(2.5)"
    assert repr(FailureType.DROP_HEARTBEAT) == "FailureType.DROP_HEARTBEAT"
    assert attrs.evolve(FailureType.SLOW(1), delay=2) == FailureType.SLOW(2)


# -- the pytest plugin ---------------------------------------------------------------------------


def test_plugin_needs_virtual_time_and_checks_invariants(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        pytest_plugins = ["mister_smith.testing.pytest_plugin"]
        from mister_smith.testing import FailureType, ScriptedActor

        async def test_real_clock(harness):
            pass

        async def test_virtual(harness, autojump_clock):
            ref = await harness.actor_system.spawn(ScriptedActor, ["x"])
            await harness.inject_failure(ref, FailureType.CRASH)
            await harness.assert_recovered(ref)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*add pytest-trio's autojump_clock*"])


def test_escalating_fixture_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import trio
        pytest_plugins = ["mister_smith.testing.pytest_plugin"]
        from mister_smith.errors import SupervisionError
        from mister_smith.testing import FailureType, ScriptedActor

        async def test_escalates(harness, autojump_clock):
            async def doomed():
                await trio.sleep(0.5)
                raise SupervisionError("the root's own child asks to escalate")

            await harness.supervision.start_child(doomed, name="doomed")
            await trio.sleep(1)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*EscalatedError*"])


def test_harness_repr_and_statistics() -> None:
    async def main() -> tuple[str, str]:
        async with SystemTestHarness.open(track_tasks=False) as harness:
            opened = repr(harness)
        return opened, repr(harness)

    opened, closed = run_virtual(main)
    assert opened.startswith("<SystemTestHarness open")
    assert closed.startswith("<SystemTestHarness closed")


def test_decision_helpers_and_injection_repr() -> None:
    async def main() -> None:
        no_backoff = AgentConfig(supervision=SupervisionSettings(backoff_initial=0))
        async with SystemTestHarness.open(no_backoff) as harness:
            ref = await harness.actor_system.spawn(ScriptedActor, name="r")
            injection = await harness.inject_failure(ref, FailureType.CRASH)
            await injection.wait_applied()
            assert repr(injection) == (
                "<Injection #1 FailureType.CRASH into actor:r (applied at 0)>"
            )
            await harness.assert_recovered(ref)
            assert [d.child for d in harness.events_of(SupervisionDecision)] == ["r"]
            assert harness.now() == 0.0
            await harness.advance(2)
            assert harness.now() == 2.0

    run_virtual(main)


def test_public_names_are_exported_and_documented() -> None:
    import mister_smith.testing as testing
    import mister_smith.testing.strategies as strategies

    public = {
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(testing.__all__)
    documented = [*testing.__all__, *(f"strategies.{name}" for name in strategies.__all__)]
    undocumented = [
        name
        for name in documented
        if callable(value := getattr(strategies if "." in name else testing, name.split(".")[-1]))
        and not value.__doc__
    ]
    assert undocumented == []


def test_the_package_does_not_need_hypothesis() -> None:
    # (trio.testing itself loads _pytest when it is installed, so only check our modules.)
    code = (
        "import sys, mister_smith.testing; "
        "print(sorted({'hypothesis', 'mister_smith.testing.pytest_plugin'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
