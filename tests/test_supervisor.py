"""The async supervisor on virtual time: restart types, strategies, intensity, backoff,
shutdown, heartbeats, ``start_child`` semantics and dynamic children.

Every test runs on pytest-trio's ``autojump_clock`` and asserts exact virtual times.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from supervision_journal import Journal, forever

from mister_smith.errors import (
    HeartbeatTimeout,
    RecoveryAction,
    RecoveryStrategy,
    RestartIntensityExceeded,
)
from mister_smith.errors import SupervisionError as SupervisionErrorBase
from mister_smith.events import (
    ChildExited,
    ChildStarted,
    ComponentRecovered,
    EventBus,
    ExitKind,
    HeartbeatMissed,
    ShutdownStuck,
    SupervisionDecision,
    SupervisorStopped,
)
from mister_smith.supervision import (
    Backoff,
    Child,
    ChildSpec,
    ChildState,
    CircuitBreaker,
    OneForAll,
    OneForOne,
    RestForOne,
    StrategyKind,
    SupervisionStrategyBase,
    Supervisor,
    current_child,
    heartbeat,
    open_supervisor,
    shutdown_grace,
)
from mister_smith.types import Restart

# -- helpers ---------------------------------------------------------------------------------


Plan = list[tuple[str, float]]
"""Per run: ``("crash", after)``, ``("return", after)`` or ``("forever", 0)``; the last
entry repeats once the plan is used up."""


def scripted(journal: Journal, name: str, plan: Plan) -> Callable[[], Awaitable[None]]:
    """A child that follows ``plan`` run by run, noting ``start`` and ``end``."""

    async def child() -> None:
        run = journal.next_run(name)
        what, after = plan[min(run, len(plan) - 1)]
        journal.note("start", name)
        try:
            if what == "forever":
                await trio.sleep_forever()
            await trio.sleep(after)
            if what == "crash":
                raise ValueError(f"{name} crashed (run {run})")
        finally:
            journal.note("end", name)

    child.__name__ = name
    return child


async def background_supervisor(nursery: trio.Nursery, **options: Any) -> Supervisor:
    """Open a ``keep_alive`` supervisor in ``nursery``'s task and return it once running."""

    async def run(*, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_supervisor(keep_alive=True, **options) as sup:
            task_status.started(sup)

    sup: Supervisor = await nursery.start(run)
    return sup


def decisions(bus: EventBus) -> list[tuple[str, RecoveryAction, str]]:
    return [(d.child, d.action, d.error_type) for d in bus.history(SupervisionDecision)]


# -- restart intensity -------------------------------------------------------------------------


async def test_intensity_is_shared_by_all_children(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    opened: list[Supervisor] = []

    async def body() -> None:
        async with open_supervisor(
            "s", events=bus, max_restarts=3, restart_window=60, default_restart=Restart.PERMANENT
        ) as sup:
            opened.append(sup)
            await sup.start_child(scripted(journal, "a", [("crash", 1.0)]), name="a")
            await sup.start_child(scripted(journal, "b", [("crash", 1.25)]), name="b")

    with pytest.raises(RestartIntensityExceeded):
        await body()
    [sup] = opened
    # a fails at 1 and 2, b at 1.25: three restarts; b's failure at 2.5 is the fourth.
    assert trio.current_time() == 2.5
    assert journal.times("start", "a") == [0.0, 1.0, 2.0]
    assert journal.times("start", "b") == [0.0, 1.25]
    assert [d[1] for d in decisions(bus)] == [RecoveryAction.RESTART] * 3 + [
        RecoveryAction.ESCALATE
    ]
    assert sup.state == "failed"
    stopped = bus.history(SupervisorStopped)
    assert len(stopped) == 1
    assert "RestartIntensityExceeded" in stopped[0].reason


async def test_failures_outside_the_window_do_not_accumulate(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(95):
        async with open_supervisor(
            "s", events=bus, max_restarts=1, restart_window=10, default_restart=Restart.PERMANENT
        ) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 10.0)]), name="a")
    # One restart every 10 s never exceeds 1 restart per 10 s window.
    assert journal.times("start", "a") == [float(t) for t in range(0, 91, 10)]
    assert all(action is RecoveryAction.RESTART for _, action, _ in decisions(bus))


async def test_max_restarts_zero_gives_up_on_the_first_failure(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor(max_restarts=0, default_restart=Restart.PERMANENT) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 3.0)]), name="a")
    assert trio.current_time() == 3.0
    assert journal.times("start", "a") == [0.0]


