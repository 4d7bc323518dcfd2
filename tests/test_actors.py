"""Actors and refs on virtual time: hooks, tell / ask / stop, backpressure, restarts,
dead letters, per-message deadlines, statistics and middleware.

Every time asserted here is exact: the tests run on ``autojump_clock``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing

from mister_smith.actors import (
    Actor,
    ActorContext,
    ActorRef,
    ActorStatus,
    ActorSystem,
    open_actor_system,
)
from mister_smith.errors import (
    ActorCrashed,
    ActorError,
    ActorStopped,
    AskTimeout,
    HandlerTimeout,
    MailboxFull,
    MessageRejected,
    RecoveryAction,
)
from mister_smith.events import DeadLetter, SupervisionDecision
from mister_smith.types import Restart

Log = list[tuple[Any, ...]]


class Worker(Actor):
    """A scriptable actor.

    Messages: ``"inc"`` counts and replies with the count (state that a restart resets);
    ``("sleep", s)`` sleeps ``s`` seconds and replies ``("slept", s)``; ``("crash", tag)``
    raises ``ValueError(tag)``; anything else is echoed. Every message seen by
    ``handle`` is logged with the time and this instance's id.
    """

    def __init__(self, log: Log | None = None) -> None:
        self.log: Log = [] if log is None else log
        self.count = 0

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.log.append(("handle", trio.current_time(), id(self), message))
        if message == "inc":
            self.count += 1
            return self.count
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
            return ("slept", message[1])
        if isinstance(message, tuple) and message[0] == "crash":
            raise ValueError(message[1])
        return message


def handled_messages(log: Log) -> list[Any]:
    return [entry[3] for entry in log if entry[0] == "handle"]


class TaskTracker(trio.abc.Instrument):
    """Tracks live tasks, to prove an operation leaves none behind."""

    def __init__(self) -> None:
        self.live: set[trio.lowlevel.Task] = set()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.live.add(task)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.live.discard(task)


@contextmanager
def tracking_tasks() -> Iterator[TaskTracker]:
    tracker = TaskTracker()
    trio.lowlevel.add_instrument(tracker)
    try:
        yield tracker
    finally:
        trio.lowlevel.remove_instrument(tracker)


def assert_balanced(ref: ActorRef) -> None:
    """Nothing lost: every accepted message was handled or dead-lettered."""
    stats = ref.statistics()
    assert stats.queued == 0
    assert stats.in_flight == 0
    assert stats.accepted == stats.handled + stats.dead_lettered, stats


# --- hooks and incarnations ---------------------------------------------------------------


class Hooked(Worker):
    """Logs every hook with the incarnation and the instance."""

    async def on_start(self, ctx: ActorContext) -> None:
        self.log.append(("start", ctx.incarnation, id(self), trio.current_time()))

    async def on_stop(self, ctx: ActorContext) -> None:
        self.log.append(("stop", ctx.incarnation, id(self), trio.current_time()))

    async def on_restart(self, ctx: ActorContext, error: BaseException | None) -> None:
        self.log.append(("restart", ctx.incarnation, id(self), error))


async def test_hooks_run_in_order_and_each_restart_builds_a_fresh_instance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Hooked, log, name="hooked")
        assert [entry[:2] for entry in log] == [("start", 1)]
        first = log[0][2]
        assert await ref.ask("inc") == 1
        assert await ref.ask("inc") == 2
        await trio.sleep(1)
        with pytest.raises(ActorCrashed) as crashed:
            await ref.ask(("crash", "boom"))
        error = crashed.value.__cause__
        assert isinstance(error, ValueError)
        assert str(error) == "boom"
        assert await ref.ask("inc") == 1  # state reset: a fresh instance
        await ref.stop()

    kinds = [entry[0] for entry in log if entry[0] != "handle"]
    assert kinds == ["start", "stop", "restart", "start", "stop"]
    hooks = [entry for entry in log if entry[0] != "handle"]
    assert hooks[0] == ("start", 1, first, 0.0)
    assert hooks[1] == ("stop", 1, first, 1.0)
    second = hooks[2][2]
    assert second != first
    assert hooks[2] == ("restart", 2, second, error)  # the very exception that crashed it
    assert hooks[2][3] is error
    assert hooks[3] == ("start", 2, second, 1.0)
    assert hooks[4] == ("stop", 2, second, 1.0)
    # Handled by the instance alive at the time: the last "inc" by the new one.
    assert [entry[2] for entry in log if entry[0] == "handle"] == [first, first, first, second]


async def test_context_gives_ref_name_system_events_and_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[ActorContext] = []

    class Introspective(Actor):
        async def on_start(self, ctx: ActorContext) -> None:
            seen.append(ctx)

        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            return (ctx.ref, ctx.name, ctx.system, ctx.events, ctx.incarnation)

    async with open_actor_system() as system:
        ref = await system.spawn(Introspective, name="me")
        assert await ref.ask("who") == (ref, "me", system, system.events, 1)
        assert seen[0].ref is ref


async def test_on_stop_awaits_are_shielded_up_to_the_shutdown_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[float] = []

    class SlowStop(Actor):
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            return message

        async def on_stop(self, ctx: ActorContext) -> None:
            await trio.sleep(self.seconds)
            finished.append(trio.current_time())

    async with open_actor_system() as system:
        quick = await system.spawn(SlowStop, 2.0, shutdown_timeout=5.0)
        await quick.stop()
        assert trio.current_time() == 2.0
        assert finished == [2.0]
        stuck = await system.spawn(SlowStop, 10.0, shutdown_timeout=1.0)
        await stuck.stop()
        assert trio.current_time() == 3.0  # cut off after its 1 s grace
        assert finished == [2.0]
        assert not stuck.is_alive


async def test_a_failing_on_stop_is_logged_and_the_actor_still_stops(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class BadStop(Worker):
        async def on_stop(self, ctx: ActorContext) -> None:
            raise RuntimeError("cleanup failed")

    async with open_actor_system() as system:
        ref = await system.spawn(BadStop, name="bad-stop")
        assert await ref.ask("inc") == 1
        with caplog.at_level(logging.ERROR, logger="mister_smith.actors"):
            await ref.stop()
        assert not ref.is_alive
        assert system.get("bad-stop") is None
    assert any("on_stop of actor bad-stop failed" in r.getMessage() for r in caplog.records)


async def test_default_handle_is_not_implemented(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Actor, name="bare")
        with pytest.raises(ActorCrashed) as crashed:
            await ref.ask("anything")
        assert isinstance(crashed.value.__cause__, NotImplementedError)


# --- tell, tell_nowait, backpressure --------------------------------------------------------


async def test_tell_delivers_in_order(autojump_clock: trio.testing.MockClock) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log)
        for n in range(5):
            await ref.tell(n)
        assert await ref.ask("last") == "last"
    assert handled_messages(log) == [0, 1, 2, 3, 4, "last"]
    assert_balanced(ref)


async def test_tell_always_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        with trio.testing.assert_checkpoints():
            await ref.tell("x")  # fast path, room in the mailbox
        await ref.tell(("sleep", 1))
        with trio.testing.assert_checkpoints():
            await ref.tell("x")
        # Like trio's own channels, refusing (raising) is allowed without a schedule point.


async def test_tell_nowait_raises_mailbox_full_and_does_not_accept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, mailbox_capacity=2)
        ref.tell_nowait(("sleep", 5))
        await trio.sleep(0)  # the actor takes it and sleeps
        ref.tell_nowait("a")
        ref.tell_nowait("b")
        assert ref.mailbox_statistics().queued == 2
        with pytest.raises(MailboxFull, match="full \\(2 messages\\)") as full:
            ref.tell_nowait("refused")
        assert isinstance(full.value, ActorError)
        assert ref.statistics().accepted == 3
        await trio.sleep(5.5)
        ref.tell_nowait("c")  # room again
        assert await ref.ask("sync") == "sync"
    assert handled_messages(log) == [("sleep", 5), "a", "b", "c", "sync"]
    assert ref.statistics().accepted == 5
    assert_balanced(ref)


async def test_tell_blocks_while_the_mailbox_is_full_and_resumes_as_it_drains(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    returned: list[tuple[int, float]] = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, mailbox_capacity=2)
        for n in range(5):
            await ref.tell(("sleep", 1))
            returned.append((n, trio.current_time()))
            if n == 2:
                # Actor busy with message 0, messages 1 and 2 queued: full.
                stats = ref.mailbox_statistics()
                assert (stats.queued, stats.in_flight, stats.capacity) == (2, 1, 2)
        assert await ref.ask("done") == "done"
        assert trio.current_time() == 5.0
    # Message 3 waits until the actor takes message 1 (t=1), message 4 until t=2.
    assert returned == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 1.0), (4, 2.0)]
    starts = [entry[1] for entry in log if entry[0] == "handle"]
    assert starts == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert_balanced(ref)


async def test_a_tell_cancelled_while_blocked_is_not_accepted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, mailbox_capacity=1)
        await ref.tell(("sleep", 3))
        await ref.tell("queued")
        with trio.move_on_after(1) as scope:
            await ref.tell("cancelled")
        assert scope.cancelled_caught
        assert trio.current_time() == 1.0
        assert ref.statistics().accepted == 2
        await ref.ask("after")
    assert "cancelled" not in handled_messages(log)
    assert ref.statistics().accepted == 3
    assert_balanced(ref)


# --- ask ---------------------------------------------------------------------------------


async def test_ask_returns_the_handler_reply(autojump_clock: trio.testing.MockClock) -> None:
    class Replies(Actor):
        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            return None if message == "nothing" else {"echo": message}

    async with open_actor_system() as system:
        ref = await system.spawn(Replies)
        assert await ref.ask("hi") == {"echo": "hi"}
        assert await ref.ask("nothing") is None
        assert await ref.ask("inf", timeout=math.inf) == {"echo": "inf"}
        assert trio.current_time() == 0.0


async def test_ask_timeout_is_exact_a_timeout_error_and_leaves_no_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, name="sleepy")
        with tracking_tasks() as tracker:
            await trio.sleep(0)
            before = set(tracker.live)
            with pytest.raises(AskTimeout, match=r"sleepy.*within 3 s") as timed_out:
                await ref.ask(("sleep", 10), timeout=3)
            assert trio.current_time() == 3.0
            assert tracker.live == before  # no task was left waiting for the reply
        assert isinstance(timed_out.value, TimeoutError)
        assert isinstance(timed_out.value, ActorError)
        # The message was accepted: it is still handled (the reply is dropped).
        assert ref.statistics().in_flight == 1
        assert await ref.ask("next") == "next"
        assert trio.current_time() == 10.0
    assert handled_messages(log) == [("sleep", 10), "next"]
    assert_balanced(ref)


async def test_ask_uses_the_system_default_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system(ask_timeout=7.0) as system:
        ref = await system.spawn(Worker)
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 100))
        assert trio.current_time() == 7.0


async def test_ask_deadline_covers_waiting_for_mailbox_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, mailbox_capacity=1)
        await ref.tell(("sleep", 10))
        await ref.tell("queued")
        with pytest.raises(AskTimeout):
            await ref.ask("never sent", timeout=4)
        assert trio.current_time() == 4.0
        assert ref.statistics().accepted == 2  # refused at send time: not accepted
    assert "never sent" not in handled_messages(log)
    assert_balanced(ref)


async def test_ask_deadline_covers_queueing_and_reply_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, mailbox_capacity=1)
        await ref.tell(("sleep", 2))  # handled 0..2
        await ref.tell(("sleep", 2))  # queued, handled 2..4
        # Room at t=2, its turn at t=4, reply at t=6: past the 5 s deadline.
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 2), timeout=5)
        assert trio.current_time() == 5.0
        # Accepted at once (the actor is on the timed-out ask until t=6), reply at t=8.
        assert await ref.ask(("sleep", 2), timeout=5) == ("slept", 2)
        assert trio.current_time() == 8.0


@pytest.mark.parametrize("timeout", [-1.0, math.nan])
async def test_ask_rejects_a_nonsense_timeout(
    autojump_clock: trio.testing.MockClock, timeout: float
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        with pytest.raises(ValueError, match="timeout"):
            await ref.ask("x", timeout=timeout)
        assert ref.statistics().accepted == 0


async def test_ask_with_zero_timeout_fails_at_once_without_sending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        with pytest.raises(AskTimeout):
            await ref.ask("x", timeout=0)
        assert trio.current_time() == 0.0
        assert ref.statistics().accepted == 0


async def test_ask_fails_fast_with_actor_crashed_and_the_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class CrashLater(Actor):
        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            await trio.sleep(1)
            raise KeyError(message)

    async with open_actor_system() as system:
        ref = await system.spawn(CrashLater, name="crasher")
        with pytest.raises(ActorCrashed, match="crasher") as crashed:
            await ref.ask("k", timeout=60)
        assert trio.current_time() == 1.0  # not the 60 s timeout
        assert isinstance(crashed.value.__cause__, KeyError)
        assert crashed.value.__cause__.args == ("k",)
        assert not isinstance(crashed.value, TimeoutError)


async def test_ask_fails_fast_with_actor_stopped_when_stopped_while_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcomes: dict[str, tuple[str, float]] = {}

    async def ask(ref: ActorRef, message: Any, key: str) -> None:
        try:
            await ref.ask(message, timeout=60)
        except ActorStopped:
            outcomes[key] = ("stopped", trio.current_time())

    async with open_actor_system() as system:
        ref = await system.spawn(Worker, name="w")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, ref, ("sleep", 10), "in flight")
            await trio.sleep(0)
            nursery.start_soon(ask, ref, "x", "queued")
            await trio.sleep(2)
            assert ref.statistics().queued == 1
            await ref.stop()
        assert outcomes == {"in flight": ("stopped", 2.0), "queued": ("stopped", 2.0)}
        reasons = sorted(record.reason for record in system.dead_letters())
        assert reasons == ["actor stopped", "stopped while handling it"]
    assert_balanced(ref)


async def test_asks_queued_behind_the_crash_of_a_temporary_actor_fail_fast(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcomes: dict[str, tuple[type[BaseException], float]] = {}

    async def ask(ref: ActorRef, message: Any) -> None:
        try:
            await ref.ask(message, timeout=60)
        except (ActorCrashed, ActorStopped) as exc:
            outcomes[str(message)] = (type(exc), trio.current_time())

    async with open_actor_system() as system:
        ref = await system.spawn(Worker, restart=Restart.TEMPORARY)
        await ref.tell(("sleep", 1))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, ref, ("crash", "x"))
            await trio.sleep(0)
            nursery.start_soon(ask, ref, "behind")
        assert not ref.is_alive
    assert outcomes == {"('crash', 'x')": (ActorCrashed, 1.0), "behind": (ActorStopped, 1.0)}
    assert_balanced(ref)


# --- restarts and dead letters --------------------------------------------------------------


async def test_messages_queued_before_a_crash_go_to_the_new_instance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log)
        assert await ref.ask("inc") == 1
        await ref.tell(("crash", "poison"))
        await ref.tell("inc")
        await ref.tell("inc")
        assert await ref.ask("inc") == 3  # counted afresh by the new instance
        assert ref.statistics().restarts == 1
    instances = [entry[2] for entry in log]
    assert instances[0] == instances[1] != instances[2]
    assert len(set(instances[2:])) == 1
    assert handled_messages(log) == ["inc", ("crash", "poison"), "inc", "inc", "inc"]
    assert_balanced(ref)


async def test_messages_sent_while_restarting_are_delivered_after_the_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        # A handler timeout is retried in place after 0.1 s: a window to send into.
        ref = await system.spawn(Worker, log, handler_timeout=1.0)
        await ref.tell(("sleep", 5))
        await trio.sleep(1.05)
        assert ref.statistics().status is ActorStatus.RESTARTING
        for _ in range(3):
            await ref.tell("inc")
        assert ref.statistics().queued == 3
        assert await ref.ask("inc") == 4
        assert trio.current_time() == pytest.approx(1.1)
    assert [entry[1] for entry in log[1:]] == [pytest.approx(1.1)] * 4
    assert_balanced(ref)


async def test_the_crashing_message_is_a_dead_letter_and_never_redelivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        async with system.events.subscribe(DeadLetter) as letters:
            ref = await system.spawn(Worker, log, name="victim")
            await trio.sleep(2)
            await ref.tell(("crash", "poison"))
            assert await ref.ask("inc") == 1
            letter = letters.receive_nowait()
            with pytest.raises(trio.WouldBlock):
                letters.receive_nowait()
        assert letter.actor == "victim"
        assert letter.message == ("crash", "poison")
        assert letter.reason == "crashed while handling it: ValueError('poison')"
        records = system.dead_letters()
        assert len(records) == 1
        assert records[0].actor == "victim"
        assert records[0].message == ("crash", "poison")
        assert records[0].reason == letter.reason
        assert records[0].timestamp == 2.0
        await trio.sleep(10)
    assert handled_messages(log).count(("crash", "poison")) == 1
    stats = ref.statistics()
    assert (stats.failed, stats.dead_lettered, stats.handled) == (1, 1, 1)
    assert_balanced(ref)


async def test_an_ask_dead_letter_records_the_payload_not_the_envelope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        with pytest.raises(ActorCrashed):
            await ref.ask(("crash", "asked"))
        assert [record.message for record in system.dead_letters()] == [("crash", "asked")]


async def test_handler_timeout_is_a_failure_with_handler_timeout_as_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, name="deadline", handler_timeout=2.5)
        assert await ref.ask(("sleep", 2)) == ("slept", 2)  # within the deadline
        with pytest.raises(ActorCrashed) as crashed:
            await ref.ask(("sleep", 60))
        assert trio.current_time() == 4.5
        cause = crashed.value.__cause__
        assert isinstance(cause, HandlerTimeout)
        assert isinstance(cause, TimeoutError)
        assert "2.5 s" in str(cause)
        assert await ref.ask("inc") == 1
        stats = ref.statistics()
        assert (stats.handled, stats.failed, stats.dead_lettered, stats.restarts) == (2, 1, 1, 1)
        decisions = system.events.history(SupervisionDecision)
        assert [(d.child, d.error_type, d.action) for d in decisions] == [
            ("deadline", "HandlerTimeout", RecoveryAction.RETRY)
        ]
    assert system.dead_letters()[0].reason.startswith("crashed while handling it: HandlerTimeout")
    assert_balanced(ref)


# --- statistics ----------------------------------------------------------------------------


async def test_statistics_follow_the_actor_through_its_life(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system(mailbox_capacity=4) as system:
        ref = await system.spawn(Worker, name="stats")
        stats = ref.statistics()
        assert (stats.name, stats.status, stats.capacity) == ("stats", ActorStatus.IDLE, 4)
        assert (stats.accepted, stats.handled, stats.failed, stats.restarts) == (0, 0, 0, 0)
        await ref.tell(("sleep", 1))
        await ref.tell("a")
        await ref.tell("b")
        stats = ref.statistics()
        assert stats.status is ActorStatus.BUSY
        assert (stats.queued, stats.in_flight, stats.load, stats.accepted) == (2, 1, 3, 3)
        mailbox = ref.mailbox_statistics()
        assert (mailbox.capacity, mailbox.queued, mailbox.accepted, mailbox.in_flight) == (
            4,
            2,
            3,
            1,
        )
        await ref.tell(("crash", "x"))
        await trio.sleep(1.5)
        stats = ref.statistics()
        assert stats.status is ActorStatus.IDLE
        assert (stats.accepted, stats.handled, stats.failed, stats.dead_lettered) == (4, 3, 1, 1)
        assert (stats.restarts, stats.load) == (1, 0)
        mailbox = ref.mailbox_statistics()
        assert (mailbox.handled, mailbox.dead_lettered, mailbox.queued) == (3, 1, 0)
        await ref.stop()
        assert ref.statistics().status is ActorStatus.STOPPED
        assert ref.statistics().restarts == 1


async def test_accepted_equals_handled_plus_dead_lettered_after_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system(mailbox_capacity=10) as system:
        ref = await system.spawn(Worker)
        await ref.tell("inc")
        await ref.tell(("crash", "x"))
        await ref.tell(("sleep", 5))
        for _ in range(4):
            ref.tell_nowait("inc")
        await trio.sleep(1)
        await ref.stop()
        stats = ref.statistics()
        # inc handled; crash dead; sleep in flight when stopped; 4 queued: all dead.
        assert (stats.accepted, stats.handled, stats.dead_lettered) == (7, 1, 6)
        assert_balanced(ref)
        total = system.statistics()
        assert (total.accepted, total.handled, total.dead_lettered) == (7, 1, 6)


async def test_accepted_equals_handled_plus_dead_lettered_after_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        refs = [await system.spawn(Worker) for _ in range(3)]
        for n, ref in enumerate(refs):
            await ref.tell(("sleep", n + 1))
            for _ in range(n):
                await ref.tell("inc")
        await trio.sleep(1.5)
    for ref in refs:
        assert_balanced(ref)
    total = system.statistics()
    assert total.accepted == 6
    assert total.accepted == total.handled + total.dead_lettered
    assert total.handled == 1
    assert len(system.dead_letters()) == 5


# --- stopped actors ------------------------------------------------------------------------


async def test_sending_to_a_stopped_actor_raises_actor_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, name="gone")
        alive_before = ref.is_alive
        await ref.stop()
        assert (alive_before, ref.is_alive) == (True, False)
        with pytest.raises(ActorStopped, match="'gone' is stopped"):
            await ref.tell("x")
        with pytest.raises(ActorStopped):
            ref.tell_nowait("x")
        with pytest.raises(ActorStopped):
            await ref.ask("x")
        await ref.stop()  # idempotent
        await ref.wait_stopped()
        assert ref.statistics().accepted == 0


async def test_a_tell_blocked_on_a_full_mailbox_is_refused_when_the_actor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []

    async def blocked_tell(ref: ActorRef) -> None:
        try:
            await ref.tell("late")
            outcome.append("accepted")
        except ActorStopped:
            outcome.append("refused")

    async with open_actor_system() as system:
        ref = await system.spawn(Worker, mailbox_capacity=1)
        await ref.tell(("sleep", 10))
        await ref.tell("queued")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_tell, ref)
            await trio.sleep(1)
            await ref.stop()
    # Either way the message is accounted for; the actor itself stays balanced.
    assert outcome in (["accepted"], ["refused"])
    assert_balanced(ref)


# --- refs ----------------------------------------------------------------------------------


async def test_refs_are_hashable_printable_and_equal_across_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(
            Worker, name="alice", role="researcher", capabilities=["search", "read"]
        )
        other = await system.spawn(Worker, name="bob")
        actor_id = ref.actor_id
        assert str(ref) == "alice"
        assert repr(ref) == f"<ActorRef alice {actor_id}>"
        assert (ref.name, ref.role, ref.capabilities) == (
            "alice",
            "researcher",
            frozenset({"search", "read"}),
        )
        table = {ref: "a", other: "b"}
        with pytest.raises(ActorCrashed):
            await ref.ask(("crash", "restart me"))
        again = system.lookup("alice")
        assert again == ref
        assert again is ref
        assert hash(again) == hash(ref)
        assert again.actor_id == actor_id
        assert table[again] == "a"
        assert ref != other
        assert ref != "alice"
        assert len({ref, again, other}) == 2
        assert await ref.ask("inc") == 1  # the same ref reaches the new incarnation


async def test_refs_of_different_systems_are_not_interchangeable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as first, open_actor_system() as second:
        ref = await first.spawn(Worker, name="same")
        twin = await second.spawn(Worker, name="same")
        assert ref != twin
        with pytest.raises(ValueError, match="another actor system"):
            await second.stop(ref)
        assert ref.is_alive


# --- middleware ----------------------------------------------------------------------------


class Tagging:
    """Middleware logging its name on the way in and out."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def run(self, message: Any, ctx: ActorContext, handler: Any) -> Any:
        self.log.append(f"{self.name}>{message}")
        result = await handler(message, ctx)
        self.log.append(f"{self.name}<{result}")
        return result


