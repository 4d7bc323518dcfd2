"""Examples pinning the routing strategies where ``nox -s mutants`` found mutants of
``transport/_strategies.py`` surviving ``test_routing.py``: ties and early exits of
``least_loaded``, the caches keyed by the candidate sequence, the hash ring's stable
hash and bounded cache, and the scheduler's exact overtaking order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

import pytest
from test_routing import FakeRef, refs

from mister_smith.actors import ActorRef
from mister_smith.errors import NoRouteError
from mister_smith.transport import CapabilityBasedRouting, ConsistentHashRouting, PriorityScheduler
from mister_smith.transport._strategies import least_loaded


class CountingRefs(list[ActorRef]):
    """A candidate list that counts how often it is scanned (iterated)."""

    scans: int = 0

    def __iter__(self) -> Iterator[ActorRef]:
        self.scans += 1
        return super().__iter__()


def counting(fakes: Sequence[FakeRef]) -> CountingRefs:
    """``fakes`` as a :class:`CountingRefs`."""
    return CountingRefs(refs(fakes))


def name(ref: ActorRef | None) -> str:
    """The chosen member's name (a choice must have been made)."""
    assert ref is not None
    return ref.name


# -- least_loaded ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loads", "chosen"),
    [
        ([2, 1, 1], "m1"),  # ties: the first of the least loaded
        ([3, 1, 0], "m2"),  # a load of 1 is not idle: the scan goes on to the idle one
        ([1, 0], "m1"),  # nor is the first member's load of 1
        ([2, 0, 0], "m1"),  # the first idle member ends the scan
        ([0, 0], "m0"),
        ([4], "m0"),
    ],
)
def test_least_loaded_takes_the_first_of_the_least_loaded(loads: list[int], chosen: str) -> None:
    fakes = [FakeRef(f"m{i}", load) for i, load in enumerate(loads)]
    assert name(least_loaded(refs(fakes))) == chosen


# -- capability routing --------------------------------------------------------------------


def test_capability_routing_takes_a_member_with_exactly_the_required_capabilities() -> None:
    routing = CapabilityBasedRouting()
    members = refs([FakeRef("exact", capabilities=frozenset({"sql"}))])
    assert name(routing.select_recipient({"requires": ["sql"]}, members)) == "exact"


def test_capability_routing_scans_each_membership_once_per_requirement() -> None:
    routing = CapabilityBasedRouting()
    first = counting([FakeRef("a", 1, frozenset({"sql"})), FakeRef("b", 0)])
    for _ in range(3):
        assert name(routing.select_recipient({"requires": ["sql"]}, first)) == "a"
    assert first.scans == 1  # the capable list is cached for this membership
    # A new membership (a new sequence) is scanned anew, not answered from the old one.
    second = counting([FakeRef("a", 1), FakeRef("b", 0, frozenset({"sql"}))])
    assert name(routing.select_recipient({"requires": ["sql"]}, second)) == "b"
    assert second.scans == 1
    with pytest.raises(NoRouteError, match=r"\['gpu'\]"):
        routing.select_recipient({"requires": ["gpu"]}, second)


# -- consistent hashing --------------------------------------------------------------------


def test_the_ring_hash_is_stable_across_processes() -> None:
    """Nodes of a cluster must place keys alike: the ring uses an 8-byte big-endian
    BLAKE2b, never Python's per-process ``hash``. These owners are fixed for good."""
    ring = ConsistentHashRouting(virtual_nodes=1)
    # With one point per member, the owner of a key is the member whose point follows
    # the key's hash on the ring.
    names = ["a", "b", "c", "d"]
    owners = [ring.owner(f"conversation-{k}", names) for k in range(8)]
    assert owners == ["d", "a", "c", "a", "d", "d", "d", "a"]


def test_consistent_hashing_follows_a_new_membership() -> None:
    ring = ConsistentHashRouting()
    message = {"key": "conversation-1"}
    before = counting([FakeRef(n) for n in ("a", "b", "c")])
    owner = name(ring.select_recipient(message, before))
    assert name(ring.select_recipient(message, before)) == owner
    assert before.scans == 1  # the ring for this membership is cached
    after = counting([FakeRef(n) for n in ("a", "b", "c") if n != owner])
    moved = name(ring.select_recipient(message, after))
    assert moved != owner
    assert moved == ring.owner("conversation-1", [ref.name for ref in after])


def test_the_ring_cache_is_bounded() -> None:
    """Rings are cached per membership, at most 65 of them (then the cache starts over)."""
    ring = ConsistentHashRouting(virtual_nodes=2)
    for count in range(1, 66):
        ring.owner("k", [f"m{i}" for i in range(count)])
    assert len(ring._rings) == 65
    points = ring._rings[("m0",)]
    ring.owner("k", ["m0"])
    assert ring._rings[("m0",)] is points  # a cached ring is reused, not rebuilt
    ring.owner("k", ["x"])
    assert list(ring._rings) == [("x",)]


# -- priority scheduler ------------------------------------------------------------------


def test_pop_from_an_empty_scheduler_says_so() -> None:
    with pytest.raises(IndexError, match=r"^pop from an empty PriorityScheduler$"):
        PriorityScheduler().pop()


def test_overtaking_order_is_exact() -> None:
    """A low item queued first leaves after exactly ``max_overtakes`` pops."""
    scheduler = PriorityScheduler(max_overtakes=2)
    scheduler.push("low", 1)
    for index in range(3):
        scheduler.push(f"high{index}", 5)
    assert [scheduler.pop() for _ in range(4)] == ["high0", "high1", "low", "high2"]
    assert len(scheduler) == 0


def test_a_long_run_keeps_fifo_order_across_compaction() -> None:
    """Thousands of equal-priority items: the oldest-first bookkeeping is compacted on
    the way (past 1024 consumed entries) and still hands out the oldest item."""
    scheduler = PriorityScheduler(max_overtakes=0)
    popped: list[int] = []
    for item in range(3000):
        scheduler.push(item, item % 3)
        if item % 2:
            popped.append(cast(int, scheduler.pop()))
    popped.extend(cast(int, scheduler.pop()) for _ in range(len(scheduler)))
    assert popped == list(range(3000))  # no overtaking allowed: strictly FIFO


def test_the_oldest_item_keeps_its_bound_after_compaction() -> None:
    """The bookkeeping is compacted right when the oldest item is reached past 1025
    consumed entries; that item is still found afterwards and leaves when due."""
    scheduler = PriorityScheduler(max_overtakes=1026)
    for index in range(1025):
        scheduler.push(f"h{index}", 5)
    scheduler.push("low", 1)
    for index in range(5):
        scheduler.push(f"x{index}", 5)
    order = [scheduler.pop() for _ in range(1031)]
    assert order[:1025] == [f"h{index}" for index in range(1025)]
    # Compacted at the 1026th pop (``low`` not due yet: ``x0`` overtakes it), then due.
    assert order[1025:] == ["x0", "low", "x1", "x2", "x3", "x4"]
