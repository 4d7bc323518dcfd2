"""What a benchmark module declares: its cases, and two helpers for measuring inside them.

A case pairs *ours* (the mister_smith way) with a *baseline* (the same work written with
raw Trio). Both are async functions taking ``loops`` and are each run in a fresh
``trio.run``, so they do their own setup and time only the part that matters.
"""

from __future__ import annotations

import enum
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import ClassVar, Self

import attrs
import trio


class Better(enum.Enum):
    """Which direction of a figure is good."""

    HIGHER = "higher"
    LOWER = "lower"


class Side(enum.Enum):
    """The two contenders of a case."""

    OURS = "ours"
    BASELINE = "baseline"


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class BenchCase:
    """One comparison, measured in rounds that alternate ours and the baseline.

    Use one of the concrete kinds: :class:`Throughput`, :class:`Latency`, :class:`Memory`.

    Attributes:
        name: Short, unique within the module, e.g. ``"emit, 10 streams"``.
        loops: Operations (or items) per measured run; size it so one run takes
            roughly 10-100 ms, and much less when ``cases(quick=True)`` is asked.
        baseline_label: What the baseline does, e.g. ``"send_nowait to 10 channels"``.
        description: One line on what is measured and how (JSON only).
    """

    better: ClassVar[Better]
    kind: ClassVar[str]

    name: str
    loops: int = attrs.field(validator=_positive)
    unit: str
    baseline_label: str = "raw Trio"
    description: str = ""

    def measure(self, side: Side, loops: int) -> dict[str, float]:
        """Run one side once in a fresh ``trio.run``; map statistic name to value.

        The statistic name is ``""`` for a single figure, ``"p50"`` etc. for latencies.
        """
        raise NotImplementedError

    def format_value(self, value: float) -> str:
        """Render one figure with its unit for the table."""
        raise NotImplementedError


@attrs.frozen(kw_only=True)
class Throughput(BenchCase):
    """Operations per second; higher is better.

    ``ours`` and ``baseline`` are ``async def f(loops: int) -> float`` returning the
    elapsed seconds (``time.perf_counter``, or a :class:`Stopwatch`) for ``loops``
    operations: the same contract as pyperf's ``bench_time_func``.
    """

    better = Better.HIGHER
    kind = "throughput"

    ours: Callable[[int], Awaitable[float]]
    baseline: Callable[[int], Awaitable[float]]
    unit: str = "ops/s"

    def measure(self, side: Side, loops: int) -> dict[str, float]:
        """Ops per second of one run."""
        fn = self.ours if side is Side.OURS else self.baseline
        elapsed = trio.run(fn, loops)
        if not elapsed > 0:
            raise ValueError(f"{self.name} ({side.value}) reported {elapsed!r} s elapsed")
        return {"": loops / elapsed}

    def format_value(self, value: float) -> str:
        """E.g. ``"1.23M emits/s"``."""
        for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= factor:
                return f"{value / factor:.3g}{prefix} {self.unit}"
        return f"{value:.3g} {self.unit}"


@attrs.frozen(kw_only=True)
class Latency(BenchCase):
    """Per-operation latency percentiles (one table row each); lower is better.

    ``ours`` and ``baseline`` are ``async def f(loops: int) -> Sequence[float]`` returning
    the latency in seconds of each of ``loops`` operations. Each run's percentiles are
    computed first; the table shows the median of each over the rounds.

    Attributes:
        percentiles: Which percentiles to report (each in 1..99).
    """

    better = Better.LOWER
    kind = "latency"

    ours: Callable[[int], Awaitable[Sequence[float]]]
    baseline: Callable[[int], Awaitable[Sequence[float]]]
    unit: str = attrs.field(default="s", init=False)
    percentiles: tuple[int, ...] = attrs.field(default=(50, 99))

    @percentiles.validator
    def _check_percentiles(
        self, attribute: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]
    ) -> None:
        if not value or any(not 1 <= p <= 99 for p in value):
            raise ValueError(f"percentiles must be in 1..99, got {value!r}")

    def measure(self, side: Side, loops: int) -> dict[str, float]:
        """The requested percentiles of one run's latencies."""
        fn = self.ours if side is Side.OURS else self.baseline
        latencies = list(trio.run(fn, loops))
        if not latencies:
            raise ValueError(f"{self.name} ({side.value}) reported no latencies")
        if len(latencies) == 1:
            return {f"p{p}": latencies[0] for p in self.percentiles}
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return {f"p{p}": cuts[p - 1] for p in self.percentiles}

    def format_value(self, value: float) -> str:
        """E.g. ``"12.3 µs"``."""
        for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if value >= factor:
                return f"{value / factor:.3g} {unit}"
        return f"{value / 1e-9:.3g} ns"


@attrs.frozen(kw_only=True)
class Memory(BenchCase):
    """Peak bytes per item; lower is better.

    ``ours`` and ``baseline`` are ``async def f(loops: int) -> int`` returning the peak
    bytes allocated while ``loops`` items were alive (use :class:`PeakMemory`). The
    table shows bytes per item, so set ``unit`` to e.g. ``"B/subscription"``.
    """

    better = Better.LOWER
    kind = "memory"

    ours: Callable[[int], Awaitable[int]]
    baseline: Callable[[int], Awaitable[int]]
    unit: str = "B/item"

    def measure(self, side: Side, loops: int) -> dict[str, float]:
        """Peak bytes per item of one run."""
        fn = self.ours if side is Side.OURS else self.baseline
        return {"": trio.run(fn, loops) / loops}

    def format_value(self, value: float) -> str:
        """E.g. ``"1,234 B/actor"``."""
        return f"{value:,.0f} {self.unit}"


@attrs.define
class Stopwatch:
    """Accumulates time spent inside ``with stopwatch:`` blocks (``time.perf_counter``).

    Lets a throughput function exclude work between timed stretches, e.g. draining
    subscriber queues between batches of emits.
    """

    elapsed: float = 0.0
    _started: float = attrs.field(default=0.0, init=False, repr=False)

    def __enter__(self) -> Self:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.elapsed += time.perf_counter() - self._started


@attrs.define
class PeakMemory:
    """Peak bytes newly allocated (per ``tracemalloc``) inside ``with PeakMemory() as m:``.

    Reads ``m.peak`` after the block. Starts tracing if needed and stops it again, so
    only memory cases pay tracemalloc's slowdown. Counts Python allocations only, which
    is deterministic and fine-grained, unlike RSS.
    """

    peak: int = 0
    _baseline: int = attrs.field(default=0, init=False, repr=False)
    _started_tracing: bool = attrs.field(default=False, init=False, repr=False)

    def __enter__(self) -> Self:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_tracing = True
        tracemalloc.reset_peak()
        self._baseline = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self._baseline
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False