class Reject:
    async def run(self, message: Any, ctx: ActorContext, handler: Any) -> Any:
        if message == "forbidden":
            raise PermissionError("rejected by middleware")
        return await handler(message, ctx)


class Upper:
    async def run(self, message: Any, ctx: ActorContext, handler: Any) -> Any:
        return str(await handler(message, ctx)).upper()


async def test_middleware_wraps_handle_system_layers_outermost_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[str] = []

    class Logs(Actor):
        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            calls.append(f"handle {message}")
            return f"r-{message}"

    outer, inner = Tagging("A", calls), Tagging("B", calls)
    async with open_actor_system(middleware=[outer, inner]) as system:
        ref = await system.spawn(Logs, middleware=[Tagging("C", calls)])
        assert await ref.ask("m") == "r-m"  # the ask payload, not its envelope
        await ref.tell("t")
        await ref.ask("sync")
    assert calls[:7] == ["A>m", "B>m", "C>m", "handle m", "C<r-m", "B<r-m", "A<r-m"]
    assert calls[7:14] == ["A>t", "B>t", "C>t", "handle t", "C<r-t", "B<r-t", "A<r-t"]


async def test_middleware_can_change_the_reply_or_reject_the_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, middleware=[Reject(), Upper()])
        assert await ref.ask("hello") == "HELLO"
        with pytest.raises(ActorCrashed) as crashed:
            await ref.ask("forbidden")
        assert isinstance(crashed.value.__cause__, PermissionError)
        stats = ref.statistics()
        assert (stats.handled, stats.failed, stats.dead_lettered, stats.restarts) == (1, 1, 1, 1)
    assert handled_messages(log) == ["hello"]  # the rejected one never reached handle


