"""Recovery strategies are carried out, not just labelled; escalation climbs the tree.

Retry, Restart, Escalate, Reload, CircuitBreaker, Failover and Ignore, each on virtual
time with exact instants, plus the events every decision and restart must produce.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
from supervision_journal import Journal, forever

from mister_smith.errors import (
    ConfigError,
    ErrorSeverity,
    EscalatedError,
    NetworkError,
    PersistenceError,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    RestartIntensityExceeded,
    RuntimeFault,
    SupervisionError,
)
from mister_smith.events import (
    CircuitStateChanged,
    ComponentRecovered,
    EventBus,
    SupervisionDecision,
    SupervisorStopped,
)
from mister_smith.supervision import (
    ChildSpec,
    ChildState,
    CircuitBreaker,
    OneForAll,
    RestForOne,
    Supervisor,
    open_supervisor,
)
from mister_smith.types import Restart


def crashing(
    journal: Journal,
    name: str,
    error: Callable[[int], BaseException],
    *,
    after: float = 1.0,
    times: int | None = None,
) -> Callable[[], Awaitable[None]]:
    """A child that raises ``error(run)`` ``after`` seconds into each of its first
    ``times`` runs (every run when ``None``), then runs until stopped."""

    async def child() -> None:
        run = journal.next_run(name)
        journal.note("start", name)
        try:
            if times is None or run < times:
                await trio.sleep(after)
                raise error(run)
            await trio.sleep_forever()
        finally:
            journal.note("end", name)

    child.__name__ = name
    return child


def decisions(bus: EventBus) -> list[tuple[str, RecoveryAction, int]]:
    return [(d.child, d.action, d.attempt) for d in bus.history(SupervisionDecision)]


def recovered(bus: EventBus) -> list[tuple[str, RecoveryAction, float]]:
    return [(e.child, e.action, e.timestamp) for e in bus.history(ComponentRecovered)]


# -- Retry ---------------------------------------------------------------------------------


async def test_retry_reruns_in_place_after_its_delay_then_restarts(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    retry = RecoveryStrategy.Retry(max_attempts=2, delay=1.5)
    with trio.move_on_after(8):
        async with open_supervisor(events=bus, max_restarts=10) as sup:
            child = await sup.start_child(
                crashing(journal, "r", lambda run: ValueError(run)), name="r", recovery=retry
            )
            await trio.sleep(1.5)
            assert child.state is ChildState.WAITING
    # crash 1 -> retry at 2.5; crash 3.5 -> retry at 5; crash 6 -> attempts used up:
    # restart at once; crash 7 -> a fresh retry budget, at 8.5 (cut by the deadline).
    assert journal.times("start", "r") == [0.0, 2.5, 5.0, 6.0]
    assert decisions(bus) == [
        ("r", RecoveryAction.RETRY, 1),
        ("r", RecoveryAction.RETRY, 2),
        ("r", RecoveryAction.RESTART, 0),
        ("r", RecoveryAction.RETRY, 1),
    ]
    assert recovered(bus) == [
        ("r", RecoveryAction.RETRY, 2.5),
        ("r", RecoveryAction.RETRY, 5.0),
        ("r", RecoveryAction.RESTART, 6.0),
    ]
    assert child.retries == 3
    assert child.restarts == 4
    assert child.failures == 4


async def test_retries_do_not_count_toward_intensity(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()

    async def body() -> None:
        async with open_supervisor(events=bus, max_restarts=1) as sup:
            await sup.start_child(
                crashing(journal, "r", lambda run: ValueError(run)),
                name="r",
                recovery=RecoveryStrategy.Retry(max_attempts=2, delay=0.0),
            )

    with pytest.raises(RestartIntensityExceeded):
        await body()
    # retry, retry, restart (1st), retry, retry, restart (2nd > max_restarts=1).
    assert len(journal.times("start", "r")) == 6
    assert trio.current_time() == 6.0
    assert [a for _, a, _ in decisions(bus)] == [
        RecoveryAction.RETRY,
        RecoveryAction.RETRY,
        RecoveryAction.RESTART,
        RecoveryAction.RETRY,
        RecoveryAction.RETRY,
        RecoveryAction.ESCALATE,
    ]


async def test_retry_leaves_siblings_alone_even_under_one_for_all(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    with trio.move_on_after(5):
        async with open_supervisor(strategy=OneForAll()) as sup:
            await sup.start_child(crashing(journal, "sib", lambda r: ValueError(), times=0))
            await sup.start_child(
                crashing(journal, "r", lambda run: ResourceError("busy"), times=1),
                name="r",
            )
    # ResourceError's own strategy: Retry(3 attempts, 1 s delay).
    assert journal.times("start", "r") == [0.0, 2.0]
    assert journal.times("start", "sib") == [0.0]


# -- Restart --------------------------------------------------------------------------------


async def test_explicit_restart_overrides_the_errors_own_strategy(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(5):
        async with open_supervisor(events=bus) as sup:
            await sup.start_child(
                crashing(journal, "s", lambda run: SupervisionError("would escalate"), times=1),
                name="s",
                recovery=RecoveryStrategy.Restart(),
            )
    assert journal.times("start", "s") == [0.0, 1.0]
    assert decisions(bus) == [("s", RecoveryAction.RESTART, 0)]
    assert recovered(bus) == [("s", RecoveryAction.RESTART, 1.0)]


async def test_recovery_policy_may_be_a_function_of_the_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()

    def policy(error: BaseException) -> RecoveryStrategy:
        if isinstance(error, KeyError):
            return RecoveryStrategy.Ignore()
        return RecoveryStrategy.Restart()

    errors: list[BaseException] = [ValueError("again"), KeyError("done")]
    async with open_supervisor(events=bus) as sup:
        await sup.start_child(
            crashing(journal, "f", lambda run: errors[run], times=2), name="f", recovery=policy
        )
    assert journal.times("start", "f") == [0.0, 1.0]
    assert [a for _, a, _ in decisions(bus)] == [RecoveryAction.RESTART, RecoveryAction.IGNORE]
    assert trio.current_time() == 2.0


# -- Escalate -------------------------------------------------------------------------------


async def test_escalate_fails_the_supervisor_at_once(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    cause = SupervisionError("cannot go on")

    async def body() -> None:
        async with open_supervisor("sup", events=bus, max_restarts=100) as sup:
            await sup.start_child(crashing(journal, "a", lambda r: ValueError(), times=0))
            await sup.start_child(crashing(journal, "b", lambda r: ValueError(), times=0))
            await sup.start_child(crashing(journal, "e", lambda run: cause, after=2.0), name="e")

    with pytest.raises(EscalatedError) as info:
        await body()
    assert info.value.__cause__ is cause
    assert (info.value.supervisor, info.value.child) == ("sup", "e")
    assert trio.current_time() == 2.0
    assert journal.times("start", "e") == [0.0]
    # Remaining children stopped in reverse start order.
    assert [n for w, n, t in journal.entries if w == "end"] == ["e", "b", "a"]
    assert decisions(bus) == [("e", RecoveryAction.ESCALATE, 0)]
    assert bus.history(ComponentRecovered) == []
    assert len(bus.history(SupervisorStopped)) == 1


async def test_escalation_through_three_levels_reaches_the_root(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    cause = SupervisionError("deep trouble")
    supervisors: list[Supervisor] = []

    async def body() -> None:
        async with open_supervisor("root", events=bus, max_restarts=100) as root:
            await root.start_child(crashing(journal, "root-worker", lambda r: cause, times=0))
            # Escalate declared at each level: by default a parent restarts a nested
            # supervisor that gave up (failures climb one level at a time).
            mid = await root.start_supervisor("mid", recovery=RecoveryStrategy.Escalate())
            leaf = await mid.start_supervisor("leaf", recovery=RecoveryStrategy.Escalate())
            supervisors.extend([root, mid, leaf])
            await leaf.start_child(crashing(journal, "bad", lambda run: cause, after=3.0))

    with pytest.raises(EscalatedError) as info:
        await body()
    assert trio.current_time() == 3.0
    chain: list[tuple[str, str]] = []
    error: BaseException | None = info.value
    while isinstance(error, EscalatedError):
        chain.append((error.supervisor, error.child))
        error = error.__cause__
    assert chain == [("root", "mid"), ("mid", "leaf"), ("leaf", "bad-1")]
    assert error is cause
    assert [(d.supervisor, d.child, d.action) for d in bus.history(SupervisionDecision)] == [
        ("leaf", "bad-1", RecoveryAction.ESCALATE),
        ("mid", "leaf", RecoveryAction.ESCALATE),
        ("root", "mid", RecoveryAction.ESCALATE),
    ]
    assert [s.state for s in supervisors] == ["failed"] * 3
    assert journal.times("end", "root-worker") == [3.0]


async def test_intensity_failure_escalates_to_the_root_when_declared(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()

    async def body() -> None:
        async with open_supervisor("root", events=bus) as root:
            mid = await root.start_supervisor("mid", recovery=RecoveryStrategy.Escalate())
            leaf = await mid.start_supervisor(
                "leaf", max_restarts=1, recovery=RecoveryStrategy.Escalate()
            )
            await leaf.start_child(
                crashing(journal, "w", lambda run: ValueError(run)),
                name="w",
                restart=Restart.PERMANENT,
            )

    with pytest.raises(EscalatedError) as info:
        await body()
    assert trio.current_time() == 2.0
    leaf_failure = info.value.__cause__
    assert isinstance(leaf_failure, EscalatedError)
    assert isinstance(leaf_failure.__cause__, RestartIntensityExceeded)
    assert isinstance(leaf_failure.__cause__.__cause__, ValueError)
    assert [(d.supervisor, d.action) for d in bus.history(SupervisionDecision)] == [
        ("leaf", RecoveryAction.RESTART),
        ("leaf", RecoveryAction.ESCALATE),
        ("mid", RecoveryAction.ESCALATE),
        ("root", RecoveryAction.ESCALATE),
    ]


async def test_parent_may_restart_a_failed_nested_supervisor(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    specs = [
        ChildSpec.of(
            crashing(journal, "w", lambda run: ValueError(run), times=1),
            name="w",
            restart=Restart.PERMANENT,
        ),
        ChildSpec.of(crashing(journal, "calm", lambda r: ValueError(), times=0), name="calm"),
    ]
    with trio.move_on_after(10):
        async with open_supervisor("root", events=bus, keep_alive=True) as root:
            first = await root.start_supervisor(
                "nested", children=specs, max_restarts=0, recovery=RecoveryStrategy.Restart()
            )
            await trio.sleep(5)
            second = root.child("nested").value
            assert isinstance(second, Supervisor)
            assert second is not first
            assert first.state == "failed"
            assert [c.name for c in second.children()] == ["w", "calm"]
    # The nested supervisor gave up at 1 and was re-created with its declared children.
    assert journal.times("start", "w") == [0.0, 1.0]
    assert journal.times("start", "calm") == [0.0, 1.0]
    assert ("root", "nested", RecoveryAction.RESTART) in [
        (d.supervisor, d.child, d.action) for d in bus.history(SupervisionDecision)
    ]


# -- Reload ---------------------------------------------------------------------------------


async def test_reload_calls_the_hook_then_restarts(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()

    async def reload() -> None:
        journal.note("reload begins", "hook")
        await trio.sleep(2)
        journal.note("reload done", "hook")

    with trio.move_on_after(10):
        async with open_supervisor(events=bus, reload=reload) as sup:
            await sup.start_child(
                crashing(journal, "c", lambda run: ConfigError("stale"), times=1), name="c"
            )
    assert journal.times("reload begins", "hook") == [1.0]
    assert journal.times("reload done", "hook") == [3.0]
    assert journal.times("start", "c") == [0.0, 3.0]
    assert decisions(bus) == [("c", RecoveryAction.RELOAD, 0)]
    assert recovered(bus) == [("c", RecoveryAction.RELOAD, 3.0)]


async def test_reload_hook_failure_fails_the_supervisor(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    broken = OSError("config file gone")

    async def reload() -> None:
        await trio.sleep(1)
        raise broken

    async def body() -> None:
        async with open_supervisor(reload=reload) as sup:
            await sup.start_child(crashing(journal, "c", lambda run: ConfigError("stale")))

    with pytest.raises(EscalatedError) as info:
        await body()
    assert info.value.__cause__ is broken
    assert trio.current_time() == 2.0
    assert journal.times("start", "c") == [0.0]


async def test_reload_without_a_hook_just_restarts(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(5):
        async with open_supervisor(events=bus) as sup:
            await sup.start_child(
                crashing(journal, "c", lambda run: ConfigError("stale"), times=1), name="c"
            )
    assert journal.times("start", "c") == [0.0, 1.0]
    assert decisions(bus) == [("c", RecoveryAction.RELOAD, 0)]


# -- CircuitBreaker -------------------------------------------------------------------------


async def test_circuit_breaker_gates_restarts_while_open(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    breaker = CircuitBreaker(
        "gate", failure_threshold=1, reset_timeout=10, half_open_max_calls=1, events=bus
    )
    with trio.move_on_after(30):
        async with open_supervisor(events=bus, max_restarts=2) as sup:
            child = await sup.start_child(
                crashing(journal, "n", lambda run: NetworkError("down"), times=2),
                name="n",
                breaker=breaker,
            )
            await trio.sleep(5)
            assert child.state is ChildState.WAITING
    # Each crash opens the breaker; the restart waits out the 10 s reset timeout.
    # Breaker restarts are not counted one by one toward intensity (no RESTART
    # decision); only the breaker's openings in a row are, against max_restarts.
    assert journal.times("start", "n") == [0.0, 11.0, 22.0]
    assert [a for _, a, _ in decisions(bus)] == [RecoveryAction.CIRCUIT_BREAKER] * 2
    assert [(e.action, e.timestamp) for e in bus.history(ComponentRecovered)] == [
        (RecoveryAction.CIRCUIT_BREAKER, 11.0),
        (RecoveryAction.CIRCUIT_BREAKER, 22.0),
    ]
    changes = [(e.old_state, e.new_state, e.timestamp) for e in bus.history(CircuitStateChanged)]
    assert changes[:3] == [
        ("closed", "open", 1.0),
        ("open", "half_open", 11.0),
        ("half_open", "closed", 11.0),
    ]


async def test_a_breaker_that_keeps_opening_spends_the_intensity(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreaker("gate", failure_threshold=1, reset_timeout=10, half_open_max_calls=1)
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor(max_restarts=0) as sup:
            await sup.start_child(
                crashing(Journal(), "n", lambda run: NetworkError("down")),
                name="n",
                breaker=breaker,
            )
    assert trio.current_time() == 1.0  # the first opening is one more than 0 allows


async def test_circuit_breaker_opens_after_threshold_consecutive_crashes(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    breaker = CircuitBreaker("gate", failure_threshold=3, reset_timeout=10, half_open_max_calls=1)
    with trio.move_on_after(20):
        async with open_supervisor() as sup:
            await sup.start_child(
                crashing(journal, "n", lambda run: ConnectionError("down")),
                name="n",
                restart=Restart.PERMANENT,
                breaker=breaker,
            )
    # Crashes at 1, 2, 3: the third opens the breaker; the restart waits until 13.
    assert journal.times("start", "n")[:5] == [0.0, 1.0, 2.0, 13.0, 14.0]
    assert breaker.statistics().opened >= 1


async def test_a_pending_gated_restart_does_not_restart_a_child_twice(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    breaker = CircuitBreaker("gate", failure_threshold=1, reset_timeout=10, half_open_max_calls=1)
    with trio.move_on_after(20):
        async with open_supervisor(
            events=bus, strategy=RestForOne(), default_restart=Restart.PERMANENT
        ) as sup:
            await sup.start_child(
                crashing(journal, "v", lambda run: ValueError("v"), after=3.0, times=1), name="v"
            )
            await sup.start_child(
                crashing(journal, "n", lambda run: NetworkError("down"), times=1),
                name="n",
                breaker=breaker,
            )
    # n fails at 1 (breaker open until 11); v fails at 3 and, rest-for-one, takes n with
    # it. Whichever restart brings n back, it comes back once, not at 3 *and* at 11.
    assert len(journal.times("start", "n")) == 2  # actual: [0.0, 3.0, 11.0]
    assert journal.times("start", "v") == [0.0, 3.0]


async def test_circuit_breaker_recovery_uses_the_breaker_factory(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    made: list[CircuitBreaker] = []

    def factory(name: str) -> CircuitBreaker:
        breaker = CircuitBreaker(name, failure_threshold=1, reset_timeout=4)
        made.append(breaker)
        return breaker

    with trio.move_on_after(20):
        async with open_supervisor("sup", breaker_factory=factory) as sup:
            await sup.start_child(
                crashing(journal, "n", lambda run: NetworkError("down"), times=2), name="n"
            )
    assert [b.name for b in made] == ["sup/n"]  # one breaker, reused for every restart
    assert journal.times("start", "n") == [0.0, 5.0, 10.0]


# -- Failover -------------------------------------------------------------------------------


async def test_failover_starts_the_fallback_in_place(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()

    async def backup() -> None:
        journal.note("start", "backup")
        await trio.sleep(2)
        raise PersistenceError("backup disk too")

    with trio.move_on_after(10):
        async with open_supervisor(events=bus, max_restarts=5) as sup:
            child = await sup.start_child(
                crashing(journal, "db", lambda run: PersistenceError("disk"), times=1),
                name="db",
                fallback=backup,
            )
            await trio.sleep(1.5)
            assert child.spec.fn is backup
            assert child.name == "db"
    # Primary failed at 1 -> backup; the backup has no fallback of its own: restarted.
    assert journal.times("start", "db") == [0.0]
    assert journal.times("start", "backup") == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert [a for _, a, _ in decisions(bus)][:2] == [
        RecoveryAction.FAILOVER,
        RecoveryAction.RESTART,
    ]
    assert recovered(bus)[0] == ("db", RecoveryAction.FAILOVER, 1.0)


async def test_failover_without_fallback_restarts(autojump_clock: trio.abc.Clock) -> None:
    journal = Journal()
    bus = EventBus()
    with trio.move_on_after(5):
        async with open_supervisor(events=bus) as sup:
            await sup.start_child(
                crashing(journal, "db", lambda run: PersistenceError("disk"), times=1), name="db"
            )
    assert journal.times("start", "db") == [0.0, 1.0]
    assert decisions(bus) == [("db", RecoveryAction.RESTART, 0)]


# -- Ignore ---------------------------------------------------------------------------------


async def test_ignore_treats_a_transient_childs_failure_as_a_normal_exit(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()
    async with open_supervisor(events=bus) as sup:
        await sup.start_child(
            crashing(journal, "i", lambda run: ValueError("meh")),
            name="i",
            restart=Restart.TRANSIENT,
            recovery=RecoveryStrategy.Ignore(),
        )
    assert journal.times("start", "i") == [0.0]
    assert trio.current_time() == 1.0
    assert decisions(bus) == [("i", RecoveryAction.IGNORE, 0)]
    assert [e.reason for e in bus.history(SupervisorStopped)] == ["normal"]


async def test_ignored_failure_leaves_the_child_stopped(autojump_clock: trio.abc.Clock) -> None:
    async with open_supervisor() as sup:
        child = await sup.start_child(
            crashing(Journal(), "i", lambda run: ValueError("meh")),
            restart=Restart.TRANSIENT,
            recovery=RecoveryStrategy.Ignore(),
        )
    assert child.state is ChildState.STOPPED


async def test_ignore_on_a_permanent_child_restarts_it_like_a_normal_exit(
    autojump_clock: trio.abc.Clock,
) -> None:
    journal = Journal()
    bus = EventBus()

    async def body() -> None:
        async with open_supervisor(events=bus, max_restarts=2) as sup:
            await sup.start_child(
                crashing(journal, "i", lambda run: ValueError("meh")),
                name="i",
                restart=Restart.PERMANENT,
                recovery=RecoveryStrategy.Ignore(),
            )

    with pytest.raises(RestartIntensityExceeded):
        await body()
    assert journal.times("start", "i") == [0.0, 1.0, 2.0]
    assert [a for _, a, _ in decisions(bus)] == [RecoveryAction.IGNORE] * 2 + [
        RecoveryAction.ESCALATE
    ]


# -- one decision per failure, one ComponentRecovered per restart ------------------------------


@pytest.mark.parametrize(
    ("error", "action", "severity"),
    [
        (ValueError("bug"), RecoveryAction.RESTART, ErrorSeverity.CRITICAL),
        (
            RuntimeFault("soft", severity=ErrorSeverity.LOW),
            RecoveryAction.RESTART,
            ErrorSeverity.LOW,
        ),
        (ResourceError("busy"), RecoveryAction.RETRY, ErrorSeverity.MEDIUM),
        (ConfigError("stale"), RecoveryAction.RELOAD, ErrorSeverity.MEDIUM),
        (NetworkError("down"), RecoveryAction.CIRCUIT_BREAKER, ErrorSeverity.LOW),
        (PersistenceError("disk"), RecoveryAction.FAILOVER, ErrorSeverity.HIGH),
        (SupervisionError("up"), RecoveryAction.ESCALATE, ErrorSeverity.HIGH),
        (
            ValueError("custom"),
            RecoveryAction.IGNORE,
            ErrorSeverity.CRITICAL,
        ),
    ],
    ids=lambda value: getattr(value, "name", type(value).__name__),
)
async def test_each_failure_gets_exactly_one_decision_event(
    autojump_clock: trio.abc.Clock,
    error: BaseException,
    action: RecoveryAction,
    severity: ErrorSeverity,
) -> None:
    journal = Journal()
    bus = EventBus()
    recovery = RecoveryStrategy.Ignore() if str(error) == "custom" else None

    async def body() -> None:
        with trio.move_on_after(100):
            async with open_supervisor("s", events=bus) as sup:
                await sup.start_child(
                    crashing(journal, "c", lambda run: error, times=1),
                    name="c",
                    restart=Restart.PERMANENT,
                    recovery=recovery,
                    fallback=forever,
                    breaker=CircuitBreaker(failure_threshold=1, reset_timeout=1),
                )

    if action is RecoveryAction.ESCALATE:
        with pytest.raises(EscalatedError):
            await body()
    else:
        await body()
    [decision] = bus.history(SupervisionDecision)
    assert (decision.supervisor, decision.child) == ("s", "c")
    assert decision.action is action
    assert decision.severity is severity
    assert decision.error_type == type(error).__name__
    assert decision.error == str(error)
    restarts = bus.history(ComponentRecovered)
    if action is RecoveryAction.ESCALATE:
        assert restarts == []
    else:
        [restart] = restarts
        assert (restart.child, restart.action, restart.restarts) == ("c", action, 1)
