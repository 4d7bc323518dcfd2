"""Random sequences of tell / ask / crash / stop / restart across a few actors.

Each example runs in a fresh ``trio.run`` on a ``MockClock`` (autojump at 0): the ops
are drawn up front, then played with senders and askers in background tasks so that
tells block on full mailboxes, asks time out, actors crash, restart (in place after a
handler timeout, or by the supervisor), stop themselves, are stopped while messages
are queued or in flight, and are spawned again under the same name. Sometimes the
restart intensity is low enough that the whole system gives up.

At the end, for every actor and in total: ``accepted == handled + dead_lettered``,
nothing queued or in flight, the dead-letter log and ``DeadLetter`` events hold every
dead letter, every reply went to its own ask, every ``ActorCrashed`` names the right
cause, and no task is left running.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import event, given, settings, target
from hypothesis import strategies as st

from mister_smith.actors import Actor, ActorContext, ActorRef, ActorSystem
from mister_smith.errors import (
    ActorCrashed,
    ActorNameTaken,
    ActorNotFound,
    ActorStopped,
    AskTimeout,
    HandlerTimeout,
    HandlingInterrupted,
    MailboxFull,
    RestartIntensityExceeded,
)
from mister_smith.events import DeadLetter, EventBus
from mister_smith.supervision import OneForAll, OneForOne, RestForOne, open_supervisor
from mister_smith.types import Restart

NAMES = ("a", "b", "c")
STRATEGIES = {
    "one for one": OneForOne(),
    "one for all": OneForAll(),
    "rest for one": RestForOne(),
}
HANDLER_TIMEOUT = 2.0


class Scripted(Actor):
    """Payloads are ``(kind, id, ...)``: ``work`` replies with the payload, ``slow``
    sleeps ``payload[2]`` s first, ``crash`` raises, ``stop_self`` stops the actor from
    inside its handler and replies, ``spawn_child`` spawns a child actor with
    ``ctx.spawn`` (stopped whenever this incarnation ends), sends it one message and
    records it in ``children``. ``on_start`` and ``on_stop`` take the given time, so
    spawns and stops can be cancelled or overlap."""

    def __init__(self, start_seconds: float, stop_seconds: float, children: list[ActorRef]) -> None:
        self.start_seconds = start_seconds
        self.stop_seconds = stop_seconds
        self.children = children

    async def on_start(self, ctx: ActorContext) -> None:
        if self.start_seconds:
            await trio.sleep(self.start_seconds)

    async def on_stop(self, ctx: ActorContext) -> None:
        if self.stop_seconds:
            await trio.sleep(self.stop_seconds)

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        kind = message[0]
        if kind == "slow":
            await trio.sleep(message[2])
        elif kind == "crash":
            raise ValueError(message)
        elif kind == "stop_self":
            await ctx.ref.stop()
        elif kind == "spawn_child":
            child = await ctx.spawn(
                Scripted, 0.0, 0.0, self.children, name=f"{ctx.name}-kid-{message[1]}"
            )
            self.children.append(child)
            child.tell_nowait(("work", -1 - message[1]))
        return message


@attrs.frozen
class Options:
    restart: Restart
    mailbox_capacity: int
    handler_timeout: float | None
    start_seconds: float
    stop_seconds: float


@attrs.frozen
class Op:
    kind: str
    actor: int = 0
    payload: str = "work"
    seconds: float = 0.0
    background: bool = True
    cancel_after: float | None = None
    """Stops and respawns: run under a scope cancelled after this many seconds."""
    by_name: bool = False
    """Stops: by name (reaches an actor whose spawn has not returned yet)."""


options_strategy = st.builds(
    Options,
    restart=st.sampled_from([Restart.TRANSIENT, Restart.PERMANENT, Restart.TEMPORARY]),
    mailbox_capacity=st.sampled_from([1, 2, 5]),
    handler_timeout=st.sampled_from([None, HANDLER_TIMEOUT]),
    start_seconds=st.sampled_from([0.0, 0.0, 1.0]),
    stop_seconds=st.sampled_from([0.0, 0.0, 1.0]),
)
cancel_after = st.sampled_from([None, None, 0.0, 0.5])
actor_index = st.integers(0, len(NAMES) - 1)
payload_kind = st.sampled_from(["work", "work", "slow", "crash", "stop_self", "spawn_child"])
tell_op = st.builds(Op, kind=st.just("tell"), actor=actor_index, payload=payload_kind)
ask_op = st.builds(
    Op,
    kind=st.just("ask"),
    actor=actor_index,
    payload=payload_kind,
    seconds=st.sampled_from([0.5, 3.0, 30.0, 30.0]),
)
sleep_op = st.builds(Op, kind=st.just("sleep"), seconds=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
# Sends and sleeps weigh more than stops and respawns, so actors live long enough to
# fill their mailboxes, crash and restart.
ops_strategy = st.one_of(
    tell_op,
    tell_op,
    ask_op,
    ask_op,
    sleep_op,
    sleep_op,
    st.builds(Op, kind=st.just("tell_nowait"), actor=actor_index, payload=payload_kind),
    st.builds(
        Op,
        kind=st.just("stop"),
        actor=actor_index,
        background=st.booleans(),
        cancel_after=cancel_after,
        by_name=st.booleans(),
    ),
    st.builds(
        Op,
        kind=st.just("respawn"),
        actor=actor_index,
        background=st.booleans(),
        cancel_after=cancel_after,
    ),
)


@attrs.define
class Record:
    """What the senders saw."""

    tells_ok: int = 0
    tells_refused: int = 0
    asks: int = 0
    replies: int = 0
    crashed: int = 0
    ask_outcomes: Counter[str] = attrs.field(factory=Counter)
    leftover_tasks: set[str] = attrs.field(factory=set)
    system_failed: bool = False
    paths: set[str] = attrs.field(factory=set)


class TaskTracker(trio.abc.Instrument):
    def __init__(self) -> None:
        self.live: set[trio.lowlevel.Task] = set()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.live.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.discard(task)


def payload_for(kind: str, ids: itertools.count[int]) -> tuple[Any, ...]:
    if kind == "slow":
        return ("slow", next(ids), 4.0)
    return (kind, next(ids))


async def play(
    system: ActorSystem,
    senders: trio.Nursery,
    ops: list[Op],
    specs: list[Options],
    refs: list[ActorRef],
    record: Record,
    strategy: str,
) -> dict[int, ActorRef]:
    """Spawn the actors and play ``ops``; senders and askers run in ``senders``."""
    ids = itertools.count()
    current: dict[int, ActorRef] = {}

    async def spawn(index: int, cancel_after: float | None = None) -> None:
        spec = specs[index]
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after) as scope:
            try:
                ref = await system.spawn(
                    Scripted,
                    spec.start_seconds,
                    spec.stop_seconds,
                    refs,  # where children spawned with ctx.spawn are recorded
                    name=NAMES[index],
                    restart=spec.restart,
                    mailbox_capacity=spec.mailbox_capacity,
                    handler_timeout=spec.handler_timeout,
                )
            except ActorNameTaken:  # another respawn of that name is still starting
                return
            except ActorStopped:  # a background respawn racing the system's shutdown
                assert system.supervisor.state != "running"
                record.paths.add("a spawn was refused by a stopping system")
                return
            current[index] = ref
            refs.append(ref)
            if not ref.is_alive:
                record.paths.add("a spawn returned an actor stopped while starting")
        if scope.cancelled_caught:
            record.paths.add("a spawn was cancelled")

    async def stop(op: Op) -> None:
        deadline = math.inf if op.cancel_after is None else op.cancel_after
        with trio.move_on_after(deadline) as scope:
            if op.by_name:
                with suppress(ActorNotFound):
                    await system.stop(NAMES[op.actor])
            else:
                await system.stop(current[op.actor])
        if scope.cancelled_caught:
            record.paths.add("a stop was cancelled")

    async def tell(ref: ActorRef, payload: tuple[Any, ...]) -> None:
        try:
            await ref.tell(payload)
        except ActorStopped:
            record.tells_refused += 1
        else:
            record.tells_ok += 1

    async def ask(ref: ActorRef, payload: tuple[Any, ...], timeout: float) -> None:
        record.asks += 1
        try:
            reply = await ref.ask(payload, timeout=timeout)
        except ActorCrashed as crashed:
            record.crashed += 1
            record.ask_outcomes["crashed"] += 1
            cause = crashed.__cause__
            if payload[0] == "crash":
                assert isinstance(cause, ValueError)
                assert cause.args == (payload,)
            elif payload[0] == "spawn_child" and system.supervisor.state != "running":
                assert isinstance(cause, ActorStopped)  # ctx.spawn refused while stopping
                record.paths.add("a ctx.spawn was refused by a stopping system")
            else:  # only a handler timeout can crash on anything else
                assert payload[0] == "slow"
                assert isinstance(cause, HandlerTimeout)
        except ActorStopped:
            record.ask_outcomes["stopped"] += 1
        except HandlingInterrupted:  # restarted for a sibling's crash while handling it
            assert strategy != "one for one"
            record.ask_outcomes["interrupted"] += 1
        except AskTimeout:
            record.ask_outcomes["timeout"] += 1
        else:
            assert reply == payload  # every reply goes to its own ask
            assert payload[0] != "crash"
            record.replies += 1
            record.ask_outcomes["replied"] += 1

    for index in range(len(NAMES)):
        await spawn(index)
    for op in ops:
        ref = current[op.actor]
        if op.kind == "tell":
            senders.start_soon(tell, ref, payload_for(op.payload, ids))
        elif op.kind == "tell_nowait":
            try:
                ref.tell_nowait(payload_for(op.payload, ids))
            except (MailboxFull, ActorStopped):
                record.tells_refused += 1
            else:
                record.tells_ok += 1
        elif op.kind == "ask":
            senders.start_soon(ask, ref, payload_for(op.payload, ids), op.seconds)
        elif op.kind == "stop":
            if op.background:
                senders.start_soon(stop, op)
            else:
                await stop(op)
        elif op.kind == "respawn":
            if not ref.is_alive and system.get(NAMES[op.actor]) is None:
                if op.background:
                    senders.start_soon(spawn, op.actor, op.cancel_after)
                else:
                    await spawn(op.actor, op.cancel_after)
        else:
            await trio.sleep(op.seconds)
        await trio.sleep(0)
    return current


@asynccontextmanager
async def open_system(strategy: str, max_restarts: int) -> AsyncIterator[ActorSystem]:
    """An actor system on a supervisor with the given strategy; shut down on exit."""
    bus = EventBus()
    async with open_supervisor(
        "actors",
        strategy=STRATEGIES[strategy],
        max_restarts=max_restarts,
        events=bus,
        keep_alive=True,
    ) as supervisor:
        yield ActorSystem(supervisor, bus, dead_letter_log_size=100_000)
        await supervisor.stop()


def run_example(
    strategy: str, max_restarts: int, specs: list[Options], ops: list[Op], ending: str
) -> None:
    """Play ``ops``, then end by stopping each actor (``"stop each"``) or by leaving
    the system with messages still queued and senders still waiting (``"shutdown"``)."""
    refs: list[ActorRef] = []
    record = Record()
    tracker = TaskTracker()
    holder: list[ActorSystem] = []
    times: dict[str, float] = {}

    async def main() -> None:
        try:
            # The senders live outside the system, so that they outlive its shutdown.
            async with trio.open_nursery() as senders:
                async with open_system(strategy, max_restarts) as system:
                    holder.append(system)
                    baseline = set(tracker.live)
                    await play(system, senders, ops, specs, refs, record, strategy)
                    if ending == "stop each":
                        await trio.sleep(1)  # background spawns have registered by now
                        while system.actors():
                            for ref in system.actors():
                                await system.stop(ref)
                        await trio.sleep(1)
                        # Every sender, asker and stopper is done; no actor task is left.
                        record.leftover_tasks = {t.name for t in tracker.live - baseline}
                times["system closed"] = trio.current_time()
            times["senders done"] = trio.current_time()
        except* RestartIntensityExceeded:
            record.system_failed = True

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[tracker])
    system = holder[0]

    # No task left running, and nobody waited for a timeout once the actors were gone:
    # blocked tells and pending asks all failed fast at the stop / shutdown.
    assert {task.name for task in tracker.live} <= {"<init>", "<TrioToken.run_sync_soon task>"}
    if not record.system_failed:
        assert record.leftover_tasks == set(), record.leftover_tasks
        assert times["senders done"] == times["system closed"]
        assert sum(record.ask_outcomes.values()) == record.asks

    accepted = handled = dead = failed = 0
    for ref in refs:
        stats = ref.statistics()
        assert not ref.is_alive
        assert stats.queued == 0
        assert stats.in_flight == 0
        assert stats.accepted == stats.handled + stats.dead_lettered, stats
        assert stats.failed <= stats.dead_lettered
        accepted += stats.accepted
        handled += stats.handled
        dead += stats.dead_lettered
        failed += stats.failed
    assert accepted == handled + dead
    assert len(system.dead_letters()) == dead
    assert len(system.events.history(DeadLetter)) == dead
    totals = system.statistics()
    assert (totals.live_actors, totals.spawned) == (0, len(refs))
    assert (totals.accepted, totals.handled, totals.failed, totals.dead_lettered) == (
        accepted,
        handled,
        failed,
        dead,
    )
    # Every accepted message came from a tell that returned or an ask; every reply and
    # every ActorCrashed is an accepted message that was handled or dead-lettered.
    assert record.tells_ok + record.replies + record.crashed <= accepted
    kids = sum("-kid-" in ref.name for ref in refs)  # each got one message from its parent
    assert accepted <= record.tells_ok + record.asks + kids
    assert record.replies <= handled
    assert record.crashed <= failed

    # Steer generation towards examples where asks end in many different ways.
    target(float(len(record.ask_outcomes)), label="distinct ask outcomes")
    # Shown by --hypothesis-show-statistics: which paths the examples reached.
    event(f"strategy: {strategy}")
    event(f"ending: {'system failed' if record.system_failed else ending}")
    for outcome in record.ask_outcomes:
        event(f"an ask {outcome}")
    if any(ref.statistics().restarts for ref in refs):
        event("an actor restarted")
    if dead > failed:
        event("dead letters from stops or shutdown")
    for path in record.paths:
        event(path)


@settings(max_examples=max(200, settings().max_examples))
@given(data=st.data())
def test_random_operations_lose_no_message_and_leave_no_task(data: st.DataObject) -> None:
    strategy = data.draw(st.sampled_from(sorted(STRATEGIES)), label="strategy")
    max_restarts = data.draw(st.sampled_from([2, 1_000]), label="max_restarts")
    specs = [data.draw(options_strategy, label=f"options {name}") for name in NAMES]
    ops = data.draw(st.lists(ops_strategy, min_size=3, max_size=40), label="ops")
    ending = data.draw(st.sampled_from(["stop each", "shutdown"]), label="ending")
    run_example(strategy, max_restarts, specs, ops, ending)