class Gate:
    """Refuses ``"blocked"`` with MessageRejected, the polite way to say no."""

    async def run(self, message: Any, ctx: ActorContext, handler: Any) -> Any:
        if message == "blocked":
            raise MessageRejected("not allowed here")
        return await handler(message, ctx)


async def test_a_message_rejected_by_middleware_is_a_dead_letter_not_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, log, name="gated", middleware=[Gate()])
        assert await ref.ask("inc") == 1
        with pytest.raises(MessageRejected, match="not allowed here"):
            await ref.ask("blocked")
        await ref.tell("blocked")
        assert await ref.ask("inc") == 2  # same instance: no restart
        stats = ref.statistics()
        assert (stats.handled, stats.failed, stats.dead_lettered, stats.restarts) == (2, 0, 2, 0)
        assert [r.reason for r in system.dead_letters()] == ["rejected: not allowed here"] * 2
        assert system.events.history(SupervisionDecision) == []
    assert handled_messages(log) == ["inc", "inc"]
    assert_balanced(ref)


async def test_load_is_queued_plus_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        assert ref.load == 0
        await ref.tell(("sleep", 1))
        await trio.sleep(0.5)
        assert ref.load == 1
        await ref.tell("a")
        await ref.tell("b")
        assert ref.load == ref.statistics().load == 3
        await trio.sleep(1)
        assert ref.load == 0