async def test_giving_up_stops_the_others_in_reverse_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()

    async def body() -> None:
        async with open_supervisor(max_restarts=0, default_restart=Restart.PERMANENT) as sup:
            for name in "abc":
                await sup.start_child(scripted(journal, name, [("forever", 0)]), name=name)
            await sup.start_child(scripted(journal, "d", [("crash", 2.0)]), name="d")

    with pytest.raises(RestartIntensityExceeded):
        await body()
    assert journal.since(2.0) == [("end", "d"), ("end", "c"), ("end", "b"), ("end", "a")]
    assert trio.current_time() == 2.0


# -- restart types -----------------------------------------------------------------------------


async def test_permanent_child_that_returns_is_restarted_and_counts(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor(events=bus, max_restarts=2) as sup:
            await sup.start_child(
                scripted(journal, "p", [("return", 1.0)]), name="p", restart=Restart.PERMANENT
            )
    assert journal.times("start", "p") == [0.0, 1.0, 2.0]
    assert trio.current_time() == 3.0
    assert decisions(bus) == [("p", RecoveryAction.RESTART, "")] * 2 + [
        ("p", RecoveryAction.ESCALATE, "")
    ]
    exits = [e.exit for e in bus.history(ChildExited)]
    assert exits == [ExitKind.RETURNED] * 3


async def test_transient_child_restarted_only_after_an_exception(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    async with open_supervisor(events=bus) as sup:
        child = await sup.start_child(
            scripted(journal, "t", [("crash", 1.0), ("return", 2.0)]),
            name="t",
            restart=Restart.TRANSIENT,
        )
    # Crashed at 1 (restarted), returned at 3 (not restarted): the supervisor ends then.
    assert trio.current_time() == 3.0
    assert journal.times("start", "t") == [0.0, 1.0]
    assert decisions(bus) == [("t", RecoveryAction.RESTART, "ValueError")]
    assert child.state is ChildState.STOPPED
    assert sup.children() == []
    assert [e.reason for e in bus.history(SupervisorStopped)] == ["normal"]


async def test_transient_child_stopped_by_its_supervisor_is_not_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus)
        child = await sup.start_child(
            scripted(journal, "t", [("forever", 0)]), name="t", restart=Restart.TRANSIENT
        )
        await trio.sleep(2)
        await sup.stop_child("t")
        assert trio.current_time() == 2.0
        await trio.sleep(5)
        assert sup.children() == []
        await sup.stop()
    assert journal.times("start", "t") == [0.0]
    assert decisions(bus) == []
    assert child.state is ChildState.STOPPED
    assert [e.exit for e in bus.history(ChildExited)] == [ExitKind.CANCELLED]


async def test_temporary_child_is_never_restarted(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    async with open_supervisor(events=bus) as sup:
        child = await sup.start_child(
            scripted(journal, "tmp", [("crash", 1.0)]), name="tmp", restart=Restart.TEMPORARY
        )
    assert journal.times("start", "tmp") == [0.0]
    assert trio.current_time() == 1.0
    assert decisions(bus) == [("tmp", RecoveryAction.IGNORE, "ValueError")]
    assert child.state is ChildState.FAILED
    assert bus.history(ComponentRecovered) == []


async def test_default_restart_type_applies_to_children_that_set_none(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, default_restart=Restart.TEMPORARY)
        child = await sup.start_child(forever)
        other = await sup.start_child(forever, restart=Restart.PERMANENT)
        assert child.restart is Restart.TEMPORARY
        assert other.restart is Restart.PERMANENT
        await sup.stop()


# -- strategies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "stopped", "restarted", "survivors"),
    [
        (OneForOne(), [], ["b"], ["a", "b", "c", "d"]),
        (OneForAll(), ["d", "c", "a"], ["a", "b", "d"], ["a", "b", "d"]),
        (RestForOne(), ["d", "c"], ["b", "d"], ["a", "b", "d"]),
    ],
    ids=["one_for_one", "one_for_all", "rest_for_one"],
)
async def test_strategy_restart_sets_and_order(
    autojump_clock: trio.abc.Clock,
    strategy: SupervisionStrategyBase,
    stopped: list[str],
    restarted: list[str],
    survivors: list[str],
) -> None:
    """b fails; siblings stop in reverse start order, restart in start order; the
    temporary sibling c stays down; transient d comes back (it did not exit on its own)."""
    journal = Journal()
    bus = EventBus()
    restarts = {"a": Restart.PERMANENT, "c": Restart.TEMPORARY, "d": Restart.TRANSIENT}
    with trio.move_on_after(5):
        async with open_supervisor(events=bus, strategy=strategy) as sup:
            for name in "abcd":
                plan: Plan = [("crash", 1.0), ("forever", 0)] if name == "b" else [("forever", 0)]
                await sup.start_child(
                    scripted(journal, name, plan),
                    name=name,
                    restart=restarts.get(name, Restart.PERMANENT),
                )
            await trio.sleep(2)
            assert [c.name for c in sup.children()] == survivors
            assert all(c.state is ChildState.RUNNING for c in sup.children())
    at_failure = [(w, n, t) for w, n, t in journal.entries if t == 1.0]
    assert at_failure == (
        [("end", "b", 1.0)]
        + [("end", name, 1.0) for name in stopped]
        + [("start", name, 1.0) for name in restarted]
    )
    assert decisions(bus) == [("b", RecoveryAction.RESTART, "ValueError")]
    recovered = bus.history(ComponentRecovered)
    assert [e.child for e in recovered] == restarted
    assert all(e.action is RecoveryAction.RESTART for e in recovered)
    # Shutdown on cancellation: reverse start order of whoever is left.
    assert journal.since(5.0) == [("end", name) for name in reversed(survivors)]
    assert trio.current_time() == 5.0


async def test_strategy_kind_is_accepted(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    with trio.move_on_after(3):
        async with open_supervisor(
            strategy=StrategyKind.REST_FOR_ONE, default_restart=Restart.PERMANENT
        ) as sup:
            assert sup.strategy == RestForOne()
            await sup.start_child(scripted(journal, "a", [("crash", 1.0), ("forever", 0)]))
            await sup.start_child(scripted(journal, "b", [("forever", 0)]))
    assert journal.times("start", "b") == [0.0, 1.0]


async def test_group_restart_counts_once_toward_intensity(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(10):
        async with open_supervisor(
            events=bus, strategy=OneForAll(), max_restarts=1, default_restart=Restart.PERMANENT
        ) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 1.0), ("forever", 0)]))
            for name in "bcd":
                await sup.start_child(scripted(journal, name, [("forever", 0)]), name=name)
    # Four children came back, but it is one restart: max_restarts=1 is not exceeded.
    assert [d[1] for d in decisions(bus)] == [RecoveryAction.RESTART]
    assert journal.times("start", "d") == [0.0, 1.0]
    assert trio.current_time() == 10.0


