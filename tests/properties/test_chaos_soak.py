"""Chaos soak: hundreds of actors under random crash / hang / poison / escalation
schedules, inside ``RuntimeManager.open()`` (issue 11, item 6).

Hypothesis draws a configuration (the defaults, or a variant with other restart
budgets, backoff, heartbeat timings, mailbox sizes and supervisor widths), a population
of actors spread over the default domain (which overflows into ``actors#2``, ...),
plain domains and OTP teams (``start_domain(max_restarts=...)``, some one-for-all,
some nested), some watched by heartbeat and some with budgets of their own, a chaos
schedule (injected crashes, poison messages, hanging handlers, explicit escalations,
stops on request) and a concurrent workload of ``tell`` / ``tell_nowait`` / ``ask`` and
spawns. Each example runs in a fresh Trio run on a ``MockClock`` under
:class:`SystemTestHarness`, lets the system settle (a watched actor that hung must have
been restarted), asks every actor that should answer, and then checks, from the
outside:

- the runtime ends only when the root's own intensity is spent (replayed from the
  root's decisions), and then raises the root's ``RestartIntensityExceeded`` whose
  :func:`~mister_smith.errors.root_cause` is the very escalation that was raised;
- any supervisor that gives up does so for an explicit escalation or a spent
  intensity, never otherwise;
- an actor (or domain) is stopped with a ``STOP`` decision exactly when it spent its
  own budget (as many restarts within the window as the budget allows), and every
  actor stopped before shutdown was announced once with ``restart intensity
  exceeded`` and spent its budget or sat in a domain that did;
- every message a sender had accepted was handled or dead-lettered exactly once (by
  message id, against the handler's own record and the ``DeadLetter`` events), a
  refused one never was, an ask that timed out had nothing settled before, and
  ``accepted == handled + dead_lettered`` in the counters;
- a send or spawn is refused only for the reason it names (a stopped actor, a full
  mailbox or domain, a domain that is down);
- no task outlives the run; the orderly shutdown (or the root's give-up) stays within
  its bound; the harness invariants hold while running and after closing.

The ``ci`` profile runs a few dozen examples of up to ~250 actors in a few seconds;
``MISTER_SMITH_HYPOTHESIS_PROFILE=thorough`` runs many more, with up to 600 actors.
"""

from __future__ import annotations

import collections
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest
import trio
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from mister_smith.actors import Actor, ActorContext, ActorDomain, ActorRef, ActorSystem
from mister_smith.config import ActorSettings, AgentConfig, SupervisionSettings
from mister_smith.errors import (
    ActorCrashed,
    ActorStopped,
    AskTimeout,
    HandlingInterrupted,
    MailboxFull,
    PoolExhausted,
    RecoveryAction,
    RestartIntensityExceeded,
    SupervisionError,
    root_cause,
)
from mister_smith.events import (
    AgentStopped,
    ChildExited,
    DeadLetter,
    Event,
    ExitKind,
    HeartbeatMissed,
    SupervisionDecision,
    SupervisorStopped,
)
from mister_smith.supervision import INHERIT, Inherit, OneForAll, RestartIntensity, RestartLimit
from mister_smith.testing import (
    ControlMessage,
    FailureType,
    InjectionRefused,
    SystemTestHarness,
    TaskCounter,
    run_virtual,
)

THOROUGH = os.environ.get("MISTER_SMITH_HYPOTHESIS_PROFILE") == "thorough"
EXAMPLES = settings().max_examples // 2
"""25 examples per property under ``ci``, 500 under ``thorough``."""
MIN_ACTORS, MAX_ACTORS = (200, 600) if THOROUGH else (100, 250)
MAX_CHAOS = 150 if THOROUGH else 40
HORIZON = 60.0 if THOROUGH else 30.0
"""Seconds (virtual) over which chaos and traffic are spread."""
SETTLE_BOUND = 3000.0
"""Seconds (virtual) the system gets to work off its mailboxes after the horizon."""

HOT_ACTORS = 16
"""Chaos hits at most this many actors (spread over the groups), so budgets get spent."""
SPREAD = 7919
"""A prime: ``target * SPREAD % population`` spreads targets over the groups."""
CHAOS_KINDS = ("crash", "poison", "hang", "escalate", "crash", "poison", "hang", "stop")
BUDGET_SPENT = "restart intensity exceeded"
INTENSITY_ACTIONS = frozenset({RecoveryAction.RESTART, RecoveryAction.RELOAD})
ESCALATION = "explicit escalation"


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Supervision logs every decision; a soak needs no log records."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# -- what hypothesis draws -------------------------------------------------------------


@attrs.frozen
class DomainPlan:
    """A domain started with ``start_domain``: a plain one (per-actor budgets, no
    intensity) or a team (OTP intensity ``max_restarts`` within ``restart_window``).

    ``parent`` indexes an earlier domain (``None``: the default domain).
    ``child_limit`` is each member's budget: ``INHERIT`` (the system's) or ``None``
    (none: only the team's intensity bounds its members, as for agent teams)."""

    name: str
    parent: int | None
    max_restarts: int | None
    restart_window: float
    one_for_all: bool
    child_limit: RestartLimit | Inherit | None