async def test_mailbox_counts_balance_at_all_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker)
        ref.tell_nowait(("sleep", 1))
        stats = ref.mailbox_statistics()
        assert (
            stats.accepted == stats.handled + stats.dead_lettered + stats.queued + stats.in_flight
        )
        assert ref.load == 1


async def test_actor_system_can_be_built_directly_on_a_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from mister_smith.events import EventBus
    from mister_smith.supervision import open_supervisor

    bus = EventBus()
    async with open_supervisor("root", events=bus, keep_alive=True) as supervisor:
        system = ActorSystem(supervisor, bus, mailbox_capacity=3, ask_timeout=2.0)
        ref = await system.spawn(Worker)
        assert ref.statistics().capacity == 3
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 5))
        assert trio.current_time() == 2.0
        await system.shutdown()
    assert not ref.is_alive
    assert_balanced(ref)


class StatisticsSampler(trio.abc.Instrument):
    """Reads an actor's statistics before every task step while it lives."""

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref
        self.in_flight: set[int] = set()
        self.loads: set[int] = set()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.ref.is_alive:
            self.in_flight.add(self.ref.statistics().in_flight)
            self.loads.add(self.ref.load)


async def test_in_flight_is_never_negative_while_blocked_senders_drain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Worker, mailbox_capacity=1)
        sampler = StatisticsSampler(ref)
        trio.lowlevel.add_instrument(sampler)
        try:
            await ref.tell(("sleep", 1))
            await ref.tell("queued")
            async with trio.open_nursery() as nursery:
                for n in range(20):
                    nursery.start_soon(ref.tell, n)
            assert await ref.ask("sync") == "sync"
        finally:
            trio.lowlevel.remove_instrument(sampler)
    assert_balanced(ref)
    assert min(sampler.in_flight) >= 0, sorted(sampler.in_flight)
    assert max(sampler.in_flight) <= 1


async def test_an_actor_being_stopped_reports_stopping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class SlowStop(Worker):
        async def on_stop(self, ctx: ActorContext) -> None:
            await trio.sleep(2)

    async with open_actor_system() as system:
        ref = await system.spawn(SlowStop)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.stop)
            await trio.sleep(1)
            status = ref.statistics().status
        assert ref.statistics().status is ActorStatus.STOPPED
        assert status is ActorStatus.STOPPING
