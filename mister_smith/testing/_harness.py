"""``SystemTestHarness``: a runtime on virtual time, failure injection and assertions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import attrs
import trio

from ..actors import ActorRef, ActorStatus, ActorSystem
from ..config import AgentConfig
from ..errors import EventTimeout, RecoveryAction, ToolNotFound, unwrap_single
from ..events import ChildExited, ComponentRecovered, Event, EventBus, SupervisionDecision
from ..runtime import RuntimeManager
from ..supervision import Child, ChildState, Supervisor
from ..tools import Grantee, PolicyName, Tool, ToolBus
from ..types import CallerIdentity, Role
from ._clock import advance
from ._failures import DropHeartbeat, FailureType, Hang, Injection, InjectionRefused, Slow
from ._invariants import check_invariants
from ._middleware import PING, PONG, TRIGGER, FaultMiddleware
from ._scenario import (
    WORKLOAD_CALLER,
    BuiltTree,
    OperationOutcome,
    ScenarioReport,
    ScheduleOutcome,
    build_tree,
    run_scenario,
    run_schedule,
    run_workload,
)
from ._specs import Operation, Scenario, ScheduledFailure, SupervisorSpec
from ._tasks import TaskCounter
from ._tools import FaultGate

E = TypeVar("E", bound=Event)

Target = ActorRef | Child | str
"""What :meth:`SystemTestHarness.inject_failure` accepts: an actor, a child, or a name."""

DEFAULT_TIMEOUT = 30.0
"""Seconds (virtual) the harness's waits and assertions allow by default."""


@attrs.frozen
class ShutdownRecord:
    """How long the runtime's orderly shutdown took, against its bound (Trio clock).

    Attributes:
        started: When the harness began shutting the runtime down.
        finished: When the runtime had closed.
        bound: ``root.shutdown_bound()`` when shutdown began.
    """

    started: float
    finished: float
    bound: float

    @property
    def duration(self) -> float:
        """Seconds the shutdown took."""
        return self.finished - self.started

    @property
    def within_bound(self) -> bool:
        """Whether it finished within its bound."""
        return self.duration <= self.bound


@attrs.frozen
class HarnessStatistics:
    """Counters of a :class:`SystemTestHarness`.

    Attributes:
        injections: Faults injected.
        applied: Of those, faults that took effect.
        control_sent: Control messages (triggers, pings) sent through actor mailboxes;
            they count in the actors' ``accepted`` and ``handled`` / ``dead_lettered``.
        events: Events recorded since the harness opened.
    """

    injections: int
    applied: int
    control_sent: int
    events: int


def _target_label(target: ActorRef | Child | str) -> str:
    if isinstance(target, ActorRef):
        return f"actor:{target.name}"
    if isinstance(target, Child):
        return f"child:{target.supervisor.name}/{target.name}"
    return f"tool:{target}"