@attrs.frozen
class GroupPlan:
    """``count`` actors spawned alike into domain ``home`` (``None``: the default one)."""

    count: int
    home: int | None
    heartbeat: bool
    max_restarts: int | None
    restart_window: float | None


@attrs.frozen
class Chaos:
    """At ``at``, ``kind`` hits actor ``target`` (one of :data:`HOT_ACTORS`):
    ``crash`` (harness injection), ``poison`` (a message its handler raises on),
    ``hang`` (a message its handler never finishes) or ``escalate`` (a message its
    handler raises an explicit ``SupervisionError`` on: its domain gives up)."""

    at: float
    target: int
    kind: str


@attrs.frozen
class Traffic:
    """At ``at``, ``burst`` ordinary messages to actor ``target`` by ``mode`` (targets
    map to actors like :class:`Chaos` targets, so ``0`` to ``15`` are the hot ones)."""

    at: float
    target: int
    mode: str
    burst: int


@attrs.frozen
class SoakPlan:
    """One example: configuration, population, chaos and workload."""

    config: AgentConfig
    domains: tuple[DomainPlan, ...]
    groups: tuple[GroupPlan, ...]
    chaos: tuple[Chaos, ...]
    traffic: tuple[Traffic, ...]


def _config(
    budget: tuple[int, float],
    backoff: tuple[float, float, float],
    beats: tuple[float, float],
    mailbox: int,
    width: int,
) -> AgentConfig:
    return AgentConfig(
        supervision=SupervisionSettings(
            max_restart_attempts=budget[0],
            restart_window=budget[1],
            backoff_initial=backoff[0],
            backoff_max=backoff[1],
            backoff_jitter=backoff[2],
            heartbeat_interval=beats[0],
            heartbeat_timeout=beats[1],
            max_children_per_supervisor=width,
        ),
        actors=ActorSettings(mailbox_capacity=mailbox),
    )


def configs() -> st.SearchStrategy[AgentConfig]:
    """The default configuration, or a variant of the settings fault isolation reads."""
    variant = st.builds(
        _config,
        budget=st.sampled_from([(3, 60.0), (0, 60.0), (1, 10.0), (5, 30.0)]),
        backoff=st.sampled_from([(0.1, 30.0, 0.1), (0.0, 0.0, 0.0), (2.0, 8.0, 0.0)]),
        beats=st.sampled_from([(5.0, 15.0), (1.0, 3.0)]),
        mailbox=st.sampled_from([1000, 3]),
        width=st.sampled_from([100, 40]),
    )
    return st.one_of(st.just(AgentConfig()), variant)


TEAM_LIMITS: tuple[RestartLimit | Inherit | None, ...] = (None, INHERIT)
"""A team's members: no budget of their own (as agent teams), or the system's."""
DOMAIN_LIMITS: tuple[RestartLimit | Inherit | None, ...] = (INHERIT, RestartLimit(1, 30.0))
"""A plain domain's members: the system's budget, or a tight one."""


def _times(horizon: float) -> st.SearchStrategy[float]:
    return st.integers(0, int(horizon * 10)).map(lambda tenths: tenths / 10)