async def test_simultaneous_failures_under_one_for_all_leave_no_orphan(
    autojump_clock: trio.abc.Clock,
) -> None:
    live: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def worker(name: str) -> None:
        live[name] += 1
        most[name] = max(most[name], live[name])
        try:
            if trio.current_time() < 1:
                await trio.sleep(1)
                raise ValueError(name)
            await trio.sleep(1000)
        finally:
            live[name] -= 1

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(
            nursery, strategy=OneForAll(), default_restart=Restart.PERMANENT, max_restarts=10
        )
        await sup.start_child(worker, "a", name="a")
        await sup.start_child(worker, "b", name="b")
        await trio.sleep(5)
        await sup.stop()
        stopped_at = trio.current_time()
        left_running = dict(live)
    assert most == {"a": 1, "b": 1}  # never two runs of one child at once
    assert left_running == {"a": 0, "b": 0}
    assert stopped_at == 5.0
    assert trio.current_time() == 5.0


async def test_stop_during_a_group_restart_starts_nothing_new(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()

    async def slow_start(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        journal.note("start", "a")
        await trio.sleep(5)
        task_status.started()
        await trio.sleep(1000)

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(
            nursery, strategy=OneForAll(), default_restart=Restart.PERMANENT
        )
        await sup.start_child(slow_start, name="a")  # running from t=5
        await sup.start_child(scripted(journal, "b", [("crash", 1.0), ("return", 1000)]), name="b")
        await trio.sleep(2)  # t=7: b crashed at 6; a is restarting until 11
        await sup.stop()
        journal.note("stopped", "sup")
    assert journal.times("start", "b") == [5.0]
    assert journal.times("stopped", "sup") == [7.0]
    assert trio.current_time() == 7.0


# -- backoff ----------------------------------------------------------------------------------


async def test_backoff_delays_are_exact_with_zero_jitter(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(30):
        async with open_supervisor(
            events=bus,
            max_restarts=100,
            default_restart=Restart.PERMANENT,
            backoff=Backoff(initial=1.0, maximum=4.0, factor=2.0, jitter=0.0, reset_after=3.0),
        ) as sup:
            child = await sup.start_child(
                scripted(
                    journal, "w", [("crash", 1.0), ("crash", 1.0), ("crash", 5.0), ("crash", 1.0)]
                ),
                name="w",
            )
            await trio.sleep(1.5)
            assert child.state is ChildState.WAITING
    # Starts: 0; crash 1 (+1) -> 2; crash 3 (+2) -> 5; ran 5 s >= reset_after: crash 10
    # (+1) -> 11; crash 12 (+2) -> 14; crash 15 (+4) -> 19; crash 20 (+4) -> 24 ...
    assert journal.times("start", "w") == [0.0, 2.0, 5.0, 11.0, 14.0, 19.0, 24.0, 29.0]
    recovered = bus.history(ComponentRecovered)
    assert [e.timestamp for e in recovered] == [2.0, 5.0, 11.0, 14.0, 19.0, 24.0, 29.0]
    assert [e.restarts for e in recovered] == list(range(1, 8))


async def test_backoff_jitter_uses_the_supervisor_rng(autojump_clock: trio.abc.Clock) -> None:
    class FixedRandom:
        def random(self) -> float:
            return 0.0

    journal = Journal()
    with trio.move_on_after(10):
        async with open_supervisor(
            default_restart=Restart.PERMANENT,
            backoff=Backoff(initial=2.0, maximum=10.0, jitter=0.5),
            rng=FixedRandom(),  # type: ignore[arg-type]
        ) as sup:
            await sup.start_child(scripted(journal, "w", [("crash", 1.0), ("forever", 0)]))
    # rand=0 spreads the 2 s base by -50 %: restarted 1 s after the crash.
    assert journal.times("start", "w") == [0.0, 2.0]


async def test_backoff_of_one_child_does_not_delay_another(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    with trio.move_on_after(50):
        async with open_supervisor(
            strategy=OneForOne(),
            default_restart=Restart.PERMANENT,
            backoff=Backoff(initial=10.0, maximum=100.0, jitter=0.0),
        ) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 1.0), ("forever", 0)]))
            await sup.start_child(scripted(journal, "b", [("crash", 2.0), ("forever", 0)]))
    assert journal.times("start", "a") == [0.0, 11.0]
    assert journal.times("start", "b") == [0.0, 12.0]


