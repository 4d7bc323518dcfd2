"""The exact least-loaded index (transport ``LoadIndex``) as a hypothesis state machine.

Members' mailboxes accept, handle and dead-letter messages in any order (loads move by
one step each time, and may dip below zero for a moment, as a sender blocked on a full
mailbox counts its message only when it resumes); after every step the index's choice
must be a member with the smallest load — never a busier one while an idler exists —
and its view of every load must match the mailboxes'.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

import trio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mister_smith.actors import ActorRef, Mailbox
from mister_smith.transport import Members


class _Cell:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mailbox = Mailbox(1_000)
        self.capabilities: frozenset[str] = frozenset()


class _Ref:
    """Just what the index reads of an ActorRef."""

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell
        self.name = cell.name


class LoadIndexMachine(RuleBasedStateMachine):
    @initialize(count=st.integers(min_value=1, max_value=8))
    def create_members(self, count: int) -> None:
        self.refs = [_Ref(_Cell(f"m{n}")) for n in range(count)]
        self.group = Members(cast(list[ActorRef], self.refs))
        self.group.least_loaded()  # build the index now: it must follow from here

    def mailbox(self, data: st.DataObject) -> Mailbox:
        ref = data.draw(st.sampled_from(self.refs))
        return ref._cell.mailbox

    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        mailbox = self.mailbox(data)
        mailbox.send.send_nowait("m")
        mailbox.accepted_now()

    @rule(data=st.data())
    def accept_late(self, data: st.DataObject) -> None:
        self.mailbox(data).accepted_late()

    @rule(data=st.data())
    def handle(self, data: st.DataObject) -> None:
        mailbox = self.mailbox(data)
        # Nothing queued: one a late sender had already moved in (the load dips a moment).
        with contextlib.suppress(trio.WouldBlock):
            mailbox.receive.receive_nowait()
        mailbox.handled_one()

    @rule(data=st.data())
    def dead_letter(self, data: st.DataObject) -> None:
        self.mailbox(data).dead_lettered_one()

    @invariant()
    def least_is_exact(self) -> None:
        chosen = cast(Any, self.group.least_loaded())
        loads = {ref.name: ref._cell.mailbox.raw_load() for ref in self.refs}
        assert loads[chosen.name] == min(loads.values())
        index = self.group._index
        assert index is not None
        for ref in self.refs:
            assert index.load(cast(ActorRef, ref)) == loads[ref.name]
        # Only loads some member has are kept: memory follows the members, not the
        # highest load ever reached.
        assert all(index._buckets.values())
        assert set(index._buckets) == set(loads.values())

    def teardown(self) -> None:
        self.group.close()
        for ref in self.refs:
            assert ref._cell.mailbox._watchers is None  # closed: nothing left behind


TestLoadIndex = LoadIndexMachine.TestCase
