"""Finding bench modules and measuring their cases: alternating rounds after a warm-up.

Why not ``pyperf.Runner``: it runs every benchmark in its own worker processes and
parses ``sys.argv`` itself, so ours and the baseline could not alternate in one process
and many modules could not share one table. We keep pyperf's timing contract instead
(a function given ``loops`` returns the elapsed seconds, like ``bench_time_func``) and
time with ``time.perf_counter``; medians and spreads come from :mod:`statistics`.
"""

from __future__ import annotations

import fnmatch
import gc
import importlib
import importlib.util
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Protocol

import attrs

from ._cases import BenchCase, Better, Side

PACKAGE_DIR = Path(__file__).resolve().parent


class CasesFunction(Protocol):
    """The one function a ``bench_*.py`` module must define."""

    def __call__(self, quick: bool) -> Sequence[BenchCase]: ...


@attrs.frozen
class BenchModule:
    """A discovered ``bench_<suite>.py`` module."""

    suite: str
    cases: CasesFunction


@attrs.frozen
class Summary:
    """One side's figures over the rounds.

    Attributes:
        values: One figure per round, in round order.
    """

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median over the rounds."""
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        """Smallest round."""
        return min(self.values)

    @property
    def max(self) -> float:
        """Largest round."""
        return max(self.values)

    @property
    def stdev(self) -> float:
        """Sample standard deviation (``0.0`` with a single round)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def spread(self) -> float:
        """Half the min-max range relative to the median (``0.02`` reads as ±2 %)."""
        median = self.median
        return (self.max - self.min) / 2 / median if median else 0.0


@attrs.frozen(kw_only=True)
class CaseResult:
    """One table row: a case (and, for latencies, one percentile) measured both ways."""

    suite: str
    case: BenchCase
    statistic: str
    ours: Summary
    baseline: Summary
    rounds: int
    loops: int

    @property
    def name(self) -> str:
        """``suite/case``, plus ``[p99]`` etc. for a latency percentile."""
        suffix = f" [{self.statistic}]" if self.statistic else ""
        return f"{self.suite}/{self.case.name}{suffix}"

    @property
    def ratio(self) -> float:
        """``ours / baseline`` of the medians; whether above 1 is good depends on ``better``."""
        return self.ours.median / self.baseline.median if self.baseline.median else float("nan")

    @property
    def better(self) -> Better:
        """Which direction of the figures (and of the ratio) is good."""
        return self.case.better


@attrs.frozen
class CaseFailure:
    """A case that raised; the run goes on and exits non-zero."""

    name: str
    error: str


def discover(directory: Path | None = None) -> list[BenchModule]:
    """Import every ``bench_*.py`` in ``directory`` (default: this package), sorted by name.

    Modules of this package are imported as ``benchmarks.bench_x``; elsewhere (tests) by
    file path.
    """
    directory = PACKAGE_DIR if directory is None else directory.resolve()
    found = []
    for path in sorted(directory.glob("bench_*.py")):
        if directory == PACKAGE_DIR:
            module = importlib.import_module(f"{__package__}.{path.stem}")
        else:
            module = _import_path(path)
        cases = getattr(module, "cases", None)
        if not callable(cases):
            raise TypeError(f"{path} must define cases(quick: bool) -> Sequence[BenchCase]")
        found.append(BenchModule(path.stem.removeprefix("bench_"), cases))
    return found


def _import_path(path: Path) -> ModuleType:
    name = f"_bench_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` is selected by ``--only``: a glob, or a plain substring.

    No patterns selects everything; matching ignores case.
    """
    if not patterns:
        return True
    name = name.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif pattern in name:
            return True
    return False


def select(
    modules: Iterable[BenchModule], *, quick: bool, only: Sequence[str] = ()
) -> list[tuple[str, BenchCase]]:
    """The ``(suite, case)`` pairs to run, in module then declaration order."""
    selected = []
    for module in modules:
        seen: set[str] = set()
        for case in module.cases(quick):
            if case.name in seen:
                raise ValueError(f"bench_{module.suite}: duplicate case name {case.name!r}")
            seen.add(case.name)
            if matches(f"{module.suite}/{case.name}", only):
                selected.append((module.suite, case))
    return selected


def measure(
    suite: str, case: BenchCase, *, rounds: int, loops_scale: float = 1.0
) -> list[CaseResult]:
    """Warm up each side once, then run ``rounds`` rounds of ours and baseline.

    Rounds alternate which side goes first (ours-baseline, baseline-ours, ...) so drift
    in the machine's speed (turbo, thermal, other load) falls on both sides alike. Each
    run is a fresh ``trio.run`` after a ``gc.collect()``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    loops = max(1, round(case.loops * loops_scale))
    case.measure(Side.OURS, loops)
    case.measure(Side.BASELINE, loops)
    figures: dict[Side, list[dict[str, float]]] = {Side.OURS: [], Side.BASELINE: []}
    for round_index in range(rounds):
        order = (Side.OURS, Side.BASELINE) if round_index % 2 == 0 else (Side.BASELINE, Side.OURS)
        for side in order:
            gc.collect()
            figures[side].append(case.measure(side, loops))
    return [
        CaseResult(
            suite=suite,
            case=case,
            statistic=statistic,
            ours=Summary(tuple(run[statistic] for run in figures[Side.OURS])),
            baseline=Summary(tuple(run[statistic] for run in figures[Side.BASELINE])),
            rounds=rounds,
            loops=loops,
        )
        for statistic in figures[Side.OURS][0]
    ]


def run_all(
    selected: Sequence[tuple[str, BenchCase]],
    *,
    rounds: int,
    loops_scale: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[CaseResult], list[CaseFailure]]:
    """Measure every selected case; a case that raises is recorded and the rest still run."""
    results: list[CaseResult] = []
    failures: list[CaseFailure] = []
    for index, (suite, case) in enumerate(selected, 1):
        name = f"{suite}/{case.name}"
        started = time.perf_counter()
        try:
            results.extend(measure(suite, case, rounds=rounds, loops_scale=loops_scale))
        except Exception as exc:
            failures.append(CaseFailure(name, f"{type(exc).__name__}: {exc}"))
            if progress is not None:
                progress("".join(traceback.format_exception(exc)))
            status = "FAILED"
        else:
            status = "ok"
        if progress is not None:
            took = time.perf_counter() - started
            progress(f"[{index}/{len(selected)}] {name}: {status} ({took:.1f} s)")
    return results, failures
