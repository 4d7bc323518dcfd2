"""HealthMonitor on virtual time: rounds, timeouts, events, verdicts, failure reporting."""

from __future__ import annotations

from typing import NoReturn

import attrs
import pytest
import trio
import trio.testing

from mister_smith.config import MonitoringSettings
from mister_smith.events import ChildStarted, EventBus, HealthChanged, SupervisionDecision
from mister_smith.resources import (
    ComponentHealth,
    ComponentUnhealthy,
    FunctionCheck,
    HealthMonitor,
    HealthReport,
    HealthStatus,
)
from mister_smith.supervision import open_supervisor


@attrs.define(eq=False)
class ScriptedCheck:
    """A check answering from a script (the last answer repeats), counting its calls."""

    name: str
    answers: list[HealthReport]
    required: bool = True
    delay: float = 0.0
    calls: list[float] = attrs.field(factory=list)

    async def check(self) -> HealthReport:
        self.calls.append(trio.current_time())
        await trio.sleep(self.delay)
        if len(self.answers) > 1:
            return self.answers.pop(0)
        return self.answers[0]


OK = HealthReport.healthy()
SLOW = HealthReport.degraded("slow")
DOWN = HealthReport.unhealthy("down")


@attrs.define
class FakeSupervisor:
    state: str = "running"


async def test_readiness_is_starting_until_the_first_round(
    autojump_clock: trio.testing.MockClock,
) -> None:
    monitor = HealthMonitor([ScriptedCheck("db", [OK])], interval=10, timeout=1)
    ready = monitor.readiness()
    assert (ready.status, ready.ok, ready.reason) == (HealthStatus.UNKNOWN, False, "starting")
    assert monitor.component("db").status is HealthStatus.UNKNOWN
    assert monitor.liveness().ok
    snapshot = await monitor.check_now()
    assert (snapshot.status, snapshot.ok) == (HealthStatus.HEALTHY, True)
    assert monitor.started


async def test_fresh_readiness_rechecks_a_stale_round_and_shares_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = ScriptedCheck("db", [OK, DOWN], delay=0.5)
    monitor = HealthMonitor([check], interval=30, timeout=1, max_age=2)
    first = await monitor.fresh_readiness()  # nothing yet: a round runs now
    assert (first.ok, first.age) == (True, 0.0)
    assert check.calls == [0.0]
    await trio.sleep(1.5)
    cached = await monitor.fresh_readiness()  # 1.5 s old: within max_age
    assert (cached.ok, cached.age) == (True, 1.5)
    assert len(check.calls) == 1
    await trio.sleep(1.0)
    answers: list[bool] = []

    async def probe() -> None:
        answers.append((await monitor.fresh_readiness()).ok)

    async with trio.open_nursery() as nursery:  # stale: three probes share one round
        for _ in range(3):
            nursery.start_soon(probe)
    assert answers == [False, False, False]
    assert check.calls == [0.0, 3.0]
    assert monitor.readiness().to_dict()["age_seconds"] == 0.0
    with pytest.raises(ValueError, match="max_age"):
        HealthMonitor([], max_age=-1)


