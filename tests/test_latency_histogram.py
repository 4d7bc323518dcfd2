"""``LatencyHistogram``: every sample lands in exactly one bucket, and the snapshot's
count, total, max and percentiles agree with the samples recorded."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.async_patterns import LatencyHistogram

_samples = st.lists(st.floats(min_value=-1.0, max_value=100.0, allow_nan=False), max_size=200)


@given(samples=_samples, window=st.integers(min_value=1, max_value=50))
def test_snapshot_agrees_with_the_samples(samples: list[float], window: int) -> None:
    histogram = LatencyHistogram(window=window)
    for sample in samples:
        histogram.record(sample)
    snapshot = histogram.snapshot()
    kept = [max(0.0, sample) for sample in samples]
    assert snapshot.count == len(samples)
    assert sum(count for _, count in snapshot.buckets) == len(samples)
    assert snapshot.total == pytest.approx(math.fsum(kept))
    assert snapshot.max == (max(kept) if kept else 0.0)
    for bound, count in snapshot.buckets:
        lower = max((b for b, _ in snapshot.buckets if b < bound), default=-math.inf)
        assert count == sum(1 for sample in kept if lower < sample <= bound)
    recent = sorted(kept[-window:])
    if recent:
        assert snapshot.p50 == recent[max(1, math.ceil(0.5 * len(recent))) - 1]
        assert histogram.percentile(99) == snapshot.p99
    else:
        assert snapshot.p50 == snapshot.p99 == 0.0


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="window"):
        LatencyHistogram(window=0)
    with pytest.raises(ValueError, match="buckets"):
        LatencyHistogram((0.5, 0.1))
    with pytest.raises(ValueError, match="percent"):
        LatencyHistogram().percentile(0)
