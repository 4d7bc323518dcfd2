"""Property test: random supervision trees under random failure schedules.

Each example builds a tree (depth <= 4, a few children per supervisor, random strategy,
intensity and restart types), gives every leaf a schedule of virtual instants at which
it crashes (errors of several kinds and severities) or returns, runs it in a fresh
``trio.run`` on a ``MockClock``, stops the root, and then checks that

* no task is left running once ``stop()`` returns (nor when ``trio.run`` ends);
* every exit that is not part of a shutdown got exactly one ``SupervisionDecision``
  (failures always; normal returns of permanent children), and nothing else did;
* every decision carries the error's severity;
* no supervisor restarted more often than its intensity allows: within any window the
  restarts that count stay <= ``max_restarts``, the one beyond is an escalation, and
  that supervisor then failed with ``RestartIntensityExceeded``.

The checks work from the event history (``ChildExited`` is tagged by a synchronous
handler with whether its supervisor or the child was already being stopped).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, given, note, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from mister_smith.errors import (
    ConfigError,
    ErrorSeverity,
    NetworkError,
    PersistenceError,
    RecoveryAction,
    RecoveryStrategy,
    ResourceError,
    RuntimeFault,
    SupervisionError,
    TaskError,
)
from mister_smith.events import (
    ChildExited,
    Event,
    EventBus,
    ExitKind,
    SupervisionDecision,
    SupervisorStopped,
)
from mister_smith.supervision import (
    ChildSpec,
    ChildState,
    CircuitBreaker,
    StrategyKind,
    Supervisor,
    open_supervisor,
)
from mister_smith.types import Restart

END = 40.0
"""The root is stopped at this virtual instant."""

HORIZON = 10_000.0
"""A leaf with nothing left to do sleeps until here, never forever: a run that escaped
its supervisor would end the ``trio.run`` late instead of hanging it."""

MAX_DEPTH = 4

KINDS: dict[str, tuple[Callable[[], BaseException] | None, ErrorSeverity]] = {
    "return": (None, ErrorSeverity.LOW),
    "value": (lambda: ValueError("bug"), ErrorSeverity.CRITICAL),
    "fault-low": (lambda: RuntimeFault("soft", severity=ErrorSeverity.LOW), ErrorSeverity.LOW),
    "fault-high": (lambda: RuntimeFault("hard", severity=ErrorSeverity.HIGH), ErrorSeverity.HIGH),
    "resource": (
        lambda: ResourceError(
            "busy", recovery_strategy=RecoveryStrategy.Retry(max_attempts=1, delay=0.5)
        ),
        ErrorSeverity.MEDIUM,
    ),
    "task": (lambda: TaskError("flaky"), ErrorSeverity.LOW),
    "config": (lambda: ConfigError("stale"), ErrorSeverity.MEDIUM),
    "persistence": (lambda: PersistenceError("disk"), ErrorSeverity.HIGH),
    "network": (lambda: NetworkError("down"), ErrorSeverity.LOW),
    "ignore": (
        lambda: RuntimeFault("noise", recovery_strategy=RecoveryStrategy.Ignore()),
        ErrorSeverity.CRITICAL,
    ),
    "supervision": (lambda: SupervisionError("give up"), ErrorSeverity.HIGH),
}
"""Outcome kinds: how to make the error (``None``: return normally) and its severity."""

ERROR_TYPE_KIND = {
    "ValueError": "value",
    "RuntimeFault": "fault",
    "ResourceError": "resource",
    "TaskError": "task",
    "ConfigError": "config",
    "PersistenceError": "persistence",
    "NetworkError": "network",
    "SupervisionError": "supervision",
}

SUPERVISOR_FAILURES = {"EscalatedError", "RestartIntensityExceeded"}


# -- plans ---------------------------------------------------------------------------------


@attrs.frozen
class LeafPlan:
    name: str
    restart: Restart
    schedule: tuple[tuple[float, str], ...]
    """(virtual instant, outcome kind), sorted; each entry fires at most once."""


@attrs.frozen
class SupPlan:
    name: str
    strategy: StrategyKind
    max_restarts: int
    window: float
    escalate: bool
    """As a nested child: escalate its failure (declared ``Escalate``) or restart it
    (the default: failures climb one level at a time)."""
    children: tuple[LeafPlan | SupPlan, ...]

    def walk(self) -> Iterator[LeafPlan | SupPlan]:
        yield self
        for child in self.children:
            if isinstance(child, SupPlan):
                yield from child.walk()
            else:
                yield child


SIMULTANEOUS_FAILURES = True
"""Let leaves of different subtrees fail at the same instant (quarter seconds).

