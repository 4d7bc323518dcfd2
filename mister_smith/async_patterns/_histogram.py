"""A small latency histogram: fixed buckets plus exact percentiles over recent samples."""

from __future__ import annotations

import collections
import math
from bisect import bisect_left

import attrs

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds in seconds of the default buckets; a final ``inf`` bucket is implied."""

DEFAULT_WINDOW = 1_024
"""How many recent samples percentiles are computed from."""


@attrs.frozen
class HistogramSnapshot:
    """A frozen view of a :class:`LatencyHistogram`.

    Attributes:
        buckets: ``(upper_bound, count)`` pairs, not cumulative; the last bound is
            ``inf``. A sample lands in the first bucket whose bound is ``>=`` it.
        count: Samples recorded since creation.
        total: Sum of all samples, in seconds.
        max: Largest sample (``0.0`` when empty).
        p50: Median of the most recent samples (``0.0`` when empty).
        p99: 99th percentile of the most recent samples (``0.0`` when empty).
    """

    buckets: tuple[tuple[float, int], ...]
    count: int
    total: float
    max: float
    p50: float
    p99: float

    @property
    def mean(self) -> float:
        """Average sample (``0.0`` when empty)."""
        return self.total / self.count if self.count else 0.0


class LatencyHistogram:
    """Records durations into fixed buckets and keeps a window of recent samples.

    Bucket counts cover every sample ever recorded; ``p50`` / ``p99`` are exact over the
    last ``window`` samples (nearest-rank), so they follow the current behaviour rather
    than the whole history. Recording is O(log buckets).

    Args:
        buckets: Increasing upper bounds in seconds (``inf`` is appended).
        window: Recent samples kept for percentiles (>= 1).
    """

    __slots__ = ("_bounds", "_counts", "_max", "_recent", "_total")

    def __init__(
        self, buckets: tuple[float, ...] = DEFAULT_BUCKETS, *, window: int = DEFAULT_WINDOW
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        if list(buckets) != sorted(set(buckets)) or any(b <= 0 for b in buckets):
            raise ValueError(f"buckets must be strictly increasing and > 0, got {buckets!r}")
        self._bounds: tuple[float, ...] = (*buckets, math.inf)
        self._counts = [0] * len(self._bounds)
        self._recent: collections.deque[float] = collections.deque(maxlen=window)
        self._total = 0.0
        self._max = 0.0

    def record(self, seconds: float) -> None:
        """Add one duration (negative values count as ``0``).

        Runs once per tool call and per task: the sample count is not kept apart, it is
        the sum of the bucket counts (taken by :meth:`snapshot`).
        """
        if seconds < 0:
            seconds = 0.0
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._recent.append(seconds)
        self._total += seconds
        if seconds > self._max:
            self._max = seconds

    def percentile(self, percent: float) -> float:
        """The ``percent`` percentile (nearest rank) of the recent samples, ``0.0`` if none."""
        if not 0 < percent <= 100:
            raise ValueError(f"percent must be in (0, 100], got {percent!r}")
        if not self._recent:
            return 0.0
        ordered = sorted(self._recent)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1]

    def snapshot(self) -> HistogramSnapshot:
        """A frozen copy of the current figures."""
        if self._recent:
            ordered = sorted(self._recent)

            def rank(percent: float) -> float:
                return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]

            p50, p99 = rank(50), rank(99)
        else:
            p50 = p99 = 0.0
        return HistogramSnapshot(
            buckets=tuple(zip(self._bounds, self._counts, strict=True)),
            count=sum(self._counts),
            total=self._total,
            max=self._max,
            p50=p50,
            p99=p99,
        )