async def test_one_for_all_stops_siblings_at_the_failure_even_with_backoff(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(20):
        async with open_supervisor(
            events=bus,
            strategy=OneForAll(),
            default_restart=Restart.PERMANENT,
            backoff=Backoff(initial=10.0, maximum=10.0, jitter=0.0),
        ) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 1.0), ("forever", 0)]))
            await sup.start_child(scripted(journal, "b", [("crash", 3.0), ("forever", 0)]))
    # a fails at 1: b goes down with it at once; both come back after the 10 s backoff.
    assert journal.times("end", "b")[0] == 1.0  # actual: 3.0 (b ran on and crashed)
    assert journal.times("start", "a") == [0.0, 11.0]
    assert journal.times("start", "b") == [0.0, 11.0]  # actual: [0.0, 11.0, 13.0]
    assert len(decisions(bus)) == 1


async def test_overlapping_delayed_group_restarts_keep_start_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    with trio.move_on_after(20):
        async with open_supervisor(
            strategy=RestForOne(),
            default_restart=Restart.PERMANENT,
            backoff=Backoff(initial=10.0, maximum=10.0, jitter=0.0),
        ) as sup:
            await sup.start_child(scripted(journal, "a", [("crash", 2.0), ("forever", 0)]))
            await sup.start_child(scripted(journal, "b", [("crash", 1.0), ("forever", 0)]))
            await sup.start_child(scripted(journal, "c", [("forever", 0)]))
    # b fails at 1 (b, c down); a fails at 2 (a, b, c down). When a is back at 12, b
    # and c come back after it, once.
    assert journal.times("start", "a") == [0.0, 12.0]
    assert journal.times("start", "b") == [0.0, 12.0]  # actual: [0.0, 11.0, 12.0]
    assert journal.times("start", "c") == [0.0, 12.0]


# -- shutdown -------------------------------------------------------------------------------


def cleaning(journal: Journal, name: str, cleanup: float) -> Callable[[], Awaitable[None]]:
    """Runs until stopped, then needs ``cleanup`` seconds (under shutdown_grace)."""

    async def child() -> None:
        journal.note("start", name)
        try:
            await trio.sleep_forever()
        finally:
            journal.note("stopping", name)
            with shutdown_grace():
                await trio.sleep(cleanup)
                journal.note("cleaned", name)
            journal.note("end", name)

    child.__name__ = name
    return child