Simultaneous cascades are where the supervisor's races live: this is how the property
test found that a supervisor stopped while ``start_child`` was under way skipped that
child (see the regression test below). Set it to ``False`` to keep leaf events on
distinct whole seconds when chasing some other failure."""


def draw_tree(data: st.DataObject) -> SupPlan:
    counter = itertools.count()
    used: set[float] = set()
    if SIMULTANEOUS_FAILURES:
        instants = st.integers(min_value=1, max_value=int(END * 4) - 1).map(lambda q: q / 4)
    else:
        instants = st.integers(min_value=1, max_value=int(END) - 1).map(float)

    def leaf() -> LeafPlan:
        entries = data.draw(
            st.lists(
                st.tuples(instants, st.sampled_from(sorted(KINDS))),
                max_size=6,
                unique_by=lambda entry: entry[0],
            )
        )
        if not SIMULTANEOUS_FAILURES:
            entries = [entry for entry in entries if entry[0] not in used]
            used.update(at for at, _ in entries)
        schedule = tuple(sorted(entries))
        restart = data.draw(st.sampled_from(list(Restart)))
        return LeafPlan(f"w{next(counter)}", restart, schedule)

    def supervisor(depth: int) -> SupPlan:
        name = f"s{next(counter)}"
        count = data.draw(st.integers(min_value=1, max_value=3))
        children: list[LeafPlan | SupPlan] = []
        for _ in range(count):
            nested = depth < MAX_DEPTH and data.draw(st.integers(0, depth)) == 0
            children.append(supervisor(depth + 1) if nested else leaf())
        return SupPlan(
            name=name,
            strategy=data.draw(st.sampled_from(list(StrategyKind))),
            max_restarts=data.draw(st.integers(min_value=0, max_value=5)),
            window=data.draw(st.sampled_from([1.0, 2.5, 10.0])),
            escalate=data.draw(st.integers(0, 3)) == 0,
            children=tuple(children),
        )

    return supervisor(1)


# -- the world an example runs in ------------------------------------------------------------


class TaskCounter(trio.abc.Instrument):
    """Tasks spawned since it was added and not yet exited."""

    def __init__(self) -> None:
        self.alive: set[trio.lowlevel.Task] = set()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.alive.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.alive.discard(task)


@attrs.define
class World:
    plan: SupPlan
    bus: EventBus = attrs.field(factory=lambda: EventBus(history_size=1_000_000))
    root: Supervisor | None = None
    consumed: set[tuple[str, float]] = attrs.field(factory=set)
    live_runs: int = 0
    exits: dict[int, bool] = attrs.field(factory=dict)
    """``id(ChildExited event)`` -> whether it happened outside any shutdown."""
    lookup_misses: list[str] = attrs.field(factory=list)
    supervisors: dict[str, Supervisor] = attrs.field(factory=dict)
    """The latest instance of each supervisor, registered before any of its children
    start (a parent's ``child.value`` is only set once the nested one has started, and
    a nested supervisor may be stopped while still starting its children)."""
    root_error: BaseException | None = None

    def find(self, name: str) -> Supervisor | None:
        return self.supervisors.get(name)

    def on_exit(self, event: ChildExited) -> None:
        sup = self.find(event.supervisor)
        if sup is None:
            self.lookup_misses.append(f"{event.supervisor}/{event.child}")
            return
        try:
            child = sup.child(event.child)
        except LookupError:  # a run its supervisor no longer knows about
            self.lookup_misses.append(f"{event.supervisor}/{event.child} (gone)")
            return
        self.exits[id(event)] = sup.state == "running" and child.state is not ChildState.STOPPING

    def leaf_fn(self, plan: LeafPlan) -> Callable[[], Awaitable[None]]:
        async def leaf() -> None:
            started = trio.current_time()
            self.live_runs += 1
            try:
                for at, kind in plan.schedule:
                    if at <= started or (plan.name, at) in self.consumed:
                        continue
                    await trio.sleep_until(at)
                    self.consumed.add((plan.name, at))
                    make_error, _ = KINDS[kind]
                    if make_error is None:
                        return
                    raise make_error()
                await trio.sleep_until(HORIZON)
            finally:
                self.live_runs -= 1

        leaf.__name__ = plan.name
        return leaf

    def spec(self, plan: LeafPlan | SupPlan) -> ChildSpec:
        if isinstance(plan, LeafPlan):
            return ChildSpec.of(self.leaf_fn(plan), name=plan.name, restart=plan.restart)

        async def nested(
            *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
        ) -> None:
            async with self.open(plan) as sup:
                self.supervisors[plan.name] = sup
                for child in plan.children:
                    await sup.start_child(self.spec(child))
                task_status.started(sup)

        return ChildSpec.of(
            nested,
            name=plan.name,
            restart=Restart.PERMANENT,
            recovery=RecoveryStrategy.Escalate() if plan.escalate else None,
            shutdown_timeout=math.inf,
        )

    def open(self, plan: SupPlan) -> contextlib.AbstractAsyncContextManager[Supervisor]:
        return open_supervisor(
            plan.name,
            strategy=plan.strategy,
            max_restarts=plan.max_restarts,
            restart_window=plan.window,
            events=self.bus,
            keep_alive=True,
            reload=reload_hook,
            breaker_factory=lambda name: CircuitBreaker(
                name, failure_threshold=2, reset_timeout=1.5, events=self.bus
            ),
        )


async def reload_hook() -> None:
    """Re-reading configuration takes a moment (so group restarts can overlap)."""
    await trio.sleep(0.25)


async def run_world(world: World) -> tuple[float, int, float]:
    """Run the tree until END and stop it.

    Returns when ``stop()`` returned, how many leaf runs were still alive then, and when
    everything (the whole ``trio.run``) had ended.
    """
    counter = TaskCounter()
    trio.lowlevel.add_instrument(counter)
    world.bus.add_handler(ChildExited, world.on_exit)

    async def run_root(
        *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            async with world.open(world.plan) as root:
                world.root = root
                world.supervisors[root.name] = root
                for child in world.plan.children:
                    await root.start_child(world.spec(child))
                task_status.started(root)
        except SupervisionError as exc:
            world.root_error = exc

    async with trio.open_nursery() as nursery:
        root = await nursery.start(run_root)
        await trio.sleep_until(END)
        await root.stop()
        stopped_at = trio.current_time()
        live_runs = world.live_runs
    trio.lowlevel.remove_instrument(counter)
    assert not counter.alive, f"tasks still alive at the end: {counter.alive}"
    return stopped_at, live_runs, trio.current_time()


# -- the checks ------------------------------------------------------------------------------


@attrs.frozen
class Actor:
    """What a (supervisor name, child name) is, as far as the checks care."""

    restart: Restart
    escalates_failures: bool
    """For a nested supervisor: its failure is escalated by its parent (by strategy)."""
    nested: bool


def actors(plan: SupPlan) -> dict[tuple[str, str], Actor]:
    result: dict[tuple[str, str], Actor] = {}
    for node in plan.walk():
        if isinstance(node, SupPlan):
            for child in node.children:
                if isinstance(child, LeafPlan):
                    result[node.name, child.name] = Actor(child.restart, False, False)
                else:
                    result[node.name, child.name] = Actor(Restart.PERMANENT, child.escalate, True)
    return result


def classify(decision: SupervisionDecision, actor: Actor) -> str:
    """``count`` (a restart counted by intensity), ``over`` (the escalation that exceeds
    it), ``escalate`` (escalation by strategy) or ``free`` (no intensity involved)."""
    action = decision.action
    if action in {RecoveryAction.RESTART, RecoveryAction.RELOAD, RecoveryAction.FAILOVER}:
        return "count"
    if action is RecoveryAction.IGNORE:
        return "count" if actor.restart is Restart.PERMANENT else "free"
    if action is RecoveryAction.ESCALATE:
        if actor.nested:
            return "escalate" if actor.escalates_failures else "over"
        return "escalate" if decision.error_type == "SupervisionError" else "over"
    return "free"  # RETRY, CIRCUIT_BREAKER


def expected_severity(decision: SupervisionDecision) -> ErrorSeverity | None:
    if decision.error_type == "":
        return ErrorSeverity.LOW
    if decision.error_type in SUPERVISOR_FAILURES:
        return ErrorSeverity.HIGH
    if decision.error_type == "RuntimeFault":
        return None  # several severities share the class; checked via the text below
    return KINDS[ERROR_TYPE_KIND[decision.error_type]][1]


def check_decisions(world: World) -> None:
    """Exactly one decision per exit outside a shutdown (failures; permanent returns)."""
    who = actors(world.plan)
    pending: tuple[ChildExited, bool] | None = None  # (exit, decision expected)
    history: list[Event] = world.bus.history()
    for event in history:
        if isinstance(event, ChildExited):
            assert pending is None or not pending[1], f"no decision for {pending[0]}"
            assert id(event) in world.exits, f"untagged exit {event}"
            outside_shutdown = world.exits[id(event)]
            actor = who[event.supervisor, event.child]
            expects = outside_shutdown and (
                event.exit is ExitKind.FAILED
                or (event.exit is ExitKind.RETURNED and actor.restart is Restart.PERMANENT)
            )
            pending = (event, expects)
        elif isinstance(event, SupervisionDecision):
            assert pending is not None, f"decision without an exit: {event}"
            exited, expects = pending
            assert expects, f"unexpected decision {event} after {exited}"
            assert (event.supervisor, event.child) == (exited.supervisor, exited.child)
            assert event.error_type == exited.error_type
            severity = expected_severity(event)
            if severity is not None:
                assert event.severity is severity, event
            elif event.error == "soft":
                assert event.severity is ErrorSeverity.LOW
            elif event.error == "hard":
                assert event.severity is ErrorSeverity.HIGH
            pending = (exited, False)
    assert pending is None or not pending[1], f"no decision for {pending[0]}"


def check_intensity(world: World) -> None:
    """Per supervisor instance: counted restarts within any window stay <= max_restarts;
    the one beyond is an escalation and the instance failed with RestartIntensityExceeded."""
    who = actors(world.plan)
    plans = {node.name: node for node in world.plan.walk() if isinstance(node, SupPlan)}
    counted: dict[str, list[float]] = {}
    ended_by: dict[str, str | None] = {}  # what the current instance's end must look like
    history: list[Event] = world.bus.history()
    for event in history:
        if isinstance(event, SupervisionDecision):
            plan = plans[event.supervisor]
            assert ended_by.get(event.supervisor) is None, f"decision after giving up: {event}"
            kind = classify(event, who[event.supervisor, event.child])
            now = event.timestamp
            times = counted.setdefault(event.supervisor, [])
            if kind == "count":
                times.append(now)
                recent = sum(1 for t in times if now - t < plan.window)
                assert recent <= plan.max_restarts, f"{event.supervisor}: {recent} restarts"
            elif kind == "over":
                recent = sum(1 for t in times if now - t < plan.window) + 1
                assert recent == plan.max_restarts + 1, (
                    f"{event.supervisor} escalated for intensity after only {recent - 1}"
                )
                ended_by[event.supervisor] = "RestartIntensityExceeded("
            elif kind == "escalate":
                ended_by[event.supervisor] = "EscalatedError("
        elif isinstance(event, SupervisorStopped):
            expected = ended_by.pop(event.supervisor, None)
            if expected is not None:
                assert event.reason.startswith(expected), (expected, event.reason)
            else:
                assert event.reason in {"shutdown", "normal"}, event.reason
            counted.pop(event.supervisor, None)  # a re-created supervisor starts afresh
    assert all(v is None for v in ended_by.values()), ended_by
    root_stops = world.bus.history(SupervisorStopped, lambda e: e.supervisor == world.plan.name)
    assert len(root_stops) == 1
    if world.root_error is None:
        assert root_stops[0].reason == "shutdown"
    else:
        assert root_stops[0].reason == repr(world.root_error)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_trees_and_failure_schedules(data: st.DataObject) -> None:
    world = World(draw_tree(data))
    note(f"plan: {world.plan!r}")
    stopped_at, live_runs, ended_at = trio.run(
        run_world, world, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    assert world.lookup_misses == []
    # Children end at once when cancelled, so the stop takes no virtual time, and
    # nothing of the tree is left running when stop() returns (a run that escaped its
    # supervisor would also keep the trio.run going until HORIZON).
    assert stopped_at == END
    assert live_runs == 0
    assert ended_at == END
    check_decisions(world)
    check_intensity(world)
    decided = world.bus.history(SupervisionDecision)
    tally(f"decisions: {min(len(decided), 20) // 5 * 5}+")
    tally(f"root failed: {type(world.root_error).__name__}")
    tally(f"supervisors: {sum(isinstance(n, SupPlan) for n in world.plan.walk())}")
    for action in {d.action for d in decided}:
        tally(f"action {action.value}")


REGRESSION_PLAN = SupPlan(
    name="s0",
    strategy=StrategyKind.ONE_FOR_ONE,
    max_restarts=1,
    window=1.0,
    escalate=True,
    children=(
        SupPlan(
            name="s1",
            strategy=StrategyKind.ONE_FOR_ONE,
            max_restarts=0,
            window=1.0,
            escalate=False,
            children=(LeafPlan("w2", Restart.PERMANENT, ((0.25, "config"),)),),
        ),
        SupPlan(
            name="s3",
            strategy=StrategyKind.ONE_FOR_ONE,
            max_restarts=0,
            window=1.0,
            escalate=True,
            children=(
                SupPlan(
                    name="s4",
                    strategy=StrategyKind.ONE_FOR_ONE,
                    max_restarts=0,
                    window=1.0,
                    escalate=True,
                    children=(LeafPlan("w5", Restart.PERMANENT, ((0.25, "config"),)),),
                ),
            ),
        ),
    ),
)
"""Found by the property test with simultaneous failures: at 0.25 both leaves fail; s1
gives up and the root restarts it, while s4's failure escalates through s3 to the root,
which gives up while s1's restart is starting w2."""


def test_property_regression_nested_restart_while_the_root_gives_up() -> None:
    """The scheduler takes either order in each batch; ~half the runs hit it."""
    for _ in range(20):
        world = World(REGRESSION_PLAN)
        stopped_at, live_runs, ended_at = trio.run(
            run_world, world, clock=trio.testing.MockClock(autojump_threshold=0)
        )
        assert (stopped_at, live_runs, ended_at) == (END, 0, END)
        assert world.lookup_misses == []
        check_decisions(world)
        check_intensity(world)
