"""Routing strategies: pure, synchronous choices over the live members of a group."""

from __future__ import annotations

import bisect
import enum
import hashlib
import heapq
import itertools
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..actors import ActorRef
from ..errors import NoRouteError
from ._members import Members
from ._message import message_key, message_priority, message_requirements


class RoutingPriority(enum.IntEnum):
    """Order in which registered strategies are consulted (highest first)."""

    LOW = 10
    NORMAL = 50
    HIGH = 100


@runtime_checkable
class RoutingStrategy(Protocol):
    """Chooses the recipient of a message among live candidates.

    ``select_recipient`` returns ``None`` when it has no opinion about this message
    (the next strategy is consulted) and raises
    :class:`~mister_smith.errors.NoRouteError` when the message cannot be routed.
    """

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """Pick one of ``candidates`` (never empty, all alive) for ``message``."""
        ...

    def priority(self) -> int:
        """Higher is consulted first."""
        ...


def least_loaded(candidates: Sequence[ActorRef]) -> ActorRef:
    """The candidate with the smallest live load (queued + in flight).

    A group's :class:`Members` (what the bus passes) answers from its exact O(1) load
    index; any other sequence is scanned (first on ties).
    """
    if isinstance(candidates, Members):
        return candidates.least_loaded()
    best = candidates[0]
    best_load = best.load
    if best_load == 0:
        return best
    for ref in candidates:
        load = ref.load
        if load < best_load:
            best, best_load = ref, load
            if load == 0:
                break
    return best


@attrs.define
class LoadBalancedRouting:
    """Sends each message to the member with the least live load.

    Load is each actor's mailbox depth plus the message in flight; for a bus group the
    members' mailboxes report every change to an index, so the choice is O(1) however
    many members there are, and exact: never a busier member while an idler exists.
    """

    routing_priority: int = RoutingPriority.LOW

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """The least-loaded candidate."""
        # The bus always passes Members: ask its index directly (one call fewer than
        # going through least_loaded() on the routing hot path).
        if isinstance(candidates, Members):
            return candidates.least_loaded()
        return least_loaded(candidates)

    def priority(self) -> int:
        """Consulted last by default: it always has an answer."""
        return self.routing_priority


@attrs.define
class CapabilityBasedRouting:
    """Sends a message that names required capabilities to a member that has them all.

    Among capable members the least loaded wins. A message with no requirements is
    left to the next strategy; one that no live member can take raises
    :class:`~mister_smith.errors.NoRouteError`.
    """

    routing_priority: int = RoutingPriority.HIGH
    _cache: tuple[object, dict[frozenset[str], list[ActorRef]]] | None = attrs.field(
        default=None, init=False
    )

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """A capable, least-loaded candidate; ``None`` when nothing is required."""
        required = message_requirements(message)
        if not required:
            return None
        capable: Sequence[ActorRef]
        if isinstance(candidates, Members):
            subset = candidates.capable(required)  # cached, with its own load index
            if subset:
                return subset.least_loaded()
            capable = subset
        else:
            # The same sequence object comes back until membership changes.
            if self._cache is None or self._cache[0] is not candidates:
                self._cache = (candidates, {})
            by_requirement = self._cache[1]
            listed = by_requirement.get(required)
            if listed is None:
                listed = [ref for ref in candidates if required <= ref.capabilities]
                by_requirement[required] = listed
            capable = listed
        if not capable:
            raise NoRouteError(
                f"no live member has the capabilities {sorted(required)} "
                f"(members: {[ref.name for ref in candidates]})"
            )
        return least_loaded(capable)

    def priority(self) -> int:
        """Consulted first by default."""
        return self.routing_priority


@attrs.define
class RoundRobinRouting:
    """Takes members in turn (over the live members, in group order)."""

    routing_priority: int = RoutingPriority.NORMAL
    _turn: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """The next member in turn."""
        return candidates[next(self._turn) % len(candidates)]

    def priority(self) -> int:
        """Normal priority."""
        return self.routing_priority


