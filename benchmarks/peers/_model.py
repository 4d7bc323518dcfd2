"""The workloads every side runs, and the adapter base class each side implements.

A *side* is ours or one peer framework. An adapter runs one workload once and returns
raw timings, pyperf-style: elapsed seconds for ``loops`` operations (throughput) or one
latency in seconds per operation (latency). Each call sets up its own world (its own
``trio.run``, ``asyncio.run``, actor system or threads), times only the hot part with
``time.perf_counter`` and tears everything down before returning.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import ClassVar

import attrs

from .._cases import Better


class Kind(enum.Enum):
    """How an adapter's raw result turns into figures."""

    THROUGHPUT = "throughput"
    LATENCY = "latency"


PERCENTILES = (50, 99)


@attrs.frozen(kw_only=True)
class Workload:
    """One workload, run the same way on every side.

    Attributes:
        key: Short identifier, also the adapter method's name (``"tell"``).
        title: What the table shows (``"tell, 1 sender -> 1 actor"``).
        kind: Throughput (ops/s, higher is better) or latency (p50/p99, lower is better).
        unit: The throughput unit (``"msgs/s"``); latencies are in seconds.
        loops: Operations per measured run (throughput) or timed operations (latency).
        quick_loops: ``loops`` with ``--quick``.
        size: Actors per operation batch: a fan-out run is ``loops`` waves of ``size``
            tells, so its figure is ``loops * size / elapsed``.
        work: How one run's work reads in the table, formatted with ``loops`` and
            ``size`` (``"{loops:,} msgs"``).
        description: One line on what is timed and how completion is detected (JSON).
    """

    key: str
    title: str
    kind: Kind
    unit: str
    loops: int
    quick_loops: int
    size: int = 1
    work: str
    description: str

    @property
    def better(self) -> Better:
        """Which direction of a figure (and of the peer / ours ratio) is good."""
        return Better.HIGHER if self.kind is Kind.THROUGHPUT else Better.LOWER

    @property
    def statistics(self) -> tuple[str, ...]:
        """One table row each: ``("",)`` for throughput, ``("p50", "p99")`` for latency."""
        if self.kind is Kind.THROUGHPUT:
            return ("",)
        return tuple(f"p{p}" for p in PERCENTILES)

    def loops_for(self, quick: bool) -> int:
        """Loops per run for this mode."""
        return self.quick_loops if quick else self.loops

    def describe_work(self, loops: int) -> str:
        """E.g. ``"20,000 msgs"`` or ``"10 x 1,000 tells"``."""
        return self.work.format(loops=loops, size=self.size)


TELL = Workload(
    key="tell",
    title="tell throughput, 1 sender -> 1 actor",
    kind=Kind.THROUGHPUT,
    unit="msgs/s",
    loops=20_000,
    quick_loops=10_000,
    work="{loops:,} msgs",
    description=(
        "one sender tells N messages to one actor; timed until the actor has handled the "
        "N-th (it counts and sets an event); actor started before timing"
    ),
)
BURST = 500
"""Messages per burst of the non-blocking tell workload (half the default mailbox)."""

TELL_BURST = Workload(
    key="tell_burst",
    title="non-blocking tell, bursts of 500",
    kind=Kind.THROUGHPUT,
    unit="msgs/s",
    loops=20_000,
    quick_loops=10_000,
    work="{loops:,} msgs",
    description=(
        "one sender enqueues bursts of 500 messages without waiting (ours: tell_nowait, "
        "which never waits and refuses when the mailbox is full; pykka: tell, which never "
        "waits), then one marker message per burst and waits for the actor to reach it"
    ),
)
ASK = Workload(
    key="ask",
    title="ask round trip, 1 actor",
    kind=Kind.LATENCY,
    unit="s",
    loops=5_000,
    quick_loops=2_000,
    work="{loops:,} asks",
    description="sequential request/reply to one started actor; each round trip timed alone",
)
FANOUT = Workload(
    key="fanout",
    title="fan-out, 1 tell to each of 1,000 actors",
    kind=Kind.THROUGHPUT,
    unit="msgs/s",
    loops=10,
    quick_loops=5,
    size=1_000,
    work="{loops} x {size:,} tells",
    description=(
        "1,000 actors started before timing; each wave tells one message to every actor "
        "and waits until all have handled it (shared countdown and event)"
    ),
)
SPAWN_STOP = Workload(
    key="spawn_stop",
    title="spawn + stop",
    kind=Kind.THROUGHPUT,
    unit="actors/s",
    loops=10_000,
    quick_loops=2_000,
    work="{loops:,} actors",
    description=(
        "start N actors one after another (each ready to receive), then stop them all and "
        "wait until they are gone; figure is actors spawned and stopped per second"
    ),
)
RESTART = Workload(
    key="restart",
    title="restart: crash -> answering again",
    kind=Kind.LATENCY,
    unit="s",
    loops=300,
    quick_loops=100,
    work="{loops:,} crashes",
    description=(
        "a permanent supervised actor is sent a message that raises; timed from that send "
        "until a following ask is answered by the restarted actor"
    ),
)

