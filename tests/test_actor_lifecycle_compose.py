"""The actor fast paths composed under ``RuntimeManager.open()`` defaults, attacked with
churn: actors with and without lifecycle hooks of their own, with children, watched by
routing (so each count also moves routing's load index), carrying traces, crashing, and stopped
while their mailboxes hold messages.

Whatever each one skipped, at the end every message is accounted for
(``accepted == handled + dead_lettered``), every ``on_stop`` of its own ran once per
incarnation, children went with their parents, routing left no watcher behind, no
trace leaked into a handler that was sent none, and every identity was revoked.
"""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mister_smith.actors import Actor, ActorContext, ActorRef
from mister_smith.runtime import RuntimeManager
from mister_smith.transport import MessageBus
from mister_smith.types import TRACEPARENT

TRACE = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"


def _trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


class Journal:
    def __init__(self) -> None:
        self.stops: dict[str, int] = {}
        self.starts: dict[str, int] = {}
        self.traces: list[tuple[Any, str | None]] = []


class Plain(Actor):
    """No hook of its own: every one is skipped."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.journal.traces.append((message, TRACEPARENT.get()))
        if message == "crash":
            raise RuntimeError("asked to crash")
        if message == "slow":
            await trio.sleep(1)
        return message


class Hooked(Plain):
    async def on_start(self, ctx: ActorContext) -> None:
        name = ctx.ref.name
        self.journal.starts[name] = self.journal.starts.get(name, 0) + 1

    async def on_stop(self, ctx: ActorContext) -> None:
        await trio.sleep(0)  # an await in the grace scope
        name = ctx.ref.name
        self.journal.stops[name] = self.journal.stops.get(name, 0) + 1


class Parent(Plain):
    """No hooks of its own, but a child: its stop must still take the child down."""

    async def on_start(self, ctx: ActorContext) -> None:
        await ctx.spawn(Plain, self.journal)


_kinds = st.lists(st.sampled_from(["plain", "hooked", "parent"]), min_size=3, max_size=12)
_messages = st.lists(
    st.tuples(st.integers(0, 11), st.sampled_from(["hi", "crash", "slow", "traced"])),
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(kinds=_kinds, messages=_messages, stop_mask=st.integers(0, 2**12 - 1))
def test_churn_keeps_every_promise(kinds: list[str], messages: list[Any], stop_mask: int) -> None:
    trio.run(_churn, kinds, messages, stop_mask, clock=trio.testing.MockClock(autojump_threshold=0))


async def _churn(kinds: list[str], messages: list[tuple[int, str]], stop_mask: int) -> None:
    journal = Journal()
    factories = {"plain": Plain, "hooked": Hooked, "parent": Parent}
    async with RuntimeManager.open() as runtime:
        system = runtime.actor_system
        refs: list[ActorRef] = [await system.spawn(factories[k], journal) for k in kinds]
        identities = [ref._cell.identity for ref in refs]
        bus = MessageBus()
        bus.join("watched", *refs[::2])  # half of them count through watchers
        bus.route("watched", "x", strategy="load_balanced")  # builds the exact load index
        async with trio.open_nursery() as nursery:
            for index, text in messages:
                ref = refs[index % len(refs)]
                if text == "traced":
                    token = TRACEPARENT.set(TRACE)
                    try:
                        await ref.tell(("traced", index))
                    finally:
                        TRACEPARENT.reset(token)
                elif not ref._cell.closed:  # (a crash loop may have ended it for good)
                    ref.tell_nowait(text)
            await trio.testing.wait_all_tasks_blocked()
            # Watched or not, every count reaches the index: it follows every mailbox.
            members = bus._alive["watched"]
            assert members._index is not None
            for ref in members:
                assert members._index.load(ref) == ref._cell.mailbox.raw_load(), ref
            for position, ref in enumerate(refs):
                if stop_mask >> position & 1:
                    nursery.start_soon(ref.stop)  # stopped with messages still queued
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(5)  # every slow handler and restart backoff is over
        bus.close()
        for ref in refs:
            assert ref._cell.mailbox._watchers is None
        # A handler runs in the span of its message (the runtime's tracing middleware
        # opens one when OpenTelemetry is installed): a traced message's span is in the
        # sender's trace, any other's never is (nothing leaks from the message before).
        for message, trace in journal.traces:
            in_senders_trace = trace is not None and _trace_id(trace) == _trace_id(TRACE)
            assert in_senders_trace == isinstance(message, tuple), (message, trace)
        for ref in refs:
            await ref.stop()
        statistics = system.statistics()
        assert statistics.accepted == statistics.handled + statistics.dead_lettered
        for ref, kind, identity in zip(refs, kinds, identities, strict=True):
            if kind == "hooked":
                # One on_stop per incarnation that started (crashes restart it).
                assert journal.stops.get(ref.name, 0) == journal.starts.get(ref.name, 0) >= 1
            assert not system.identities.is_live(identity)
        live = {r.name for r in system.actors()}
        assert not any(name.startswith(tuple(r.name for r in refs)) for name in live), live