class SystemTestHarness:
    """A runtime for tests, with failure injection and system-level assertions.

    Open one with ``async with SystemTestHarness.open() as harness:`` inside a Trio run
    on a :class:`~trio.testing.MockClock` (pytest-trio's ``autojump_clock``, or
    :func:`run_virtual`), so every timeout below is virtual time. It opens a
    :class:`~mister_smith.runtime.RuntimeManager` and installs, before anything is
    spawned:

    * a system-wide :class:`FaultMiddleware` (outermost) through which faults reach
      actors on their next message;
    * a handler recording every event in an unbounded log (:meth:`event_log`,
      :meth:`events_of`);
    * a :class:`TaskCounter`, so that after the harness closes :meth:`leaked_tasks`
      names any task started meanwhile that outlived the runtime.

    Accounting: the harness's control messages (a trigger waking an idle actor so a
    pending fault applies, a ping proving an actor answers) go through the mailbox and
    are counted like any message, so ``accepted == handled + dead_lettered (+ queued +
    in flight)`` holds for every actor at all times; :meth:`statistics` says how many
    the harness sent.

    If supervision escalates to the runtime's root, the root's error is raised from the
    ``async with``; the harness stays usable for post-mortem checks.
    """

    def __init__(self, runtime: RuntimeManager, nursery: trio.Nursery) -> None:
        self.runtime = runtime
        """The runtime under test."""
        self._nursery = nursery
        self._middleware = FaultMiddleware()
        self._log: list[Event] = list(runtime.events.history())
        self._registration = runtime.events.add_handler(Event, self._log.append)
        self._silenced: dict[tuple[str, str], tuple[Child, Injection]] = {}
        self._silence_registration = runtime.events.add_handler(ChildExited, self._on_child_exited)
        self._injections: list[Injection] = []
        self._marks: dict[str, int] = {}
        self._actors: dict[ActorRef, None] = {}
        self._gates: dict[str, FaultGate] = {}
        self._gated_since: dict[str, int] = {}
        self._control_sent = 0
        self._workload_identity: CallerIdentity | None = None
        self._closed = False
        self._leaked: list[str] = []
        self._shutdown_started: float | None = None
        self._shutdown_bound = 0.0
        self.shutdown: ShutdownRecord | None = None
        """The runtime's shutdown timing, once the harness closed normally."""
        system = runtime.actor_system
        system.middleware = (self._middleware, *system.middleware)
        system.add_termination_listener(self._on_actor_terminated)

    # -- opening ------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: AgentConfig | None = None, *, track_tasks: bool = True
    ) -> AsyncIterator[SystemTestHarness]:
        """Open a runtime from ``config`` (defaults when omitted) under the harness.

        Args:
            config: The runtime configuration.
            track_tasks: Count tasks so :meth:`leaked_tasks` and
                :meth:`check_invariants` can prove none outlives the runtime.

        Raises:
            SupervisionError: supervision escalated to the runtime's root.
        """
        counter = TaskCounter() if track_tasks else None
        if counter is not None:
            trio.lowlevel.add_instrument(counter)
            counter.mark()
        harness: SystemTestHarness | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    async with RuntimeManager.open(config) as runtime:
                        harness = cls(runtime, nursery)
                        yield harness
                        harness._begin_shutdown()
                finally:
                    nursery.cancel_scope.cancel()
                    if harness is not None:
                        harness._close()
        except BaseExceptionGroup as group:
            leaf = unwrap_single(group)
            if leaf is group:
                raise
            raise leaf from leaf.__cause__
        finally:
            if counter is not None:
                trio.lowlevel.remove_instrument(counter)
                if harness is not None:
                    harness._leaked = [task.name for task in counter.live_since_mark()]

    def _begin_shutdown(self) -> None:
        self._shutdown_started = trio.current_time()
        self._shutdown_bound = self.supervision.shutdown_bound()

    def _close(self) -> None:
        self._closed = True
        self._registration.remove()
        self._silence_registration.remove()
        started = self._shutdown_started
        if started is not None:
            self.shutdown = ShutdownRecord(started, trio.current_time(), self._shutdown_bound)

    # -- the runtime's parts --------------------------------------------------------------

    @property
    def events(self) -> EventBus:
        """The runtime's event bus."""
        return self.runtime.events

    @property
    def supervision(self) -> Supervisor:
        """The runtime's root supervisor."""
        return self.runtime.supervision

    @property
    def actor_system(self) -> ActorSystem:
        """The runtime's actor system (faults reach its actors through the middleware)."""
        return self.runtime.actor_system

    @property
    def tool_bus(self) -> ToolBus:
        """The runtime's tool bus."""
        return self.runtime.tool_bus

    @property
    def closed(self) -> bool:
        """Whether the harness (and its runtime) has closed."""
        return self._closed

    def supervisors(self) -> Iterator[Supervisor]:
        """Every supervisor reachable from the root (nested ones included), root first."""
        queue = [self.supervision]
        while queue:
            supervisor = queue.pop(0)
            yield supervisor
            for child in supervisor.children():
                if isinstance(child.value, Supervisor):
                    queue.append(child.value)

    def find_child(self, name: str) -> Child:
        """The supervised child called ``name`` (or ``"supervisor/name"``) anywhere.

        Raises:
            LookupError: no such child.
            ValueError: several supervisors have a child of that name.
        """
        sup_name, _, child_name = name.rpartition("/")
        found = [
            child
            for supervisor in self.supervisors()
            if not sup_name or supervisor.name == sup_name
            for child in supervisor.children()
            if child.name == child_name
        ]
        if not found:
            raise LookupError(f"no supervised child named {name!r}")
        if len(found) > 1:
            where = ", ".join(f"{c.supervisor.name}/{c.name}" for c in found)
            raise ValueError(f"child name {name!r} is ambiguous ({where}); qualify it")
        return found[0]

    def actor_child(self, ref: ActorRef) -> Child | None:
        """The supervised child running actor ``ref`` (``None`` once it is gone)."""
        for supervisor in self.supervisors():
            for child in supervisor.children():
                if isinstance(child.value, ActorRef) and child.value == ref:
                    return child
        return None

    # -- tools ------------------------------------------------------------------------------

    @property
    def workload_identity(self) -> CallerIdentity:
        """The identity a scenario's workload calls tools as (minted on first use by the
        runtime's authority; the scenario's tools are granted to it)."""
        if self._workload_identity is None:
            self._workload_identity = self.runtime.identities.mint(WORKLOAD_CALLER)
        return self._workload_identity

    def register_tool(
        self,
        tool: Tool,
        *,
        policy: PolicyName | None = None,
        timeout: float | None = None,
        callers: Iterable[Grantee] = (),
        roles: Iterable[Role | str] = (),
    ) -> FaultGate:
        """Register ``tool`` on the tool bus behind a :class:`FaultGate`; return the gate.

        Tools registered this way take injected faults without being re-registered
        (their statistics and grants are kept). The runtime's bus denies by default:
        grant ``callers`` / ``roles`` or pass ``policy="open"``.
        """
        gate = FaultGate(tool)
        self.tool_bus.register_tool(
            gate, policy=policy, timeout=timeout, callers=callers, roles=roles
        )
        self._gates[tool.name] = gate
        self._gated_since[tool.name] = len(self._log)
        return gate

    def _gate(self, name: str) -> FaultGate:
        gate = self._gates.get(name)
        if gate is not None:
            return gate
        bus = self.tool_bus
        if not any(s.name == name for s in bus.list_tools()):
            raise ToolNotFound(f"no tool named {name!r} is registered")
        # Swap the plain tool for a gated one (grants kept, counters start afresh).
        gate = FaultGate(bus.get_tool(name))
        bus.replace_tool(gate)
        self._gates[name] = gate
        self._gated_since[name] = len(self._log)
        return gate

    def gated_tools(self) -> dict[str, int]:
        """Tools behind a :class:`FaultGate`, with the event-log position of their gating."""
        return dict(self._gated_since)

    # -- failure injection ----------------------------------------------------------------

    def _new_injection(self, target: str, failure: FailureType) -> Injection:
        index = len(self._injections) + 1
        injection = Injection(
            index=index,
            target=target,
            failure=failure,
            injected_at=trio.current_time(),
            label=f"injected {failure!r} #{index} into {target}",
        )
        self._injections.append(injection)
        self._marks[target] = len(self._log)
        return injection

    async def inject_failure(
        self, target: Target, failure: FailureType, *, trigger: bool | None = None
    ) -> Injection:
        """Inject ``failure`` into an actor, a supervised child or a tool.

        ``target`` is an :class:`~mister_smith.actors.ActorRef`, a
        :class:`~mister_smith.supervision.Child`, or a name, looked up as an actor, then
        a tool, then a child (``"supervisor/child"`` disambiguates).

        * Actor: the fault applies to the next message it dequeues. When nothing is
          queued, a private trigger message is sent so it applies at once
          (``trigger=False`` waits for the next real message, ``True`` always sends
          one). ``DROP_HEARTBEAT`` does not apply (actors are not heartbeat-monitored).
        * Child: ``CRASH`` / ``ERROR`` crash its current run;
          ``DROP_HEARTBEAT`` and ``HANG`` silence its heartbeats until the run ends (the
          failure detector then declares it hung), ``SLOW(d)`` silences them for ``d``
          seconds. The last three need a child with ``heartbeat_timeout``: a child
          cannot be frozen from outside, so a hang is only observable through the
          failure detector.
        * Tool: the fault applies to its next call (``HANG`` runs into the bus's
          deadline).

        Returns:
            The :class:`Injection` record (see :meth:`Injection.wait_applied`).

        Raises:
            InjectionRefused: the target is not running, or the failure does not apply.
            LookupError: no actor, tool or child has that name.
        """
        if isinstance(target, str):
            target = self._resolve(target)
        if isinstance(target, ActorRef):
            injection = await self._inject_actor(target, failure, trigger)
        elif isinstance(target, Child):
            injection = self._inject_child(target, failure)
            await trio.lowlevel.checkpoint()
        else:
            injection = self._inject_tool(target, failure)
            await trio.lowlevel.checkpoint()
        return injection

    def _resolve(self, name: str) -> ActorRef | Child | str:
        ref = self.actor_system.get(name)
        if isinstance(ref, ActorRef):
            return ref
        if name in self._gates or any(s.name == name for s in self.tool_bus.list_tools()):
            return name
        return self.find_child(name)

    async def _inject_actor(
        self, ref: ActorRef, failure: FailureType, trigger: bool | None
    ) -> Injection:
        if isinstance(failure, DropHeartbeat):
            raise InjectionRefused(
                f"actor {ref.name!r} is not heartbeat-monitored: DROP_HEARTBEAT does not apply"
            )
        if not ref.is_alive or self.actor_system.get(ref.name) != ref:
            raise InjectionRefused(f"actor {ref.name!r} is not running in this system")
        self._actors[ref] = None
        injection = self._new_injection(_target_label(ref), failure)
        self._middleware.add(ref, injection)
        if trigger is None:
            trigger = ref.statistics().queued == 0
        if trigger:
            self._control_sent += 1
            await ref.tell(TRIGGER)
        else:
            await trio.lowlevel.checkpoint()
        return injection

    def _inject_child(self, child: Child, failure: FailureType) -> Injection:
        label = _target_label(child)
        if child.state is not ChildState.RUNNING:
            raise InjectionRefused(f"{label} is not running ({child.state.value})")
        if isinstance(failure, DropHeartbeat | Hang | Slow):
            if child.spec.heartbeat_timeout is None:
                raise InjectionRefused(
                    f"{label} has no heartbeat_timeout: {failure!r} would go unnoticed"
                )
            injection = self._new_injection(label, failure)
            key = (child.supervisor.name, child.name)
            child.heartbeats_dropped = True
            self._silenced[key] = (child, injection)
            injection.mark_applied()
            if isinstance(failure, Slow):
                self._nursery.start_soon(self._unsilence_later, key, injection, failure.delay)
            return injection
        injection = self._new_injection(label, failure)
        error = failure.make_error(injection.label)
        assert error is not None
        if not child.inject_failure(error):
            raise InjectionRefused(f"{label} is not running")
        injection.mark_applied(error)
        return injection

    def _inject_tool(self, name: str, failure: FailureType) -> Injection:
        if isinstance(failure, DropHeartbeat):
            raise InjectionRefused(f"tool {name!r} has no heartbeat: DROP_HEARTBEAT does not apply")
        gate = self._gate(name)
        injection = self._new_injection(_target_label(name), failure)
        gate.add(injection)
        return injection

    async def _unsilence_later(
        self, key: tuple[str, str], injection: Injection, delay: float
    ) -> None:
        await trio.sleep(delay)
        entry = self._silenced.get(key)
        if entry is not None and entry[1] is injection:
            del self._silenced[key]
            entry[0].heartbeats_dropped = False

    def _on_child_exited(self, event: ChildExited) -> None:
        entry = self._silenced.pop((event.supervisor, event.child), None)
        if entry is not None:
            entry[0].heartbeats_dropped = False

    def _on_actor_terminated(self, ref: ActorRef) -> None:
        self._actors[ref] = None
        # Faults still pending were never applied (their records stay unapplied).
        self._middleware.discard(ref)

    def injections(self) -> list[Injection]:
        """Every injection so far, oldest first."""
        return list(self._injections)

    # -- waiting and asserting --------------------------------------------------------------

    async def wait_for_event(
        self,
        event_type: type[E],
        predicate: Callable[[E], bool] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        include_history: bool = False,
    ) -> E:
        """Wait for the next ``event_type`` event matching ``predicate``.

        Args:
            event_type: The event class (subclasses match).
            predicate: Extra condition.
            timeout: Seconds (virtual) to wait.
            include_history: Return the oldest matching event already recorded, if any.

        Raises:
            EventTimeout: none arrived in time.
        """
        if include_history:
            for event in self.events_of(event_type, predicate):
                await trio.lowlevel.checkpoint()
                return event
        return await self.events.wait_for_event(event_type, predicate, timeout=timeout)

    def events_of(
        self,
        event_type: type[E] = Event,  # type: ignore[assignment]
        predicate: Callable[[E], bool] | None = None,
    ) -> list[E]:
        """Every recorded event of ``event_type`` matching ``predicate``, oldest first.

        The harness records every event since the runtime opened (unbounded, unlike the
        bus's history ring).
        """
        return [
            event
            for event in self._log
            if isinstance(event, event_type) and (predicate is None or predicate(event))
        ]

    def event_log(self) -> list[Event]:
        """Every event since the runtime opened, in emission order."""
        return list(self._log)

    def decisions(self, target: Target | None = None) -> list[SupervisionDecision]:
        """The supervision decisions recorded (for ``target``'s child, when given)."""
        if target is None:
            return self.events_of(SupervisionDecision)
        name, supervisor = self._child_identity(target)
        return self.events_of(
            SupervisionDecision,
            lambda d: d.child == name and (supervisor is None or d.supervisor == supervisor),
        )

    def _child_identity(self, target: Target) -> tuple[str, str | None]:
        """(child name, supervisor name or ``None`` when unknown) of an actor or child."""
        if isinstance(target, str):
            resolved = self._resolve(target)
            if isinstance(resolved, str):
                raise TypeError(f"{target!r} is a tool, not a supervised component")
            target = resolved
        if isinstance(target, ActorRef):
            child = self.actor_child(target)
            return target.name, None if child is None else child.supervisor.name
        return target.name, target.supervisor.name

    async def assert_recovered(
        self,
        target: Target,
        action: RecoveryAction = RecoveryAction.RESTART,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ComponentRecovered:
        """Assert that ``target`` recovered by ``action`` and is answering and healthy.

        Looks for a :class:`~mister_smith.events.ComponentRecovered` event for the
        target's child since the latest injection into it (waiting up to ``timeout``
        when there is none yet), checks its action, then that the component answers —
        an actor replies to a ping through its mailbox, a child is ``RUNNING`` — and is
        healthy (an actor idle or busy and alive; a child not silenced).

        Returns:
            The recovery event.

        Raises:
            AssertionError: any of that does not hold in time.
        """
        deadline = trio.current_time() + timeout
        name, supervisor = self._child_identity(target)
        key = (
            _target_label(target)
            if not isinstance(target, str)
            else _target_label(self._resolve(target))
        )
        since = self._marks.get(key, 0)

        def matches(event: ComponentRecovered) -> bool:
            return event.child == name and (supervisor is None or event.supervisor == supervisor)

        recovered = next(
            (e for e in self._log[since:] if isinstance(e, ComponentRecovered) and matches(e)),
            None,
        )
        if recovered is None:
            try:
                recovered = await self.events.wait_for_event(
                    ComponentRecovered, matches, timeout=max(0.0, deadline - trio.current_time())
                )
            except EventTimeout:
                seen = [d.action.value for d in self.decisions(target)]
                raise AssertionError(
                    f"{key} did not recover within {timeout} s (decisions so far: {seen})"
                ) from None
        if recovered.action is not action:
            raise AssertionError(
                f"{key} recovered by {recovered.action.value}, expected {action.value}"
            )
        await self._assert_answering(target, key, deadline)
        return recovered

    async def _assert_answering(self, target: Target, key: str, deadline: float) -> None:
        if isinstance(target, str):
            target = self._resolve(target)
        if isinstance(target, ActorRef):
            remaining = max(0.0, deadline - trio.current_time())
            self._control_sent += 1
            try:
                reply = await target.ask(PING, timeout=remaining)
            except Exception as exc:
                raise AssertionError(f"{key} does not answer: {exc!r}") from exc
            if reply != PONG:
                raise AssertionError(f"{key} answered a ping with {reply!r}")
            status = target.statistics().status
            if not target.is_alive or status not in (ActorStatus.IDLE, ActorStatus.BUSY):
                raise AssertionError(f"{key} is not healthy: {status.value}")
            return
        if isinstance(target, Child):
            try:
                child = target.supervisor.child(target.name)
            except LookupError:
                raise AssertionError(f"{key} is no longer supervised") from None
            if child.state is not ChildState.RUNNING:
                raise AssertionError(f"{key} is not running: {child.state.value}")
            if child.heartbeats_dropped:
                raise AssertionError(f"{key} is still silenced")
            await trio.lowlevel.checkpoint()
            return
        raise TypeError(f"{target!r} is a tool: tools are not supervised components")

    async def ping(self, ref: ActorRef, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Whether ``ref`` answers a ping through its mailbox within ``timeout``.

        The ping is a control message (counted as accepted and handled); a fault pending
        for the actor applies to it.
        """
        self._control_sent += 1
        try:
            return bool(await ref.ask(PING, timeout=timeout) == PONG)
        except Exception:
            return False

    def known_actors(self) -> list[ActorRef]:
        """Every actor seen since the harness opened (live and stopped)."""
        for ref in self.actor_system.actors():
            self._actors[ref] = None
        return list(self._actors)

    def leaked_tasks(self) -> list[str]:
        """Names of tasks started while the harness was open that outlived it.

        Empty while the harness is open or when it was opened with ``track_tasks=False``.
        """
        return list(self._leaked)

    def check_invariants(self) -> list[str]:
        """Every broken system invariant, as readable sentences (empty: all hold).

        Checked: per actor and in total, ``accepted == handled + dead_lettered +
        queued + in flight`` (and nothing left queued in a stopped actor); the actor
        system's totals equal the sum over its actors; dead-letter events match the
        counters; each running supervisor's decision and failure counters match its
        events; no supervisor made more restarts within its window than
        ``max_restarts``; and, once closed, no task outlived the runtime and shutdown
        finished within its bound.
        """
        return check_invariants(self)

    def assert_invariants(self) -> None:
        """Raise ``AssertionError`` listing every broken invariant (see
        :meth:`check_invariants`)."""
        problems = self.check_invariants()
        if problems:
            raise AssertionError("system invariants broken:\n- " + "\n- ".join(problems))

    def statistics(self) -> HarnessStatistics:
        """Counters of the harness."""
        return HarnessStatistics(
            injections=len(self._injections),
            applied=sum(1 for i in self._injections if i.applied),
            control_sent=self._control_sent,
            events=len(self._log),
        )

    # -- scenarios ------------------------------------------------------------------------

    async def build(self, spec: SupervisorSpec, *, parent: Supervisor | None = None) -> BuiltTree:
        """Start the tree ``spec`` describes (default: under the actor system's supervisor)
        and register its tools behind fault gates; return once every node is up."""
        return await build_tree(self, spec, parent)

    async def run_workload(
        self, tree: BuiltTree, workload: Sequence[Operation]
    ) -> list[OperationOutcome]:
        """Perform each operation at its ``at`` offset from now; return the outcomes."""
        return await run_workload(self, tree, workload)

    async def run_schedule(
        self, tree: BuiltTree, schedule: Sequence[ScheduledFailure]
    ) -> list[ScheduleOutcome]:
        """Inject each scheduled failure at its ``at`` offset from now; return the outcomes."""
        return await run_schedule(self, tree, schedule)

    async def run_scenario(
        self, scenario: Scenario, *, report: ScenarioReport | None = None
    ) -> ScenarioReport:
        """Build the scenario's tree, play its workload and schedule together, then let it
        settle. Pass your own ``report`` to keep what happened if supervision escalates
        to the root (the harness then raises and the call never returns)."""
        return await run_scenario(self, scenario, report=report)

    # -- time -------------------------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` and let every task react."""
        await advance(seconds)

    @staticmethod
    def now() -> float:
        """The Trio clock (virtual under a ``MockClock``)."""
        return trio.current_time()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        counts = f"injections={len(self._injections)} events={len(self._log)}"
        return f"<SystemTestHarness {state} {counts}>"
