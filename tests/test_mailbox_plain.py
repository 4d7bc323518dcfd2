"""``Mailbox.plain``: the message loop counts a handled message inline only while the
mailbox is neither watched (routing's load index) nor folded into the system totals."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mister_smith.actors import Mailbox
from mister_smith.actors._mailbox import Totals


class PlainMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mailbox = Mailbox(8)
        self.totals = Totals()
        self.watchers: list[list[int]] = []
        self.folded = False

    @rule()
    def watch(self) -> None:
        seen: list[int] = []
        self.watchers.append(seen)
        self.mailbox.watch(seen.append)

    @rule(data=st.data())
    def unwatch(self, data: st.DataObject) -> None:
        if self.watchers:
            index = data.draw(st.integers(0, len(self.watchers) - 1))
            seen = self.watchers.pop(index)  # (by position: empty lists compare equal)
            self.mailbox.unwatch(seen.append)

    @rule()
    def fold(self) -> None:
        self.mailbox.fold_into(self.totals)
        self.folded = True

    @rule()
    def handle_as_the_loop_does(self) -> None:
        mailbox = self.mailbox
        before = self.totals.handled
        if mailbox.plain:
            mailbox.handled += 1
        else:
            mailbox.handled_one()
        # Whichever way it was counted, watchers and totals saw it.
        for seen in self.watchers:
            assert seen[-1] == -1
        assert self.totals.handled == before + (1 if self.folded else 0)

    @invariant()
    def plain_means_unwatched_and_open(self) -> None:
        assert self.mailbox.plain == (not self.watchers and not self.folded)


TestPlain = PlainMachine.TestCase
