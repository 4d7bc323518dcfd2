"""Building a :class:`SupervisorSpec` tree in a runtime and playing workloads and schedules."""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing

from ..actors import ActorRef
from ..errors import ActorCrashed, ActorStopped, AskTimeout, MisterSmithError
from ..supervision import Child, ChildSpec, ChildState, Supervisor, heartbeat, open_supervisor
from ._failures import Injection, InjectionRefused
from ._scripted import Script, ScriptedActor
from ._specs import (
    CallTool,
    Operation,
    Scenario,
    ScheduledFailure,
    Send,
    SupervisorSpec,
    Work,
    WorkerSpec,
)
from ._tools import FlakyTool

if TYPE_CHECKING:
    from ._harness import SystemTestHarness

WORKLOAD_CALLER = "workload"
"""The name of the identity tool calls of a workload use
(:attr:`SystemTestHarness.workload_identity`)."""


async def perform_work(message: Any) -> Any:
    """The script step of tree actors: spend a :class:`Work`'s duration, reply its ``seq``."""
    if isinstance(message, Work):
        if message.duration > 0:
            await trio.sleep(message.duration)
        else:
            await trio.lowlevel.checkpoint()
        return message.seq
    await trio.lowlevel.checkpoint()
    return message


def _worker(heartbeat_timeout: float | None) -> Callable[[], Awaitable[None]]:
    async def worker() -> None:
        if heartbeat_timeout is None:
            await trio.sleep_forever()
        interval = heartbeat_timeout / 3
        while True:
            heartbeat()
            await trio.sleep(interval)

    return worker