@st.composite
def soak_plans(
    draw: st.DrawFn,
    *,
    min_actors: int = MIN_ACTORS,
    max_actors: int = MAX_ACTORS,
    max_chaos: int = MAX_CHAOS,
    horizon: float = HORIZON,
    kinds: Sequence[str] = CHAOS_KINDS,
) -> SoakPlan:
    """A configuration, domains, actor groups, a chaos schedule and a workload."""
    config = draw(configs())
    domains: list[DomainPlan] = []
    for index in range(draw(st.integers(0, 4))):
        team = draw(st.booleans())
        domains.append(
            DomainPlan(
                name=f"{'team' if team else 'domain'}{index}",
                parent=draw(st.none() | st.integers(0, index - 1)) if index else None,
                max_restarts=draw(st.integers(0, 3)) if team else None,
                restart_window=draw(st.sampled_from([10.0, 60.0])),
                one_for_all=team and draw(st.booleans()),
                child_limit=draw(st.sampled_from(TEAM_LIMITS if team else DOMAIN_LIMITS)),
            )
        )
    total = draw(st.integers(min_actors, max_actors))
    shapes = draw(
        st.lists(
            st.tuples(
                st.integers(1, 10),  # weight
                st.none() | st.integers(0, max(0, len(domains) - 1)),
                st.booleans(),  # heartbeat
                st.none() | st.integers(0, 4),  # own max_restarts
                st.none() | st.sampled_from([5.0, 60.0]),  # own restart_window
            ),
            min_size=1,
            max_size=6,
        )
    )
    weights = sum(shape[0] for shape in shapes)
    groups = []
    for weight, home, beats, own_max, own_window in shapes:
        count = max(1, total * weight // weights)
        groups.append(GroupPlan(count, home if domains else None, beats, own_max, own_window))
    chaos = draw(
        st.lists(
            st.builds(
                Chaos,
                at=_times(horizon),
                target=st.integers(0, HOT_ACTORS - 1),
                kind=st.sampled_from(kinds),
            ),
            max_size=max_chaos,
        )
    )
    traffic = draw(
        st.lists(
            st.builds(
                Traffic,
                at=_times(horizon),
                target=st.integers(0, 10_000),
                mode=st.sampled_from(["tell", "tell_nowait", "ask", "spawn"]),
                burst=st.integers(1, 5),
            ),
            max_size=max_chaos * 2,
        )
    )
    return SoakPlan(config, tuple(domains), tuple(groups), tuple(chaos), tuple(traffic))


# -- the system under test ---------------------------------------------------------------


@attrs.frozen
class Msg:
    """A workload message: ``kind`` is ``normal``, ``poison``, ``hang`` or ``escalate``."""

    id: int
    kind: str


@attrs.define
class Book:
    """What the actors and the senders saw, kept outside the system under test."""

    handled: collections.Counter[int] = attrs.field(factory=collections.Counter)
    raised: dict[int, BaseException] = attrs.field(factory=dict)
    """Message id -> the error its handler raised."""
    escalations: dict[int, str] = attrs.field(factory=dict)
    """Message id of each escalation raised -> the actor that raised it."""
    hanging: dict[str, int] = attrs.field(factory=dict)
    """Actor name -> id of the message its handler hangs on now."""
    accepted: set[int] = attrs.field(factory=set)
    """Ids the sender knows were accepted (a send returned, or the ask got an answer
    or an error that only follows acceptance)."""
    refused: set[int] = attrs.field(factory=set)
    """Ids the sender knows were refused (the send raised or was cancelled unsent)."""
    unknown: set[int] = attrs.field(factory=set)
    """Ids whose fate the sender cannot know (an ask timed out or found the actor
    stopped; a send cut short by the runtime ending)."""
    replies: dict[int, Any] = attrs.field(factory=dict)
    handled_at: dict[int, float] = attrs.field(factory=dict)
    timed_out: dict[int, float] = attrs.field(factory=dict)
    """Id of each ask that timed out -> when it gave up."""
    crashed_asks: set[int] = attrs.field(factory=set)
    stop_requested: set[str] = attrs.field(factory=set)
    """Actors the workload stopped with ``ref.stop()``."""
    problems: list[str] = attrs.field(factory=list)
    next_id: int = 0

    def message(self, kind: str) -> Msg:
        self.next_id += 1
        return Msg(self.next_id, kind)


class ChaosActor(Actor):
    """Answers ``(id, incarnation)``; poison raises, hang hangs, escalate escalates."""

    def __init__(self, book: Book) -> None:
        self.book = book

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        book = self.book
        if not isinstance(message, Msg):
            book.problems.append(f"{ctx.name} got a foreign message {message!r}")
            return None
        if message.kind == "poison":
            error: Exception = ValueError(f"poison message #{message.id} for {ctx.name}")
            book.raised[message.id] = error
            raise error
        if message.kind == "escalate":
            error = SupervisionError(f"{ESCALATION} #{message.id} by {ctx.name}")
            book.raised[message.id] = error
            book.escalations[message.id] = ctx.name
            raise error
        if message.kind == "hang":
            book.hanging[ctx.name] = message.id
            try:
                await trio.sleep_forever()
            finally:
                if book.hanging.get(ctx.name) == message.id:
                    del book.hanging[ctx.name]
        book.handled[message.id] += 1  # no checkpoint from here to the reply
        book.handled_at[message.id] = trio.current_time()
        return (message.id, ctx.incarnation)


@attrs.frozen
class Placement:
    """Where an actor lives and the budget it must spend before it is stopped."""

    ref: ActorRef
    domain: str
    budget: RestartLimit | None
    heartbeat: bool


@attrs.define
class Run:
    """What one example left behind for the checks."""

    plan: SoakPlan
    book: Book
    harness: SystemTestHarness | None = None
    domains: list[ActorDomain] = attrs.field(factory=list)
    """The plan's domains, in plan order."""
    actors: dict[str, Placement] = attrs.field(factory=dict)
    domain_parent: dict[str, str | None] = attrs.field(factory=dict)
    """Domain name -> the domain it is a child of (``None``: the root)."""
    domain_budget: dict[str, RestartLimit | None] = attrs.field(factory=dict)
    """Domain name -> its own restart budget under its parent domain."""
    domain_limits: dict[str, tuple[int, float]] = attrs.field(factory=dict)
    """Supervisor name -> its intensity (teams and the root)."""
    error: BaseException | None = None
    ended_at: float | None = None
    end_index: int | None = None
    """Event-log length when the body finished (``None``: the root gave up first)."""
    settled: bool = False
    while_running: list[str] = attrs.field(factory=list)
    leaked: list[str] = attrs.field(factory=list)


def config_limit(config: AgentConfig) -> RestartLimit:
    """Each actor's budget and the root's intensity from ``config``."""
    sup = config.supervision
    return RestartLimit(sup.max_restart_attempts, sup.restart_window)


def resolve(limit: RestartLimit | Inherit | None, config: AgentConfig) -> RestartLimit | None:
    """A plan's ``child_limit`` as the budget it stands for."""
    return config_limit(config) if isinstance(limit, Inherit) else limit


async def start_domains(run: Run, system: ActorSystem) -> None:
    """Start the plan's domains (each under its parent, default: the default domain)."""
    config = run.plan.config
    started: list[ActorDomain] = []
    child_limits: dict[str, RestartLimit | None] = {}
    for plan in run.plan.domains:
        parent = None if plan.parent is None else started[plan.parent]
        domain = await system.start_domain(
            plan.name,
            parent=parent,
            strategy=OneForAll() if plan.one_for_all else None,
            max_restarts=plan.max_restarts,
            restart_window=plan.restart_window,
            child_limit=plan.child_limit,
        )
        started.append(domain)
        child_limits[plan.name] = resolve(plan.child_limit, config)
        parent_name = system.default_domain.name if parent is None else parent.name
        run.domain_budget[plan.name] = child_limits.get(parent_name, config_limit(config))
        if plan.max_restarts is not None:
            run.domain_limits[plan.name] = (plan.max_restarts, plan.restart_window)
    run.domains = started


def budget_of(
    run: Run, home: ActorDomain | None, own: tuple[int | None, float | None]
) -> RestartLimit | None:
    """The budget an actor spawned into ``home`` with ``own`` overrides must spend."""
    config = run.plan.config
    default = config_limit(config)
    if own != (None, None):
        return RestartLimit(
            default.max_restarts if own[0] is None else own[0],
            default.window if own[1] is None else own[1],
        )
    if home is None:
        return default
    plan = next(plan for plan in run.plan.domains if plan.name == home.name)
    return resolve(plan.child_limit, config)


def locate(run: Run, system: ActorSystem, name: str) -> str:
    """The domain holding ``name`` (recording the domains' parents on the way)."""
    found = ""
    for domain in system.domains():
        parent = domain.parent
        run.domain_parent[domain.name] = parent.name if isinstance(parent, ActorDomain) else None
        if name in domain.members():
            found = domain.name
    return found


async def spawn_one(
    run: Run,
    system: ActorSystem,
    name: str,
    home: ActorDomain | None,
    *,
    heartbeat: bool,
    own: tuple[int | None, float | None] = (None, None),
) -> ActorRef | None:
    """Spawn a :class:`ChaosActor`; a refusal must be for the reason it gives."""
    width = run.plan.config.supervision.max_children_per_supervisor
    try:
        ref = await system.spawn(
            ChaosActor,
            run.book,
            name=name,
            supervisor=home,
            heartbeat=heartbeat,
            max_restarts=own[0],
            restart_window=own[1],
        )
    except PoolExhausted:
        if home is None or home.supervisor.child_count < width:
            run.book.problems.append(f"spawn of {name} refused with room left")
        return None
    except ActorStopped:
        # Only while the domain is down: restarting (its parent waits out a backoff;
        # see test_chaos_regressions), stopped for good, or the runtime going down.
        target = system.default_domain if home is None else home
        down = target.terminated or target.supervisor.state != "running"
        if not down and run.harness is not None and runtime_running(run.harness):
            run.book.problems.append(f"spawn of {name} into a running domain refused")
        return None
    domain = locate(run, system, name)
    if not domain:
        run.book.problems.append(f"{name} spawned into no domain")
    run.actors[name] = Placement(ref, domain, budget_of(run, home, own), heartbeat)
    return ref


async def spawn_actors(run: Run, system: ActorSystem) -> None:
    """Spawn every group of the plan."""
    for number, group in enumerate(run.plan.groups):
        home = None if group.home is None else run.domains[group.home]
        own = (group.max_restarts, group.restart_window)
        for index in range(group.count):
            await spawn_one(
                run, system, f"g{number}-{index}", home, heartbeat=group.heartbeat, own=own
            )


# -- driving it --------------------------------------------------------------------------


def runtime_running(harness: SystemTestHarness) -> bool:
    """Whether the root still runs (once it gives up, refusals are expected)."""
    return harness.supervision.state == "running"


def check_refusal(harness: SystemTestHarness, ref: ActorRef, error: Exception, book: Book) -> None:
    """A send refused while the runtime runs must be refused for the stated reason."""
    if not runtime_running(harness):
        return
    if isinstance(error, ActorStopped) and ref.is_alive:
        book.problems.append(f"send to live {ref.name} refused: {error!r}")
    if isinstance(error, MailboxFull) and ref.statistics().queued < ref.statistics().capacity:
        book.problems.append(f"tell_nowait to {ref.name} refused with room: {error!r}")


async def send_tell(harness: SystemTestHarness, ref: ActorRef, msg: Msg, book: Book) -> None:
    """``tell``, giving up after 5 s of a full mailbox (then it was not accepted)."""
    book.unknown.add(msg.id)
    with trio.move_on_after(5.0) as scope:
        try:
            await ref.tell(msg)
        except ActorStopped as exc:
            check_refusal(harness, ref, exc, book)
            book.unknown.discard(msg.id)
            book.refused.add(msg.id)
            return
    book.unknown.discard(msg.id)
    (book.refused if scope.cancelled_caught else book.accepted).add(msg.id)


def send_nowait(harness: SystemTestHarness, ref: ActorRef, msg: Msg, book: Book) -> None:
    """``tell_nowait``: accepted, or refused (stopped, mailbox full) at once."""
    try:
        ref.tell_nowait(msg)
    except (ActorStopped, MailboxFull) as exc:
        check_refusal(harness, ref, exc, book)
        book.refused.add(msg.id)
    else:
        book.accepted.add(msg.id)


async def send_ask(harness: SystemTestHarness, ref: ActorRef, msg: Msg, book: Book) -> None:
    """``ask`` within 10 s; what it raises says what became of the message."""
    book.unknown.add(msg.id)
    try:
        reply = await ref.ask(msg, timeout=10.0)
    except (ActorCrashed, HandlingInterrupted) as exc:
        book.crashed_asks.add(msg.id)
        book.unknown.discard(msg.id)
        book.accepted.add(msg.id)
        if isinstance(exc, ActorCrashed) and exc.__cause__ is None:
            book.problems.append(f"ask #{msg.id} crashed without a cause: {exc!r}")
    except ActorStopped as exc:
        if not ref.is_alive or not runtime_running(harness):
            return  # refused at the send, or dead-lettered when it stopped
        # ActorStopped for an actor that is alive and a runtime that runs: wrong.
        book.problems.append(f"ask #{msg.id} to live {ref.name} failed: {exc!r}")
    except AskTimeout:
        book.timed_out[msg.id] = trio.current_time()
    else:
        book.unknown.discard(msg.id)
        book.accepted.add(msg.id)
        book.replies[msg.id] = reply


async def stop_actor(harness: SystemTestHarness, ref: ActorRef, book: Book) -> None:
    """Stop ``ref`` on request; once that returns, it is gone."""
    if not ref.is_alive:
        await trio.lowlevel.checkpoint()
        return
    book.stop_requested.add(ref.name)
    await ref.stop()
    if ref.is_alive and runtime_running(harness):
        book.problems.append(f"{ref.name} still alive after stop() returned")


async def perform(
    run: Run,
    harness: SystemTestHarness,
    refs: list[ActorRef],
    nursery: trio.Nursery,
) -> None:
    """Play the chaos schedule and the workload together, at their times."""
    book = run.book
    items: list[Chaos | Traffic] = [*run.plan.chaos, *run.plan.traffic]
    steps = [(item.at, index, item) for index, item in enumerate(items)]
    start = trio.current_time()
    for at, _, step in sorted(steps, key=lambda s: (s[0], s[1])):
        await trio.sleep_until(start + at)
        ref = refs[step.target * SPREAD % len(refs)]
        if isinstance(step, Chaos):
            if step.kind == "crash":
                try:
                    await harness.inject_failure(ref, FailureType.CRASH)
                except InjectionRefused:
                    if ref.is_alive:
                        book.problems.append(f"crash refused by live {ref.name}")
                except ActorStopped:
                    pass  # the trigger found it stopping
            elif step.kind == "stop":
                nursery.start_soon(stop_actor, harness, ref, book)
            else:
                send_nowait(harness, ref, book.message(step.kind), book)
            continue
        if step.mode == "spawn":
            # A new actor while the chaos goes on, into the default domain or another.
            where = step.target % (len(run.domains) + 1)
            home = run.domains[where - 1] if where else None
            name = f"late-{len(run.actors)}"
            late = await spawn_one(run, harness.actor_system, name, home, heartbeat=step.burst > 2)
            if late is not None:
                refs.append(late)
            continue
        for _ in range(step.burst):
            msg = book.message("normal")
            if step.mode == "tell_nowait":
                send_nowait(harness, ref, msg, book)
            elif step.mode == "tell":
                nursery.start_soon(send_tell, harness, ref, msg, book)
            else:
                nursery.start_soon(send_ask, harness, ref, msg, book)


def pending_fault(harness: SystemTestHarness, name: str) -> bool:
    """Whether an injected fault waits for actor ``name``'s next message."""
    return any(i.target == f"actor:{name}" and not i.applied for i in harness.injections())


async def settle(run: Run) -> bool:
    """Wait until every live actor has worked off its mailbox, except those hanging for
    good (not heartbeat-watched); a watched actor that hangs must be restarted."""
    busy = list(run.actors.values())
    deadline = trio.current_time() + SETTLE_BOUND
    while busy and trio.current_time() < deadline:
        await trio.sleep(5.0)
        busy = [place for place in busy if place.ref.is_alive and not quiet(run, place)]
    if busy:
        run.book.problems.append(f"never settled: {[p.ref.statistics() for p in busy[:3]]}")
    return not busy


def quiet(run: Run, place: Placement) -> bool:
    """Nothing queued or in flight; or, unwatched, hanging for good."""
    hanging = place.ref.name in run.book.hanging
    if place.heartbeat:
        return not hanging and place.ref.load == 0
    return hanging or place.ref.load == 0


async def ask_everyone(run: Run, harness: SystemTestHarness) -> None:
    """Every live actor that neither hangs nor has a fault pending answers."""
    book = run.book
    wait = run.plan.config.supervision.backoff_max + 5.0

    async def ping(ref: ActorRef) -> None:
        msg = book.message("normal")
        book.unknown.add(msg.id)
        try:
            reply = await ref.ask(msg, timeout=wait)
        except Exception as exc:
            book.problems.append(f"{ref.name} ({ref.statistics()}) does not answer: {exc!r}")
            return
        book.unknown.discard(msg.id)
        book.accepted.add(msg.id)
        book.replies[msg.id] = reply

    async with trio.open_nursery() as nursery:
        for place in run.actors.values():
            ref = place.ref
            if (
                ref.is_alive
                and ref.name not in book.hanging
                and not pending_fault(harness, ref.name)
            ):
                nursery.start_soon(ping, ref)


async def soak(run: Run) -> None:
    """One example's body: build, play the chaos, settle, ask everyone, check."""
    async with SystemTestHarness.open(run.plan.config) as harness:
        run.harness = harness
        system = harness.actor_system
        run.domain_parent[system.default_domain.name] = None
        run.domain_limits[harness.supervision.name] = (
            config_limit(run.plan.config).max_restarts,
            config_limit(run.plan.config).window,
        )
        await start_domains(run, system)
        await spawn_actors(run, system)
        refs = [place.ref for place in run.actors.values()]
        if not refs:  # every spawn refused: nothing to soak
            run.end_index = len(harness.event_log())
            return
        async with trio.open_nursery() as nursery:
            await perform(run, harness, refs, nursery)
            # Mid-chaos too: restarts pending, messages queued, asks in flight.
            run.while_running += [f"mid-chaos: {p}" for p in harness.check_invariants()]
        run.settled = await settle(run)
        await ask_everyone(run, harness)
        run.while_running += [f"while running: {p}" for p in harness.check_invariants()]
        run.end_index = len(harness.event_log())


def run_example(plan: SoakPlan) -> Run:
    """Run ``plan`` in a fresh virtual-time Trio run, counting tasks."""
    run = Run(plan, Book())
    counter = TaskCounter()

    async def main() -> None:
        counter.mark()
        try:
            await soak(run)
        except SupervisionError as exc:
            run.error = exc
        run.ended_at = trio.current_time()

    run_virtual(main, instruments=[counter])
    run.leaked = [task.name for task in counter.live_since_mark()]
    return run


# -- the checks --------------------------------------------------------------------------


@attrs.frozen
class Decided:
    """A supervision decision with its place in the log and its supervisor's
    incarnation (its count of earlier ``SupervisorStopped`` events)."""

    index: int
    event: SupervisionDecision
    incarnation: int


def decisions_of(log: Sequence[Event]) -> list[Decided]:
    """Every decision in ``log``, with its index and supervisor incarnation."""
    incarnations: collections.Counter[str] = collections.Counter()
    found = []
    for index, item in enumerate(log):
        if isinstance(item, SupervisorStopped):
            incarnations[item.supervisor] += 1
        elif isinstance(item, SupervisionDecision):
            found.append(Decided(index, item, incarnations[item.supervisor]))
    return found


def restarts_before(
    decided: Sequence[Decided], at: Decided, child: str | None, window: float
) -> int:
    """Restarts by ``at``'s supervisor incarnation (of ``child`` only, unless ``None``)
    within the window ending at ``at``."""
    now = at.event.timestamp
    return sum(
        1
        for d in decided
        if d.index < at.index
        and d.event.supervisor == at.event.supervisor
        and d.incarnation == at.incarnation
        and (child is None or d.event.child == child)
        and d.event.action in INTENSITY_ACTIONS
        and d.event.timestamp > now - window
    )


def check_decisions(run: Run, decided: Sequence[Decided]) -> list[str]:
    """STOPs spend exactly a budget; give-ups are explicit or a spent intensity."""
    problems = []
    budgets: dict[str, RestartLimit | None] = {
        name: place.budget for name, place in run.actors.items()
    }
    budgets.update(run.domain_budget)
    for d in decided:
        decision = d.event
        if decision.action is RecoveryAction.STOP:
            budget = budgets.get(decision.child)
            if budget is None:
                problems.append(f"{decision.child} stopped without a budget: {decision!r}")
                continue
            spent = restarts_before(decided, d, decision.child, budget.window)
            if spent != budget.max_restarts:
                problems.append(
                    f"{decision.child} stopped after {spent} restarts within "
                    f"{budget.window:g} s, its budget is {budget.max_restarts}"
                )
        elif decision.action is RecoveryAction.ESCALATE:
            if decision.error_type == "SupervisionError" and decision.error.startswith(ESCALATION):
                continue
            limit = run.domain_limits.get(decision.supervisor)
            if limit is None:
                problems.append(f"{decision.supervisor} gave up with no intensity: {decision!r}")
                continue
            spent = restarts_before(decided, d, None, limit[1])
            if spent != limit[0]:
                problems.append(
                    f"{decision.supervisor} gave up after {spent} restarts within "
                    f"{limit[1]:g} s, its intensity is {limit[0]}"
                )
    return problems


def ancestors(run: Run, name: str) -> list[str]:
    """The domains holding actor ``name``, innermost first."""
    chain = []
    domain: str | None = run.actors[name].domain
    while domain is not None:
        chain.append(domain)
        domain = run.domain_parent.get(domain)
    return chain


def replay_root(run: Run, decided: Sequence[Decided]) -> list[str]:
    """Replay the root's decisions through a fresh intensity: each failure of a child of
    the root is a restart while the intensity allows it, and the first one past it is
    the root giving up (then nothing more is decided)."""
    assert run.harness is not None
    root = run.harness.supervision.name
    limit = config_limit(run.plan.config)
    intensity = RestartIntensity(limit.max_restarts, limit.window)
    problems = []
    gave_up = False
    for d in decided:
        if d.event.supervisor != root:
            continue
        if gave_up:
            problems.append(f"the root decided after giving up: {d.event!r}")
            continue
        within = intensity.record(d.event.timestamp)
        expected = RecoveryAction.RESTART if within else RecoveryAction.ESCALATE
        gave_up = not within
        if d.event.action is not expected:
            problems.append(f"the root decided {d.event.action.value}, expected {expected.value}")
    return problems


def check_root(run: Run, log: Sequence[Event], decided: Sequence[Decided]) -> list[str]:
    """The runtime ended exactly when the root's intensity was spent, with its error."""
    assert run.harness is not None
    root = run.harness.supervision.name
    gave_up = [
        d
        for d in decided
        if d.event.supervisor == root and d.event.action is RecoveryAction.ESCALATE
    ]
    problems = replay_root(run, decided)
    if run.error is None:
        if gave_up:
            problems.append(f"the root gave up but the runtime did not end: {gave_up[0].event!r}")
        if run.end_index is None:
            problems.append("the body did not finish, yet nothing ended the runtime")
        return problems
    error = run.error
    if not gave_up:
        problems.append(f"the runtime ended without the root giving up: {error!r}")
    if not isinstance(error, RestartIntensityExceeded) or f"supervisor {root!r}" not in str(error):
        problems.append(f"the runtime ended with {error!r}, not the root's intensity")
    cause = root_cause(error)
    origin = next((i for i, raised in run.book.raised.items() if raised is cause), None)
    if origin not in run.book.escalations:
        problems.append(f"root cause {cause!r} is not an escalation an actor raised")
    elif gave_up:
        # The root's last failed child is the top domain of the escalating actor.
        failed = [
            e
            for e in log[: gave_up[0].index]
            if isinstance(e, ChildExited) and e.supervisor == root and e.exit is ExitKind.FAILED
        ]
        top = ancestors(run, run.book.escalations[origin])[-1]
        if not failed or failed[-1].child != top:
            problems.append(f"root cause raised in {top}, root's last failure {failed[-1:]}")
    if gave_up and run.ended_at is not None:
        bound = run.plan.config.supervision.escalation_timeout
        took = run.ended_at - gave_up[0].event.timestamp
        if took > bound + 0.1:
            problems.append(f"the root took {took:g} s to give up, over {bound:g} s")
    return problems


def end_of_run(run: Run, decided: Sequence[Decided]) -> int:
    """Where the runtime's end begins in the log: the body finished, or the root gave up."""
    if run.end_index is not None:
        return run.end_index
    assert run.harness is not None
    root = run.harness.supervision.name
    return next(
        d.index
        for d in decided
        if d.event.supervisor == root and d.event.action is RecoveryAction.ESCALATE
    )


def check_stops(run: Run, log: Sequence[Event], decided: Sequence[Decided]) -> list[str]:
    """Before the end, an actor is stopped, and announced once, exactly when it (or a
    domain holding it) spent its budget, with that reason, or when it was asked to
    stop; every actor is gone once the runtime closed."""
    end = end_of_run(run, decided)
    budget_stops: dict[str, int] = {}
    for d in decided:
        if d.event.action is RecoveryAction.STOP and d.index < end:
            budget_stops.setdefault(d.event.child, d.index)
    stopped = collections.defaultdict(list)
    for index, item in enumerate(log):
        if isinstance(item, AgentStopped):
            stopped[item.name].append((index, item.reason))
    problems = []
    for name, place in run.actors.items():
        spent = min(
            (budget_stops[n] for n in [name, *ancestors(run, name)] if n in budget_stops),
            default=None,
        )
        announced = stopped.get(name, [])
        if len(announced) != 1:
            problems.append(f"{name} announced stopped {len(announced)} times: {announced}")
            continue
        index, reason = announced[0]
        if spent is not None and spent < index < end:
            expected: str | None = BUDGET_SPENT
        elif name in run.book.stop_requested and index < end:
            expected = "stopped"
        else:
            expected = None
        if expected is None and index < end:
            problems.append(f"{name} stopped ({reason}) with no budget spent nor stop asked")
        elif expected is not None and reason != expected:
            problems.append(f"{name} announced {reason!r} at {index}, expected {expected!r}")
        if spent is not None and index > end:
            problems.append(f"{name} spent its budget at {spent} but stopped at {index}")
        if place.ref.is_alive:
            problems.append(f"{name} is still alive after the runtime closed")
    return problems


def check_messages(run: Run, log: Sequence[Event]) -> list[str]:
    """Every accepted message was handled or dead-lettered exactly once."""
    assert run.harness is not None
    book = run.book
    dead: collections.Counter[int] = collections.Counter()
    dead_control = 0
    problems = []
    letters = [e for e in log if isinstance(e, DeadLetter)]
    for letter in letters:
        if isinstance(letter.message, Msg):
            dead[letter.message.id] += 1
        elif isinstance(letter.message, ControlMessage):
            dead_control += 1
        else:
            problems.append(f"dead letter of a message nobody sent: {letter!r}")
    for ident in range(1, book.next_id + 1):
        fate = book.handled[ident] + dead[ident]
        if ident in book.accepted and fate != 1:
            problems.append(
                f"accepted message #{ident}: handled {book.handled[ident]}, dead {dead[ident]}"
            )
        elif ident in book.refused and fate != 0:
            problems.append(
                f"refused message #{ident}: handled {book.handled[ident]}, dead {dead[ident]}"
            )
        elif fate > 1:
            problems.append(f"message #{ident}: handled {book.handled[ident]}, dead {dead[ident]}")
    for ident, reply in book.replies.items():
        if not (isinstance(reply, tuple) and reply[0] == ident and book.handled[ident] == 1):
            problems.append(f"ask #{ident} answered {reply!r}")
    dead_at = {e.message.id: e.timestamp for e in letters if isinstance(e.message, Msg)}
    for ident, gave_up in book.timed_out.items():
        # A timed-out ask waited for nothing that had happened: its message was still
        # queued or in flight then (the deadline covers queueing and the reply).
        settled = book.handled_at.get(ident, dead_at.get(ident, math.inf))
        if settled < gave_up:
            problems.append(f"ask #{ident} timed out at {gave_up:g}, settled at {settled:g}")
    for ident in book.crashed_asks:
        if dead[ident] != 1:
            problems.append(f"ask #{ident} failed but was not dead-lettered")
    stats = run.harness.actor_system.statistics()
    if stats.accepted != stats.handled + stats.dead_lettered:
        problems.append(f"after closing: {stats}")
    if stats.dead_lettered != len(letters):
        problems.append(f"{len(letters)} DeadLetter events, {stats.dead_lettered} counted")
    control_handled = stats.handled - sum(book.handled.values())
    control_sent = run.harness.statistics().control_sent
    if not 0 <= control_handled <= control_sent - dead_control:
        problems.append(
            f"handled {stats.handled}, of which {sum(book.handled.values())} by the actors and "
            f"{control_sent} control messages sent ({dead_control} dead)"
        )
    return problems


def outcomes(run: Run, decided: Sequence[Decided]) -> list[str]:
    """Labels of what happened in the example (for hypothesis's statistics)."""
    labels = []
    if run.error is not None:
        labels.append("the root gave up")
    stops = [d.event.child for d in decided if d.event.action is RecoveryAction.STOP]
    if any(child in run.actors for child in stops):
        labels.append("an actor spent its budget")
    if any(child in run.domain_budget for child in stops):
        labels.append("a domain spent its budget")
    if any(d.event.action is RecoveryAction.ESCALATE for d in decided):
        labels.append("a supervisor gave up")
    assert run.harness is not None
    if run.harness.events_of(HeartbeatMissed):
        labels.append("a hung handler was caught by heartbeat")
    if run.book.stop_requested:
        labels.append("an actor was stopped on request")
    if any(name.startswith("late-") for name in run.actors):
        labels.append("an actor was spawned during the chaos")
    return labels


def check_run(run: Run) -> list[str]:
    """Assert every property of the soak on one example's outcome; return the
    :func:`outcomes` labels."""
    harness = run.harness
    assert harness is not None, f"the runtime did not open: {run.error!r}"
    log = harness.event_log()
    decided = decisions_of(log)
    problems = list(run.book.problems) + run.while_running + harness.check_invariants()
    problems += [f"task {name!r} outlived trio.run's main" for name in run.leaked]
    problems += check_root(run, log, decided)
    problems += check_decisions(run, decided)
    problems += check_stops(run, log, decided)
    problems += check_messages(run, log)
    assert not problems, "\n".join(problems[:40])
    return outcomes(run, decided)


# -- the properties ------------------------------------------------------------------------


@settings(max_examples=EXAMPLES)
@given(plan=soak_plans())
def test_chaos_soak(plan: SoakPlan) -> None:
    """Hundreds of actors under random chaos: every property of the module docstring."""
    note(f"{sum(g.count for g in plan.groups)} actors, {len(plan.chaos)} chaos steps")
    for label in check_run(run_example(plan)):
        event(label)


@settings(max_examples=EXAMPLES)
@given(
    plan=soak_plans(
        min_actors=20,
        max_actors=80,
        max_chaos=16,
        horizon=20.0,
        kinds=("escalate", "escalate", "escalate", "poison", "hang", "crash"),
    )
)
def test_escalation_storms_end_the_runtime_only_at_the_root(plan: SoakPlan) -> None:
    """Escalation-heavy schedules on smaller populations: the root's intensity is often
    spent, and then (only then) the runtime ends with the root's error."""
    for label in check_run(run_example(plan)):
        event(label)


def test_four_escalations_in_the_default_domain_end_the_runtime() -> None:
    """With defaults the root allows 3 restarts per 60 s of its children ``actors`` and
    ``actors#2`` (120 actors overflow the default width of 100): the fourth explicit
    escalation within a minute ends the runtime, naming that escalation."""
    plan = SoakPlan(
        AgentConfig(),
        domains=(),
        groups=(GroupPlan(120, None, heartbeat=False, max_restarts=None, restart_window=None),),
        chaos=tuple(Chaos(float(i), i, "escalate") for i in range(6)),
        traffic=(Traffic(0.5, 3, "ask", 3),),
    )
    run = run_example(plan)
    assert check_run(run) == ["the root gave up", "a supervisor gave up"]
    assert isinstance(run.error, RestartIntensityExceeded)
    assert str(root_cause(run.error)).endswith("by g0-117")  # target 3, in actors#2
    assert "child 'actors#2'" in str(run.error)
    assert run.ended_at == 3.0
