"""The MessageBus's routing fast path as a hypothesis state machine.

Members join, leave and die (stop accepting) in any order while their mailboxes accept
and finish messages; after each step a routed message must go to a live member of the
group, and a load-balanced or capability-routed one to a member with the smallest load
among those that qualify: never a busier member while an idler exists, whatever the
cached member sets and load indexes have been through. The bus's counters must account
for every routing attempt, and closing the bus must leave no watcher on any mailbox.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mister_smith.actors import ActorRef, Mailbox
from mister_smith.errors import NoRouteError
from mister_smith.transport import MessageBus, Routed

CAPABILITIES = ("python", "sql")


class _Options:
    def __init__(self, capabilities: frozenset[str]) -> None:
        self.capabilities = capabilities


class _Cell:
    """Just what the bus and its indexes read of an actor's cell."""

    def __init__(self, name: str, capabilities: frozenset[str]) -> None:
        self.name = name
        self.mailbox = Mailbox(1_000)
        self.options = _Options(capabilities)
        self.closed = False


def _ref(cell: _Cell) -> ActorRef:
    return ActorRef(cast(Any, cell))


def _cell(ref: ActorRef) -> _Cell:
    return cast(_Cell, ref._cell)


class RoutingMachine(RuleBasedStateMachine):
    @initialize(
        capabilities=st.lists(st.frozensets(st.sampled_from(CAPABILITIES)), min_size=1, max_size=4)
    )
    def create_group(self, capabilities: list[frozenset[str]]) -> None:
        self.bus = MessageBus()
        self.all: list[ActorRef] = []
        self.group: list[ActorRef] = []
        self.routed = 0
        self.refused = 0
        for caps in capabilities:
            self.new_member(caps)

    def new_member(self, capabilities: frozenset[str]) -> None:
        ref = _ref(_Cell(f"m{len(self.all)}", capabilities))
        self.all.append(ref)
        self.group.append(ref)
        self.bus.join("team", ref)

    def pick(self, data: st.DataObject, refs: list[ActorRef]) -> ActorRef:
        return data.draw(st.sampled_from(refs))

    # -- membership ----------------------------------------------------------------------

    @rule(capabilities=st.frozensets(st.sampled_from(CAPABILITIES)))
    def join(self, capabilities: frozenset[str]) -> None:
        self.new_member(capabilities)

    @precondition(lambda self: self.group)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        ref = self.pick(data, self.group)
        self.bus.leave("team", ref)
        self.group.remove(ref)

    @precondition(lambda self: self.group)
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        # Stopped without the bus hearing of it: routing finds out by itself.
        _cell(self.pick(data, self.group)).closed = True

    # -- loads ---------------------------------------------------------------------------

    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        mailbox = _cell(self.pick(data, self.all)).mailbox
        mailbox.send.send_nowait("m")
        mailbox.accepted_now()

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        mailbox = _cell(self.pick(data, self.all)).mailbox
        if mailbox.raw_load() > 0:
            mailbox.receive.receive_nowait()
            if data.draw(st.booleans()):
                mailbox.handled_one()
            else:
                mailbox.dead_lettered_one()

    # -- routing -------------------------------------------------------------------------

    def live(self) -> list[ActorRef]:
        return [ref for ref in self.group if not _cell(ref).closed]

    def check_least_loaded(self, message: Any, strategy: str | None, among: list[ActorRef]) -> None:
        if not among:
            with pytest.raises(NoRouteError):
                self.bus.route("team", message, strategy=strategy)
            self.refused += 1
            return
        chosen = self.bus.route("team", message, strategy=strategy)
        self.routed += 1
        assert chosen in among
        assert chosen.load == min(ref.load for ref in among)

    @rule(auto=st.booleans())
    def route_load_balanced(self, auto: bool) -> None:
        strategy = None if auto else "load_balanced"
        self.check_least_loaded("work", strategy, self.live())

    @rule(required=st.frozensets(st.sampled_from(CAPABILITIES), min_size=1), auto=st.booleans())
    def route_capability(self, required: frozenset[str], auto: bool) -> None:
        capable = [ref for ref in self.live() if required <= ref.capabilities]
        strategy = None if auto else "capability"
        self.check_least_loaded(Routed("work", requires=required), strategy, capable)

    @rule()
    def route_round_robin(self) -> None:
        live = self.live()
        if not live:
            with pytest.raises(NoRouteError):
                self.bus.route("team", "work", strategy="round_robin")
            self.refused += 1
            return
        assert self.bus.route("team", "work", strategy="round_robin") in live
        self.routed += 1

    @invariant()
    def least_loaded_after_every_step(self) -> None:
        # Routing after every step (not only when a rule happens to) catches an index
        # that went wrong one step earlier, before later steps can hide it.
        self.check_least_loaded("work", "load_balanced", self.live())
        stats = self.bus.statistics()
        assert stats.routed == self.routed
        assert stats.no_route == self.refused

    def teardown(self) -> None:
        self.bus.close()
        for ref in self.all:
            assert _cell(ref).mailbox._watchers is None  # closed: nothing left behind


TestRouting = RoutingMachine.TestCase
