"""The mailbox: an actor's bounded channel and the counters that account for every message.

One invariant lives here, for each actor and for the system's totals::

    accepted == handled + dead_lettered + queued + in_flight

``accepted`` counts messages ``tell``/``ask`` handed over (and, for a durable mailbox,
the ones replayed from its store at spawn, which ``replayed`` counts too); each ends
``handled`` (the handler returned, or raised — then ``failed`` counts it too, and it is also
dead-lettered) or ``dead_lettered`` (crashed on it, refused by middleware, or left in the
mailbox when the actor was gone). When a mailbox is closed its counters are folded into
the system's :class:`Totals`; a count made after that (a sender woken by the final drain,
a message that finished while its actor was being stopped) goes to both, so the totals
stay exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio


@attrs.frozen
class MailboxStatistics:
    """Counters of an actor's mailbox.

    ``accepted == handled + dead_lettered + queued + in_flight`` at all times.
    """

    capacity: int
    queued: int
    accepted: int
    handled: int
    dead_lettered: int
    in_flight: int


@attrs.frozen
class Counters:
    """Message counters (an actor's, or the system's totals)."""

    accepted: int = 0
    handled: int = 0
    failed: int = 0
    dead_lettered: int = 0
    replayed: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.accepted + other.accepted,
            self.handled + other.handled,
            self.failed + other.failed,
            self.dead_lettered + other.dead_lettered,
            self.replayed + other.replayed,
        )


class Totals:
    """The running counters closed mailboxes fold into (the system's)."""

    __slots__ = ("accepted", "dead_lettered", "failed", "handled", "replayed")

    def __init__(self) -> None:
        self.accepted = 0
        self.handled = 0
        self.failed = 0
        self.dead_lettered = 0
        self.replayed = 0

    def snapshot(self) -> Counters:
        """The totals now."""
        return Counters(self.accepted, self.handled, self.failed, self.dead_lettered, self.replayed)


class Mailbox:
    """An actor's bounded memory channel and its message counters (see the module)."""

    __slots__ = (
        "_folded_into",
        "_watchers",
        "accepted",
        "capacity",
        "dead_lettered",
        "failed",
        "handled",
        "receive",
        "replayed",
        "send",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.send, self.receive = trio.open_memory_channel[Any](capacity)
        self.accepted = 0
        self.handled = 0
        self.failed = 0
        self.dead_lettered = 0
        self.replayed = 0
        self._folded_into: Totals | None = None
        self._watchers: list[Callable[[int], object]] | None = None

    # -- counting ------------------------------------------------------------------------
    # ``accepted += 1`` on the send fast path is done inline by ActorRef (the mailbox is
    # open there, so nothing is folded yet); everything else goes through these.

    def accepted_now(self) -> None:
        """One more message accepted, on the send fast path (the mailbox is open)."""
        self.accepted += 1
        watchers = self._watchers
        if watchers is not None:
            for watcher in watchers:
                watcher(1)

    def accepted_late(self) -> None:
        """One more message accepted by a sender that waited for room."""
        self.accepted += 1
        if self._folded_into is not None:  # woken by the final drain of a stopping actor
            self._folded_into.accepted += 1
        if self._watchers is not None:
            for watcher in self._watchers:
                watcher(1)

    def handled_one(self) -> None:
        """One more message handled."""
        self.handled += 1
        if self._folded_into is not None:  # it stopped itself while handling it
            self._folded_into.handled += 1
        if self._watchers is not None:
            for watcher in self._watchers:
                watcher(-1)

    def failed_one(self) -> None:
        """One more handler failure (the message is dead-lettered too)."""
        self.failed += 1
        if self._folded_into is not None:
            self._folded_into.failed += 1

    def dead_lettered_one(self) -> None:
        """One more message recorded as a dead letter."""
        self.dead_lettered += 1
        if self._folded_into is not None:
            self._folded_into.dead_lettered += 1
        if self._watchers is not None:
            for watcher in self._watchers:
                watcher(-1)

    # -- load watchers -------------------------------------------------------------------

    def watch(self, watcher: Callable[[int], object]) -> None:
        """Call ``watcher(+1)`` / ``watcher(-1)`` each time :meth:`load` changes (routing
        keeps exact least-loaded indexes this way, without scanning members)."""
        if self._watchers is None:
            self._watchers = []
        self._watchers.append(watcher)

    def unwatch(self, watcher: Callable[[int], object]) -> None:
        """Undo :meth:`watch` (no error if absent)."""
        watchers = self._watchers
        if watchers is not None and watcher in watchers:
            watchers.remove(watcher)
            if not watchers:
                self._watchers = None

    def raw_load(self) -> int:
        """``accepted - handled - dead_lettered``, unclamped (what watchers track)."""
        return self.accepted - self.handled - self.dead_lettered

    def fold_into(self, totals: Totals) -> None:
        """Add these counters to ``totals`` (once); later counts go there too."""
        if self._folded_into is not None:
            return
        totals.accepted += self.accepted
        totals.handled += self.handled
        totals.failed += self.failed
        totals.dead_lettered += self.dead_lettered
        totals.replayed += self.replayed
        self._folded_into = totals

    # -- reading -------------------------------------------------------------------------

    @property
    def folded(self) -> bool:
        """Its counters are part of the system's totals (it was closed)."""
        return self._folded_into is not None

    def queued(self) -> int:
        """Messages waiting in the channel."""
        return self.send.statistics().current_buffer_used

    def load(self) -> int:
        """Queued plus in flight: what load-balanced routing reads (never negative; a
        sender blocked on a full mailbox is counted when it resumes)."""
        return max(0, self.accepted - self.handled - self.dead_lettered)

    def in_flight(self) -> int:
        """Accepted messages neither queued nor finished: the one being handled, or one
        trio handed straight to the waiting actor task that has not run yet."""
        # A sender blocked on a full mailbox counts its message as accepted when its
        # task resumes, a moment after trio moved the message into the buffer: clamp.
        return max(0, self.accepted - self.handled - self.dead_lettered - self.queued())

    def counters(self) -> Counters:
        """This mailbox's counters."""
        return Counters(self.accepted, self.handled, self.failed, self.dead_lettered, self.replayed)

    def statistics(self) -> MailboxStatistics:
        """The counters and the queue now."""
        return MailboxStatistics(
            capacity=self.capacity,
            queued=self.queued(),
            accepted=self.accepted,
            handled=self.handled,
            dead_lettered=self.dead_lettered,
            in_flight=self.in_flight(),
        )

    # -- closing -------------------------------------------------------------------------

    def close(self) -> list[Any]:
        """Close both ends for good and return what was still queued (oldest first)."""
        left: list[Any] = []
        while True:
            try:
                left.append(self.receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self.receive.close()
        self.send.close()
        return left