async def test_stop_runs_children_down_in_reverse_order_with_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus, shutdown_timeout=5)
        for name in "abc":
            await sup.start_child(cleaning(journal, name, 1.0), name=name)
        await trio.sleep(10)
        await sup.stop()
        assert trio.current_time() == 13.0
        assert sup.state == "stopped"
    assert [(w, n) for w, n, _ in journal.entries if w == "cleaned"] == [
        ("cleaned", "c"),
        ("cleaned", "b"),
        ("cleaned", "a"),
    ]
    assert journal.times("cleaned", "c") == [11.0]
    assert journal.times("cleaned", "a") == [13.0]
    assert sup.state == "stopped"
    assert [e.reason for e in bus.history(SupervisorStopped)] == ["shutdown"]
    assert bus.history(ShutdownStuck) == []
    assert all(c.state is ChildState.STOPPED for c in sup.children())


async def test_shutdown_grace_is_cut_at_the_shutdown_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        await sup.start_child(cleaning(journal, "a", 1.0), name="a")
        await sup.start_child(cleaning(journal, "slow", 10.0), name="slow", shutdown_timeout=3)
        await sup.stop()
    # slow's cleanup is cancelled at its 3 s deadline; then a gets its turn.
    assert journal.times("cleaned", "slow") == []
    assert journal.times("end", "slow") == [3.0]
    assert journal.times("stopping", "a") == [3.0]
    assert journal.times("cleaned", "a") == [4.0]
    assert trio.current_time() == 4.0


async def test_shielded_stuck_child_is_reported_and_shutdown_moves_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()

    async def stubborn() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(50)
            journal.note("end", "stubborn")

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus, shutdown_timeout=2)
        await sup.start_child(cleaning(journal, "first", 0.5), name="first")
        await sup.start_child(stubborn, name="stubborn")
        await sup.stop()
        stop_returned = trio.current_time()
    stuck = bus.history(ShutdownStuck)
    assert [(e.supervisor, e.child) for e in stuck] == [("supervisor", "stubborn")]
    assert stuck[0].waited == pytest.approx(2.01)
    assert stuck[0].timestamp == pytest.approx(2.01)
    # The stop sequence went on to the earlier child right after the report.
    assert journal.times("stopping", "first") == [pytest.approx(2.01)]
    assert stop_returned == pytest.approx(2.51)
    # Trio still waits for the shielded task itself.
    assert journal.times("end", "stubborn") == [50.0]


async def test_cancelling_the_enclosing_scope_shuts_down_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(5) as scope:
        async with open_supervisor(events=bus, shutdown_timeout=5) as sup:
            for name in "abc":
                await sup.start_child(cleaning(journal, name, 1.0), name=name)
    assert scope.cancelled_caught
    assert [n for w, n, _ in journal.entries if w == "cleaned"] == ["c", "b", "a"]
    assert journal.times("cleaned", "a") == [8.0]
    assert trio.current_time() == 8.0
    assert [e.reason for e in bus.history(SupervisorStopped)] == ["shutdown"]
    assert decisions(bus) == []
    assert [e.exit for e in bus.history(ChildExited)] == [ExitKind.CANCELLED] * 3