async def test_run_checks_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    check = ScriptedCheck("db", [OK], delay=0.5)
    monitor = HealthMonitor([check], interval=10, timeout=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        assert not monitor.readiness().ok  # started at once, still "starting"
        await trio.sleep(35)
        nursery.cancel_scope.cancel()
    # Rounds start every interval, measured from round start (not end).
    assert check.calls == [0.0, 10.0, 20.0, 30.0]
    assert monitor.statistics().rounds == 4


async def test_settings_give_interval_and_timeout() -> None:
    settings = MonitoringSettings(health_check_interval=7.0, health_check_timeout=2.0)
    monitor = HealthMonitor(settings=settings)
    assert (monitor.interval, monitor.timeout) == (7.0, 2.0)
    default = HealthMonitor()
    assert (default.interval, default.timeout) == (30.0, 5.0)
    assert HealthMonitor(settings=settings, interval=3.0).interval == 3.0


async def test_check_that_times_out_is_unhealthy(autojump_clock: trio.testing.MockClock) -> None:
    hang = ScriptedCheck("hang", [OK], delay=100)
    monitor = HealthMonitor([hang], interval=10, timeout=2)
    snapshot = await monitor.check_now()
    assert trio.current_time() == 2.0
    health = monitor.component("hang")
    assert health.status is HealthStatus.UNHEALTHY
    assert health.report.reason == "timed out after 2 s"
    assert health.duration == 2.0
    assert not snapshot.ok


async def test_per_check_timeout_overrides(autojump_clock: trio.testing.MockClock) -> None:
    async def slow() -> bool:
        await trio.sleep(3)
        return True

    monitor = HealthMonitor([FunctionCheck("slow", slow, timeout=5.0)], timeout=1)
    await monitor.check_now()
    assert monitor.component("slow").status is HealthStatus.HEALTHY


async def test_check_that_raises_or_misbehaves_is_unhealthy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def boom() -> bool:
        raise ConnectionError("refused")

    class Wrong:
        name = "wrong"
        required = True

        async def check(self) -> HealthReport:
            return "fine"  # type: ignore[return-value]

    monitor = HealthMonitor([FunctionCheck("boom", boom), Wrong()])
    await monitor.check_now()
    assert monitor.component("boom").report.reason == "check raised ConnectionError: refused"
    assert "not a report" in monitor.component("wrong").report.reason


async def test_checks_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    checks = [ScriptedCheck(f"c{i}", [OK], delay=1.0) for i in range(5)]
    await HealthMonitor(checks).check_now()
    assert trio.current_time() == 1.0


async def test_health_changed_only_on_change(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    check = ScriptedCheck("db", [OK, OK, DOWN, DOWN, OK])
    monitor = HealthMonitor([check], events=bus, failure_threshold=5)
    for _ in range(5):
        await monitor.check_now()
    changes = [
        (event.component, event.status, event.reason) for event in bus.history(HealthChanged)
    ]
    assert changes == [
        ("db", "healthy", ""),
        ("db", "unhealthy", "down"),
        ("db", "healthy", ""),
    ]


async def test_readiness_aggregates_required_and_optional(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db = ScriptedCheck("db", [OK])
    cache = ScriptedCheck("cache", [DOWN], required=False)
    monitor = HealthMonitor([db, cache], failure_threshold=100)
    ready = await monitor.check_now()
    assert (ready.status, ready.ok) == (HealthStatus.DEGRADED, True)
    assert ready.reason == "degraded: cache"

    db.answers = [SLOW]
    ready = await monitor.check_now()
    assert (ready.status, ready.ok) == (HealthStatus.DEGRADED, True)

    db.answers = [DOWN]
    ready = await monitor.check_now()
    assert (ready.status, ready.ok) == (HealthStatus.UNHEALTHY, False)
    assert ready.reason == "required checks failing: db"
    body = ready.to_dict()
    assert body["status"] == "unhealthy"
    assert body["checks"]["db"]["status"] == "unhealthy"
    assert body["checks"]["cache"]["required"] is False


async def test_liveness_follows_the_root_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    root = FakeSupervisor()
    monitor = HealthMonitor([ScriptedCheck("db", [OK])], root=root)
    await monitor.check_now()
    assert monitor.liveness().ok
    root.state = "failed"
    live = monitor.liveness()
    assert (live.ok, live.reason) == (False, "root supervisor is failed")
    assert not monitor.readiness().ok


async def test_liveness_fails_when_the_loop_stops_completing_rounds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wedged = trio.Event()

    async def wedges() -> bool:
        if wedged.is_set():
            with trio.CancelScope(shield=True):  # ignores the monitor's timeout
                await trio.sleep(1000)
        return True

    monitor = HealthMonitor([FunctionCheck("wedge", wedges)], interval=10, timeout=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        await trio.sleep(25)
        assert monitor.liveness().ok
        wedged.set()  # the round at 30 never completes
        # The last round completed at 20: silent for too long after 20 + 10 + 2 * 1.
        await trio.sleep(32 - 25 - 0.001)
        assert monitor.liveness().ok
        await trio.sleep(0.002)
        live = monitor.liveness()
        assert not live.ok
        assert "silent" in live.reason
        nursery.cancel_scope.cancel()


async def test_failure_threshold_calls_back_and_counts_afresh(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures: list[ComponentHealth] = []
    monitor = HealthMonitor(
        [ScriptedCheck("db", [DOWN])], failure_threshold=3, on_failure=failures.append
    )
    for _ in range(7):
        await monitor.check_now()
    assert len(failures) == 2  # after rounds 3 and 6
    assert failures[0].consecutive_failures == 3
    assert monitor.component("db").consecutive_failures == 1
    assert monitor.statistics().failures_reported == 2


async def test_failing_callback_is_isolated(autojump_clock: trio.testing.MockClock) -> None:
    def explode(health: ComponentHealth) -> None:
        raise RuntimeError("callback bug")

    monitor = HealthMonitor([ScriptedCheck("db", [DOWN])], failure_threshold=1, on_failure=explode)
    await monitor.check_now()
    assert monitor.statistics().failures_reported == 1


async def test_recovery_resets_the_count(autojump_clock: trio.testing.MockClock) -> None:
    failures: list[ComponentHealth] = []
    check = ScriptedCheck("db", [DOWN, DOWN, OK, DOWN, DOWN, OK])
    monitor = HealthMonitor([check], failure_threshold=3, on_failure=failures.append)
    for _ in range(6):
        await monitor.check_now()
    assert failures == []


async def test_guard_reports_the_failure_to_the_components_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    check = ScriptedCheck("worker", [DOWN, DOWN, DOWN, OK])
    monitor = HealthMonitor([check], interval=5, timeout=1, failure_threshold=3, events=bus)

    async def worker(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)  # the component's real work
            await monitor.guard("worker")

    async with open_supervisor("app", events=bus, keep_alive=True) as supervisor:
        await supervisor.start_child(worker, name="worker")
        await supervisor.start_child(monitor.run, name="health")
        await trio.sleep(12)  # rounds at 0, 5, 10: the third failure restarts the worker
        [decision] = bus.history(SupervisionDecision)
        assert (decision.child, decision.error_type) == ("worker", "ComponentUnhealthy")
        starts = [event.child for event in bus.history(ChildStarted)]
        assert starts.count("worker") == 2
        await supervisor.stop()


async def test_guard_raises_a_typed_error(autojump_clock: trio.testing.MockClock) -> None:
    monitor = HealthMonitor([ScriptedCheck("db", [DOWN])], failure_threshold=2)

    async def guarded() -> NoReturn:
        await monitor.guard("db")

    caught: list[ComponentUnhealthy] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guarded)
            await trio.testing.wait_all_tasks_blocked()
            await monitor.check_now()
            await monitor.check_now()
            await trio.sleep(1)
    except* ComponentUnhealthy as group:
        caught.extend(error for error in group.exceptions if isinstance(error, ComponentUnhealthy))
    [error] = caught
    assert (error.component, error.failures, error.reason) == ("db", 2, "down")


async def test_registry() -> None:
    monitor = HealthMonitor()
    check = ScriptedCheck("db", [OK])
    monitor.add_check(check)
    with pytest.raises(ValueError):
        monitor.add_check(check)
    assert list(monitor.components()) == ["db"]
    monitor.remove_check("db")
    monitor.remove_check("db")
    assert monitor.components() == {}


async def test_function_check_accepts_bools(autojump_clock: trio.testing.MockClock) -> None:
    async def yes() -> bool:
        return True

    async def no() -> bool:
        return False

    monitor = HealthMonitor([FunctionCheck("yes", yes), FunctionCheck("no", no)])
    await monitor.check_now()
    assert monitor.component("yes").status is HealthStatus.HEALTHY
    assert monitor.component("no").report.reason == "check returned false"


@pytest.mark.parametrize(
    "options", [{"interval": 0.0}, {"timeout": -1.0}, {"failure_threshold": 0}]
)
def test_invalid_options(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HealthMonitor(**options)  # type: ignore[arg-type]


def test_reports_and_statuses() -> None:
    assert HealthStatus.DEGRADED.serving
    assert not HealthStatus.UNKNOWN.serving
    report = HealthReport.unhealthy("down", {"errors": 3})
    assert report.to_dict() == {"status": "unhealthy", "reason": "down", "details": {"errors": 3}}