_KEY_POINTS = 4096
"""How many keys' ring points :class:`ConsistentHashRouting` remembers."""


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@attrs.define
class ConsistentHashRouting:
    """Sticky routing by key on a hash ring with virtual nodes.

    A message with a ``key`` (or ``routing_key``) always reaches the same member while
    that member lives; when a member leaves only its keys move. Messages without a
    key are left to the next strategy.
    """

    virtual_nodes: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    routing_priority: int = RoutingPriority.NORMAL
    _rings: dict[tuple[str, ...], tuple[list[int], list[str]]] = attrs.field(
        factory=dict, init=False
    )
    _cache: tuple[object, list[int], list[ActorRef]] | None = attrs.field(default=None, init=False)
    # Each key's point on the ring, whatever the membership: hashing a key (blake2b)
    # costs more than the rest of the decision, and conversations reuse their keys.
    # Bounded: cleared when it reaches ``_KEY_POINTS`` keys.
    _key_points: dict[str, int] = attrs.field(factory=dict, init=False)

    def _ring(self, names: tuple[str, ...]) -> tuple[list[int], list[str]]:
        ring = self._rings.get(names)
        if ring is None:
            points = sorted(
                (_hash(f"{name}#{replica}"), name)
                for name in names
                for replica in range(self.virtual_nodes)
            )
            ring = ([point for point, _ in points], [name for _, name in points])
            if len(self._rings) > 64:
                self._rings.clear()
            self._rings[names] = ring
        return ring

    def owner(self, key: str, names: Sequence[str]) -> str:
        """The member name owning ``key`` among ``names`` (pure, for tests)."""
        points, owners = self._ring(tuple(sorted(names)))
        index = bisect.bisect(points, _hash(key)) % len(points)
        return owners[index]

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """The member owning the message's key; ``None`` without a key."""
        key = message_key(message)
        if key is None:
            return None
        # The bus passes the same sequence object until membership changes.
        if self._cache is None or self._cache[0] is not candidates:
            by_name = {ref.name: ref for ref in candidates}
            points, owners = self._ring(tuple(sorted(by_name)))
            self._cache = (candidates, points, [by_name[name] for name in owners])
        _, points, refs = self._cache
        key_points = self._key_points
        point = key_points.get(key)
        if point is None:
            if len(key_points) >= _KEY_POINTS:
                key_points.clear()
            point = key_points[key] = _hash(key)
        return refs[bisect.bisect(points, point) % len(points)]

    def priority(self) -> int:
        """Normal priority."""
        return self.routing_priority


@attrs.define
class PriorityScheduler:
    """A pure priority queue with bounded overtaking.

    Higher ``priority`` leaves first (FIFO among equals), but no item waits for more
    than ``max_overtakes`` later pops: once that many pops have happened since it was
    queued, the oldest waiting item leaves next. So low priorities are delayed, never
    starved.
    """

    max_overtakes: int = attrs.field(default=16, validator=attrs.validators.ge(0))
    _heap: list[tuple[int, int, Any]] = attrs.field(factory=list, init=False)
    _fifo: list[tuple[int, int]] = attrs.field(factory=list, init=False)  # (seq, due)
    _fifo_start: int = attrs.field(default=0, init=False)
    _gone: set[int] = attrs.field(factory=set, init=False)
    _seq: int = attrs.field(default=0, init=False)
    _pops: int = attrs.field(default=0, init=False)
    _items: dict[int, Any] = attrs.field(factory=dict, init=False)

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Any, priority: int) -> None:
        """Queue ``item`` with ``priority``."""
        seq = self._seq
        self._seq += 1
        self._items[seq] = item
        heapq.heappush(self._heap, (-priority, seq, item))
        self._fifo.append((seq, self._pops + self.max_overtakes))

    def _fifo_head(self) -> tuple[int, int]:
        """The oldest queued item's ``(seq, due)``; only called while one is queued, and
        each queued item's entry lies at or after ``_fifo_start``."""
        while True:
            seq, due = self._fifo[self._fifo_start]
            if seq in self._items:
                start = self._fifo_start
                # When to compact only bounds memory: its mutants are equivalent.
                if start > 1024 and start * 2 > len(self._fifo):  # pragma: no mutate
                    del self._fifo[:start]
                    self._fifo_start = 0
                return seq, due
            self._fifo_start += 1

    def pop(self) -> Any:
        """Remove and return the next item.

        Raises:
            IndexError: the queue is empty.
        """
        if not self._items:
            raise IndexError("pop from an empty PriorityScheduler")
        head_seq, head_due = self._fifo_head()
        if self._pops >= head_due:
            seq = head_seq
        else:
            while True:
                _, seq, _ = heapq.heappop(self._heap)
                if seq in self._items:
                    break
        self._pops += 1
        return self._items.pop(seq)


@attrs.define
class PriorityRouting:
    """Orders messages by priority before they are sent (see :class:`PriorityScheduler`).

    As a recipient chooser it sends to the least-loaded member; the
    :class:`~mister_smith.transport.MessageBus` uses its scheduler so that queued
    higher-priority messages overtake lower ones, with bounded overtaking.
    """

    max_overtakes: int = 16
    routing_priority: int = RoutingPriority.NORMAL

    def new_scheduler(self) -> PriorityScheduler:
        """A fresh scheduler with this strategy's overtaking bound."""
        return PriorityScheduler(self.max_overtakes)

    def select_recipient(self, message: Any, candidates: Sequence[ActorRef]) -> ActorRef | None:
        """The least-loaded candidate."""
        return least_loaded(candidates)

    def priority(self) -> int:
        """Normal priority."""
        return self.routing_priority

    @staticmethod
    def message_priority(message: Any) -> int:
        """The priority the scheduler uses for ``message``."""
        return message_priority(message)