async def test_error_in_the_body_shuts_down_and_propagates(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    with pytest.RaisesGroup(KeyError):
        async with open_supervisor() as sup:
            for name in "ab":
                await sup.start_child(cleaning(journal, name, 1.0), name=name)
            await trio.sleep(1)
            raise KeyError("body")
    assert [n for w, n, _ in journal.entries if w == "cleaned"] == ["b", "a"]
    assert trio.current_time() == 3.0


async def test_stop_timeout_bounds_the_whole_shutdown(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, shutdown_timeout=5)
        for name in "abc":
            await sup.start_child(cleaning(journal, name, 2.0), name=name)
        await sup.stop(timeout=3)
        journal.note("stop returned", "sup")
    assert journal.times("cleaned", "c") == [2.0]
    assert journal.times("end", "a") == [3.0]
    assert journal.times("end", "b") == [3.0]  # actual: 4.0 (its grace ran on)
    assert trio.current_time() == 3.0


async def test_stop_timeout_bounds_nested_supervisors_too(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    async with trio.open_nursery() as nursery:
        root = await background_supervisor(nursery, name="root", shutdown_timeout=5)
        await root.start_child(cleaning(journal, "A", 2.0), name="A")
        nested = await root.start_supervisor("N")
        for name in ("N1", "N2"):
            await nested.start_child(cleaning(journal, name, 2.0), name=name)
        await root.stop(timeout=3)
        journal.note("stop returned", "root")
    assert journal.times("cleaned", "N2") == [2.0]
    assert journal.times("end", "N1") == [3.0]  # actual: cleaned and ended at 4.0
    assert journal.times("end", "A") == [3.0]
    assert trio.current_time() == 3.0


async def test_stop_timeout_cancels_children_not_reached(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, shutdown_timeout=5)
        for name in "ab":
            await sup.start_child(cleaning(journal, name, 4.0), name=name)
        await sup.stop(timeout=4)
    # b used its whole 4 s; a, reached when the timeout was up, gets no grace.
    assert journal.times("cleaned", "b") == [4.0]
    assert journal.times("cleaned", "a") == []
    assert journal.times("end", "a") == [4.0]


async def test_stop_from_the_body_returns_to_it(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    async with open_supervisor(events=bus) as sup:
        for name in "ab":
            await sup.start_child(cleaning(journal, name, 1.0), name=name)
        await trio.sleep(1)
        await sup.stop()
        journal.note("after stop", "body")
        with pytest.raises(SupervisionErrorBase):
            await sup.start_child(forever)
    assert journal.times("after stop", "body") == [3.0]
    assert [n for w, n, _ in journal.entries if w == "cleaned"] == ["b", "a"]
    assert trio.current_time() == 3.0
    assert [e.reason for e in bus.history(SupervisorStopped)] == ["shutdown"]


@pytest.mark.parametrize("wait", ["backoff", "breaker"])
async def test_stop_from_the_body_exits_at_once_despite_a_pending_restart(
    autojump_clock: trio.abc.Clock, wait: str
) -> None:
    journal = Journal()
    options: dict[str, Any] = {}
    if wait == "backoff":
        options["backoff"] = Backoff(initial=30.0, maximum=30.0, jitter=0.0)
    async with open_supervisor(default_restart=Restart.PERMANENT, **options) as sup:
        await sup.start_child(
            scripted(journal, "c", [("crash", 1.0)]),
            name="c",
            breaker=CircuitBreaker(failure_threshold=1, reset_timeout=60),
            recovery=RecoveryStrategy.CircuitBreaker() if wait == "breaker" else None,
        )
        await trio.sleep(2)  # c crashed at 1; its restart waits until 31 (or 61)
        await sup.stop()
    assert trio.current_time() == 2.0  # actual: 31.0 (backoff) / 61.0 (breaker)
    assert journal.times("start", "c") == [0.0]


async def test_stop_is_idempotent(autojump_clock: trio.abc.Clock) -> None:
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus)
        await sup.start_child(forever)
        await sup.stop()
        await sup.stop()
    assert len(bus.history(SupervisorStopped)) == 1


async def test_nested_supervisor_shutdown_waits_for_its_children(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A nested supervisor is given the time its own children need (no false stuck)."""
    journal = Journal()
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        root = await background_supervisor(nursery, name="root", events=bus, shutdown_timeout=5)
        await root.start_child(cleaning(journal, "A", 3.0), name="A")
        nested = await root.start_supervisor("N")
        await nested.start_child(cleaning(journal, "N1", 3.0), name="N1")
        await nested.start_child(cleaning(journal, "N2", 3.0), name="N2")
        await root.stop()
    assert [n for w, n, _ in journal.entries if w == "cleaned"] == ["N2", "N1", "A"]
    assert journal.times("cleaned", "A") == [9.0]
    assert bus.history(ShutdownStuck) == []


# -- heartbeats -------------------------------------------------------------------------------


async def test_hung_child_is_restarted_with_heartbeat_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()

    async def beater() -> None:
        run = journal.next_run("hb")
        journal.note("start", "hb")
        heartbeat()
        await trio.sleep(1)
        heartbeat()
        if run == 0:
            await trio.sleep(1000)  # hangs: no more heartbeats
        for _ in range(20):
            await trio.sleep(4)
            heartbeat()
        await trio.sleep_forever()

    with trio.move_on_after(60):
        async with open_supervisor(events=bus, default_restart=Restart.PERMANENT) as sup:
            await sup.start_child(beater, name="hb", heartbeat_timeout=5)
    # Last beat at 1, declared hung at 6, restarted at once; the new run keeps beating.
    assert journal.times("start", "hb") == [0.0, 6.0]
    missed = bus.history(HeartbeatMissed)
    assert [(e.child, e.silent_for, e.timestamp) for e in missed] == [("hb", 5.0, 6.0)]
    assert decisions(bus) == [("hb", RecoveryAction.RESTART, "HeartbeatTimeout")]
    assert bus.history(ChildExited)[0].exit is ExitKind.FAILED


async def test_dropped_heartbeats_make_a_child_hung(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()

    async def beater() -> None:
        journal.note("start", "hb")
        while True:
            heartbeat()
            await trio.sleep(1)

    with trio.move_on_after(10):
        async with open_supervisor(events=bus, default_restart=Restart.PERMANENT) as sup:
            child = await sup.start_child(beater, name="hb", heartbeat_timeout=3)
            await trio.sleep(2.5)
            child.heartbeats_dropped = True  # failure injection: it goes silent
            await trio.sleep(3.5)
            child.heartbeats_dropped = False
    # Last beat counted at 2; declared hung at 5 and restarted; beats again after that.
    assert journal.times("start", "hb") == [0.0, 5.0]
    assert [e.timestamp for e in bus.history(HeartbeatMissed)] == [5.0]


async def test_inject_failure_crashes_the_run_like_that_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus, default_restart=Restart.PERMANENT)
        child = await sup.start_child(scripted(journal, "v", [("forever", 0)]), name="v")
        await trio.sleep(2)
        assert child.inject_failure(KeyError("injected"))
        await trio.sleep(1)
        assert journal.times("start", "v") == [0.0, 2.0]
        assert decisions(bus) == [("v", RecoveryAction.RESTART, "KeyError")]
        assert child.failures == 1
        await child.stop()
        assert not child.inject_failure(KeyError("too late"))
        await sup.stop()


async def test_children_without_heartbeat_timeout_are_not_watched(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus = EventBus()
    with trio.move_on_after(1000):
        async with open_supervisor(events=bus) as sup:
            await sup.start_child(forever, name="quiet")
    assert bus.history(HeartbeatMissed) == []
    heartbeat()  # outside a supervised child: a no-op


async def test_heartbeat_timeout_error_type_is_a_timeout() -> None:
    assert issubclass(HeartbeatTimeout, TimeoutError)


# -- start_child -----------------------------------------------------------------------------


def test_stop_while_a_child_is_being_started_stops_it() -> None:
    """Trio runs a batch in either order, so this races start_child and stop() many times."""

    async def scenario() -> tuple[int, float]:
        live = 0

        async def leaf() -> None:
            nonlocal live
            live += 1
            try:
                await trio.sleep(1000)
            finally:
                live -= 1

        async def start(sup: Supervisor) -> None:
            with contextlib.suppress(SupervisionErrorBase):  # stop() won the race
                await sup.start_child(leaf)

        async with trio.open_nursery() as nursery:
            sup = await background_supervisor(nursery)
            nursery.start_soon(start, sup)
            nursery.start_soon(sup.stop)
            await trio.sleep(1)
            left = live
        return left, trio.current_time()

    outcomes = [
        trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0)) for _ in range(30)
    ]
    assert outcomes == [(0, 1.0)] * 30


async def test_start_child_returns_after_task_status_started(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def server(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(2)
        task_status.started(42)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        child = await sup.start_child(server, name="srv")
        assert trio.current_time() == 2.0
        assert child.value == 42
        assert child.state is ChildState.RUNNING
        assert sup.child("srv") is child
        await sup.stop()


async def test_start_child_error_before_started_propagates_and_child_is_not_added(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus = EventBus()

    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(1)
        raise OSError("no port")

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, events=bus)
        with pytest.raises(OSError, match="no port"):
            await sup.start_child(broken, name="srv", restart=Restart.PERMANENT)
        assert trio.current_time() == 1.0
        assert sup.children() == []
        with pytest.raises(LookupError):
            sup.child("srv")
        # The name is free again and nothing was decided or restarted.
        await sup.start_child(forever, name="srv")
        await trio.sleep(10)
        assert decisions(bus) == []
        await sup.stop()


async def test_child_without_task_status_counts_as_started_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        child = await sup.start_child(forever, name="f")
        assert trio.current_time() == 0.0
        assert child.value is None
        assert child.state is ChildState.RUNNING
        await sup.stop()


async def test_restarted_child_reports_its_new_started_value(
    autojump_clock: trio.abc.Clock,
) -> None:
    runs = 0

    async def server(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        task_status.started(runs)
        await trio.sleep(1)
        if runs == 1:
            raise ValueError("once")
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, default_restart=Restart.PERMANENT)
        child = await sup.start_child(server)
        assert child.value == 1
        await trio.sleep(5)
        assert child.value == 2
        assert child.restarts == 1
        assert child.failures == 1
        await sup.stop()


async def test_children_declared_up_front_start_in_order(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    specs = [ChildSpec.of(cleaning(journal, name, 0.0), name=name) for name in "xyz"]
    with trio.move_on_after(1):
        async with open_supervisor(events=bus, children=specs) as sup:
            assert [c.name for c in sup.children()] == ["x", "y", "z"]
    assert journal.names("start") == ["x", "y", "z"]
    assert journal.names("end") == ["z", "y", "x"]
    assert [e.child for e in bus.history(ChildStarted)] == ["x", "y", "z"]


# -- dynamic children -------------------------------------------------------------------------


async def test_dynamic_children_start_stop_and_list(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    removed: list[str] = []
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(
            nursery, on_child_removed=lambda child: removed.append(child.name)
        )
        assert sup.children() == []
        handles = [
            await sup.start_child(cleaning(journal, f"w{i}", 0.0), name=f"w{i}") for i in range(4)
        ]
        assert [c.name for c in sup.children()] == ["w0", "w1", "w2", "w3"]
        await trio.sleep(1)
        await sup.stop_child("w1")
        await handles[2].stop()
        assert [c.name for c in sup.children()] == ["w0", "w3"]
        assert handles[1].state is ChildState.STOPPED
        assert removed == ["w1", "w2"]
        assert journal.names("end") == ["w1", "w2"]
        with pytest.raises(LookupError):
            await sup.stop_child("w1")
        # A stopped name can be used again.
        await sup.start_child(cleaning(journal, "w1b", 0.0), name="w1")
        assert [c.name for c in sup.children()] == ["w0", "w3", "w1"]
        stats = sup.statistics()
        assert (stats.children, stats.restarts, stats.failures) == (3, 0, 0)
        await sup.stop()
    assert journal.names("end")[2:] == ["w1b", "w3", "w0"]
    assert removed == ["w1", "w2"]  # shutdown does not call on_child_removed


async def test_duplicate_names_are_refused(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        first = await sup.start_child(forever, name="dup")
        with pytest.raises(ValueError, match="dup"):
            await sup.start_child(forever, name="dup")
        assert sup.children() == [first]
        assert first.state is ChildState.RUNNING
        await sup.stop()


async def test_generated_names_are_unique(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        await sup.start_child(forever, name="forever-2")
        children = [await sup.start_child(forever) for _ in range(3)]
        names = [c.name for c in sup.children()]
        assert len(set(names)) == 4
        assert all(c.name.startswith("forever-") for c in children)
        await sup.stop()


async def test_stop_child_of_another_supervisor_is_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        one = await background_supervisor(nursery, name="one")
        two = await background_supervisor(nursery, name="two")
        child = await one.start_child(forever)
        with pytest.raises(ValueError):
            await two.stop_child(child)
        assert child.state is ChildState.RUNNING
        await two.stop()
        await one.stop()


async def test_start_child_after_stop_is_refused(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        await sup.stop()
        with pytest.raises(SupervisionErrorBase):
            await sup.start_child(forever)


async def test_child_spec_and_args_together_are_refused(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        with pytest.raises(TypeError):
            await sup.start_child(ChildSpec.of(forever), 1)
        await sup.stop()


async def test_child_spec_and_options_together_are_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        try:
            with pytest.raises(TypeError):
                await sup.start_child(ChildSpec.of(forever), name="ignored")
        finally:
            await sup.stop()


async def test_current_child_inside_and_outside(autojump_clock: trio.abc.Clock) -> None:
    seen: list[Child | None] = []

    async def me() -> None:
        seen.append(current_child())
        await trio.sleep_forever()

    assert current_child() is None
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery)
        child = await sup.start_child(me, name="me")
        await trio.sleep(0)
        assert seen == [child]
        await sup.stop()


async def test_on_terminated_is_called_once_when_gone_for_good(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    gone: list[tuple[str, float]] = []

    def note(child: Child) -> None:
        gone.append((child.name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(nursery, default_restart=Restart.PERMANENT)
        plans: list[tuple[str, Plan]] = [
            ("r", [("crash", 1.0), ("forever", 0)]),
            ("s", [("forever", 0)]),
        ]
        for name, plan in plans:
            spec = ChildSpec.of(scripted(journal, name, plan), name=name, on_terminated=note)
            await sup.start_child(spec)
        await trio.sleep(3)
        assert gone == []  # the restart at 1 is not a termination
        await sup.stop_child("s")
        await sup.stop()
    assert gone == [("s", 3.0), ("r", 3.0)]


async def test_statistics_and_shutdown_bound(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    async with trio.open_nursery() as nursery:
        sup = await background_supervisor(
            nursery, name="stats", default_restart=Restart.PERMANENT, shutdown_timeout=2
        )
        await sup.start_child(scripted(journal, "a", [("crash", 1.0), ("forever", 0)]))
        await sup.start_child(forever, shutdown_timeout=3)
        await trio.sleep(2)
        stats = sup.statistics()
        assert (stats.name, stats.state, stats.children) == ("stats", "running", 2)
        assert (stats.restarts, stats.failures, stats.decisions) == (1, 1, 1)
        assert sup.shutdown_bound() == pytest.approx(2 + 3 + 2 * 0.01)
        assert "stats" in repr(sup)
        await sup.stop()
    assert math.isfinite(trio.current_time())
