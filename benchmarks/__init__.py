"""Benchmarks: every figure is ours next to raw Trio, measured in the same run.

Run ``python -m benchmarks [--quick] [--only PATTERN] [--json PATH]`` (or
``nox -s bench -- --quick``). It imports every ``benchmarks/bench_*.py``, measures each
case's two sides alternately in one process, prints one table and writes
``benchmarks/results.json``.

A bench module defines one function::

    def cases(quick: bool) -> Sequence[BenchCase]: ...

returning :class:`Throughput`, :class:`Latency` or :class:`Memory` cases. Each pairs
``ours`` with a raw-Trio ``baseline``: async functions taking ``loops`` and run in a
fresh ``trio.run`` each time, so they set up their own world and time only the hot
part. ``quick=True`` asks for loops small enough that the whole suite stays well under a
minute. See ``benchmarks/README.rst`` and ``bench_events.py`` for a worked example.
"""

from ._cases import BenchCase as BenchCase
from ._cases import Better as Better
from ._cases import Latency as Latency
from ._cases import Memory as Memory
from ._cases import PeakMemory as PeakMemory
from ._cases import Side as Side
from ._cases import Stopwatch as Stopwatch
from ._cases import Throughput as Throughput

__all__ = [
    "BenchCase",
    "Better",
    "Latency",
    "Memory",
    "PeakMemory",
    "Side",
    "Stopwatch",
    "Throughput",
]