def _supervisor_child(harness: SystemTestHarness, spec: SupervisorSpec) -> ChildSpec:
    """A child spec running ``spec``'s supervisor and starting its children, in order."""

    async def run_supervisor(
        *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with open_supervisor(
            spec.name,
            strategy=spec.strategy,
            max_restarts=spec.max_restarts,
            restart_window=spec.restart_window,
            backoff=spec.backoff,
            events=harness.events,
            keep_alive=True,
        ) as supervisor:
            for node in spec.children:
                if isinstance(node, SupervisorSpec):
                    await supervisor.start_child(_supervisor_child(harness, node))
                elif isinstance(node, WorkerSpec):
                    await supervisor.start_child(
                        _worker(node.heartbeat_timeout),
                        name=node.name,
                        restart=node.restart,
                        heartbeat_timeout=node.heartbeat_timeout,
                        recovery=node.recovery,
                    )
                else:
                    await harness.actor_system.spawn(
                        ScriptedActor,
                        Script(otherwise=perform_work),
                        name=node.name,
                        supervisor=supervisor,
                        restart=node.restart,
                        handler_timeout=node.handler_timeout,
                        mailbox_capacity=node.mailbox_capacity,
                        recovery=node.recovery,
                    )
            task_status.started(supervisor)

    run_supervisor.__name__ = spec.name
    # Like Supervisor.start_supervisor: a supervisor child is bounded by its children.
    return ChildSpec.of(
        run_supervisor,
        name=spec.name,
        restart=spec.restart,
        recovery=spec.recovery,
        shutdown_timeout=math.inf,
    )


@attrs.define(eq=False)
class BuiltTree:
    """A :class:`SupervisorSpec` tree running under a harness; looks nodes up by name.

    Lookups return the *current* incarnation (after restarts), or ``None`` when the
    node is not running now.

    Attributes:
        spec: The tree's description.
        parent: The supervisor the tree's root runs under.
    """

    spec: SupervisorSpec
    parent: Supervisor
    _harness: SystemTestHarness

    def supervisor(self, name: str) -> Supervisor | None:
        """The running supervisor called ``name``."""
        current: Supervisor | None = self.parent
        for step in (*self.spec.path(name), name):
            assert current is not None
            try:
                child = current.child(step)
            except LookupError:
                return None
            value = child.value
            if child.state is not ChildState.RUNNING or not isinstance(value, Supervisor):
                return None
            if value.state != "running":
                return None
            current = value
        return current

    def child(self, name: str) -> Child | None:
        """The running supervised child called ``name`` (a worker or a supervisor)."""
        path = self.spec.path(name)
        holder = self.supervisor(path[-1]) if path else self.parent
        if holder is None:
            return None
        try:
            return holder.child(name)
        except LookupError:
            return None

    def actor(self, name: str) -> ActorRef | None:
        """The live actor called ``name``."""
        return self._harness.actor_system.get(name)

    def target(self, name: str) -> ActorRef | Child | str | None:
        """What to inject into for node or tool ``name`` (``None``: not running).

        Raises:
            LookupError: the tree has no node or tool of that name.
        """
        if any(tool.name == name for tool in self.spec.tools):
            return name
        if any(actor.name == name for actor in self.spec.actors()):
            return self.actor(name)
        return self.child(name)


async def build_tree(
    harness: SystemTestHarness, spec: SupervisorSpec, parent: Supervisor | None = None
) -> BuiltTree:
    """Register ``spec``'s tools and start its tree under ``parent`` (default: the actor
    system's supervisor); return once every node has started."""
    names = [node.name for node in spec.walk()] + [tool.name for tool in spec.tools]
    duplicates = sorted(name for name, n in collections.Counter(names).items() if n > 1)
    if duplicates:
        raise ValueError(f"tree node names must be unique: {duplicates}")
    for tool in spec.tools:
        harness.register_tool(
            FlakyTool(tool.name, work=tool.work, timeout=tool.timeout),
            callers=[harness.workload_identity],
        )
    holder = harness.actor_system.supervisor if parent is None else parent
    await holder.start_child(_supervisor_child(harness, spec))
    return BuiltTree(spec, holder, harness)


@attrs.frozen
class OperationOutcome:
    """What became of one workload operation.

    Attributes:
        operation: The operation.
        outcome: ``"replied"``, ``"accepted"``, ``"refused"`` (no such live actor),
            ``"crashed"`` (the handler raised), ``"stopped"``, ``"timed out"``, ``"ok"``
            (a tool result) or ``"failed"`` (any other error of the framework).
        detail: The reply, or the error's type and text.
    """

    operation: Operation
    outcome: str
    detail: str = ""


@attrs.frozen
class ScheduleOutcome:
    """What became of one scheduled failure: its injection, or why it was refused."""

    entry: ScheduledFailure
    injection: Injection | None
    refused: str = ""


@attrs.define
class ScenarioReport:
    """Filled in as a scenario runs (so it is complete up to any escalation).

    Attributes:
        scenario: The scenario.
        tree: The built tree, once started.
        operations: Outcomes of the workload's operations, in completion order.
        failures: Outcomes of the schedule's entries, in injection order.
        started: Trio time at which the workload and schedule began.
        finished: Trio time at which the scenario ended (``None`` if cut short).
    """

    scenario: Scenario
    tree: BuiltTree | None = None
    operations: list[OperationOutcome] = attrs.field(factory=list)
    failures: list[ScheduleOutcome] = attrs.field(factory=list)
    started: float | None = None
    finished: float | None = None

    def outcome_counts(self) -> collections.Counter[str]:
        """How many operations ended each way."""
        return collections.Counter(outcome.outcome for outcome in self.operations)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


async def _send(tree: BuiltTree, seq: int, op: Send) -> OperationOutcome:
    ref = tree.actor(op.actor)
    if ref is None:
        await trio.lowlevel.checkpoint()
        return OperationOutcome(op, "refused", f"no live actor {op.actor!r}")
    message = Work(seq, op.work)
    try:
        if op.ask:
            reply = await ref.ask(message, timeout=op.timeout)
            return OperationOutcome(op, "replied", repr(reply))
        with trio.move_on_after(op.timeout):
            await ref.tell(message)
            return OperationOutcome(op, "accepted")
        return OperationOutcome(op, "timed out", "no mailbox room in time")
    except AskTimeout as exc:
        return OperationOutcome(op, "timed out", _describe(exc))
    except ActorCrashed as exc:
        return OperationOutcome(op, "crashed", _describe(exc.__cause__ or exc))
    except ActorStopped as exc:
        # Refused at send time, or accepted and dead-lettered because it stopped.
        return OperationOutcome(op, "stopped", _describe(exc))
    except MisterSmithError as exc:
        # E.g. interrupted by a restart while handling it, or rejected by middleware.
        return OperationOutcome(op, "failed", _describe(exc))


async def _call_tool(harness: SystemTestHarness, op: CallTool) -> OperationOutcome:
    try:
        result = await harness.tool_bus.call(
            harness.workload_identity, op.tool, {}, timeout=op.timeout
        )
    except MisterSmithError as exc:
        return OperationOutcome(op, "failed", _describe(exc))
    return OperationOutcome(op, "ok", repr(result))


async def run_workload(
    harness: SystemTestHarness,
    tree: BuiltTree,
    workload: Sequence[Operation],
    *,
    report: ScenarioReport | None = None,
    start: float | None = None,
) -> list[OperationOutcome]:
    """Perform each operation at ``start + op.at`` (concurrently); return the outcomes."""
    start = trio.current_time() if start is None else start
    outcomes = [] if report is None else report.operations

    async def perform(seq: int, op: Operation) -> None:
        if isinstance(op, Send):
            outcome = await _send(tree, seq, op)
        else:
            outcome = await _call_tool(harness, op)
        outcomes.append(outcome)

    async with trio.open_nursery() as nursery:
        for seq, op in enumerate(sorted(workload, key=lambda op: op.at), start=1):
            await trio.sleep_until(start + op.at)
            nursery.start_soon(perform, seq, op)
    return outcomes


async def run_schedule(
    harness: SystemTestHarness,
    tree: BuiltTree,
    schedule: Sequence[ScheduledFailure],
    *,
    report: ScenarioReport | None = None,
    start: float | None = None,
) -> list[ScheduleOutcome]:
    """Inject each failure at ``start + entry.at``, in order; return the outcomes."""
    start = trio.current_time() if start is None else start
    outcomes = [] if report is None else report.failures
    for entry in sorted(schedule, key=lambda entry: entry.at):
        await trio.sleep_until(start + entry.at)
        try:
            target = tree.target(entry.target)
        except LookupError as exc:
            outcomes.append(ScheduleOutcome(entry, None, str(exc)))
            continue
        if target is None:
            outcomes.append(ScheduleOutcome(entry, None, "not running"))
            continue
        try:
            injection = await harness.inject_failure(target, entry.failure)
        except (InjectionRefused, LookupError) as exc:
            outcomes.append(ScheduleOutcome(entry, None, str(exc)))
            continue
        outcomes.append(ScheduleOutcome(entry, injection))
    return outcomes


async def run_scenario(
    harness: SystemTestHarness, scenario: Scenario, *, report: ScenarioReport | None = None
) -> ScenarioReport:
    """Build the tree, play workload and schedule together, wait ``settle`` seconds, then
    until every task is blocked (a quiescent point to check invariants at)."""
    report = ScenarioReport(scenario) if report is None else report
    report.tree = tree = await build_tree(harness, scenario.tree)
    report.started = start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(
                run_workload, harness, tree, scenario.workload, report=report, start=start
            )
        )
        nursery.start_soon(
            functools.partial(
                run_schedule, harness, tree, scenario.schedule, report=report, start=start
            )
        )
    await trio.sleep(scenario.settle)
    # Let whatever is due at this very instant run, so the system is quiescent.
    await trio.testing.wait_all_tasks_blocked()
    report.finished = trio.current_time()
    return report