WORKLOADS: tuple[Workload, ...] = (TELL, TELL_BURST, ASK, FANOUT, SPAWN_STOP, RESTART)
"""Every workload, in table order."""


def workload(key: str) -> Workload:
    """The workload called ``key``.

    Raises:
        KeyError: no such workload.
    """
    for candidate in WORKLOADS:
        if candidate.key == key:
            return candidate
    raise KeyError(f"no workload {key!r}; known: {', '.join(w.key for w in WORKLOADS)}")


RawResult = float | Sequence[float]
"""Elapsed seconds (throughput) or per-operation latencies in seconds (latency)."""


class PeerAdapter:
    """One side's way of running the workloads; subclass it and implement the methods.

    Peer adapters import their library at module level, so a missing or broken install
    surfaces as an import error when the worker loads the adapter. Everything in a
    method runs in the adapter's own concurrency model; the methods are synchronous.

    Class attributes:
        name: Table name (``"pykka"``).
        distribution: The PyPI distribution, for its version (``None``: not installed).
        concurrency: How it runs, shown in the table's legend and the JSON.
        unsupported: Workload key to the reason this side cannot run it: the table shows
            ``n/a (reason)``.
        caps: Workload key to ``(max loops, why)`` for sides that cannot do the full
            count (one OS thread per actor, say); the run uses the smaller count and the
            table says so.
    """

    name: ClassVar[str]
    distribution: ClassVar[str | None] = None
    concurrency: ClassVar[str]
    unsupported: ClassVar[Mapping[str, str]] = {}
    caps: ClassVar[Mapping[str, tuple[int, str]]] = {}

    def load(self) -> None:
        """Prepare the library once per worker (silence its logging, etc.)."""

    def tell(self, loops: int) -> float:
        """Seconds for one sender to tell ``loops`` messages that one actor handles."""
        raise NotImplementedError

    def tell_burst(self, loops: int) -> float:
        """Seconds to enqueue ``loops`` messages in bursts of ``BURST`` without waiting,
        each burst followed by a marker the sender waits for the actor to reach."""
        raise NotImplementedError

    def ask(self, loops: int) -> Sequence[float]:
        """Latency of each of ``loops`` sequential asks to one actor."""
        raise NotImplementedError

    def fanout(self, loops: int, actors: int) -> float:
        """Seconds for ``loops`` waves of one tell to each of ``actors`` started actors."""
        raise NotImplementedError

    def spawn_stop(self, loops: int) -> float:
        """Seconds to start ``loops`` actors one by one, then stop them all."""
        raise NotImplementedError

    def restart(self, loops: int) -> Sequence[float]:
        """Per crash: seconds from the crashing send until the next ask is answered."""
        raise NotImplementedError

    def run(self, key: str, loops: int, size: int = 1) -> RawResult:
        """Run workload ``key`` once with ``loops`` operations (``size``: fan-out width)."""
        if key in self.unsupported:
            raise ValueError(f"{self.name} does not run {key!r}: {self.unsupported[key]}")
        match key:
            case "tell":
                return self.tell(loops)
            case "tell_burst":
                return self.tell_burst(loops)
            case "ask":
                return self.ask(loops)
            case "fanout":
                return self.fanout(loops, size)
            case "spawn_stop":
                return self.spawn_stop(loops)
            case "restart":
                return self.restart(loops)
        raise KeyError(f"no workload {key!r}")
