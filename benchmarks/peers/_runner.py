"""Running every side through every workload: workers, timeouts, alternating rounds.

Each side (ours, each peer) lives in its own worker process for the whole run
(:class:`WorkerSide`), so one framework's threads, global registries, event-loop policy
or a hang cannot touch another's figures, and a peer that fails to import is reported
rather than breaking the run. Per workload the runner warms every side up once, then
measures ``rounds`` rounds, rotating which side goes first each round so drift in the
machine's speed falls on all sides alike. Every run has a time limit: a run that
exceeds it has its worker killed (and restarted for the next workload) and the workload
shows ``n/a (timed out ...)`` for that side. :class:`InProcessSide` runs an adapter in
this process instead, without a time limit; the smoke test uses it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import attrs

from ._model import PERCENTILES, Kind, PeerAdapter, RawResult, Workload
from ._worker import describe, run_once
from ._worker import main as worker_main

OURS = "ours"
"""The name of our side; every ratio is against it."""

ADAPTERS: dict[str, str] = {
    OURS: "benchmarks.peers._ours:Ours",
    "triotp": "benchmarks.peers._triotp:TriOTP",
    "pykka": "benchmarks.peers._pykka:Pykka",
    "thespian": "benchmarks.peers._thespian:Thespian",
    "autogen-core": "benchmarks.peers._autogen:Autogen",
}
"""Side name to ``"module:Class"`` of its adapter, ours first, then the peers."""

START_TIMEOUT = 120.0
"""Seconds a worker may take to import its framework and report ready."""


@attrs.frozen
class SideInfo:
    """A side that loaded: what it is, and what it cannot do."""

    name: str
    distribution: str | None
    version: str | None
    concurrency: str
    unsupported: Mapping[str, str] = attrs.field(factory=dict)
    caps: Mapping[str, tuple[int, str]] = attrs.field(factory=dict)

    @classmethod
    def from_description(cls, info: Mapping[str, Any]) -> SideInfo:
        """From :func:`~benchmarks.peers._worker.describe`'s mapping."""
        return cls(
            name=str(info["name"]),
            distribution=info["distribution"],
            version=info["version"],
            concurrency=str(info["concurrency"]),
            unsupported=dict(info["unsupported"]),
            caps={key: (int(cap), str(why)) for key, (cap, why) in info["caps"].items()},
        )


@attrs.frozen
class Unavailable:
    """A side that could not be loaded (not installed, import error, worker died)."""

    name: str
    error: str


@attrs.frozen
class RunFailed:
    """One run that raised, timed out or lost its worker."""

    reason: str


class Side(Protocol):
    """Where one side's adapter runs."""

    @property
    def name(self) -> str:
        """The side's name."""
        ...

    def start(self) -> SideInfo | Unavailable:
        """Load the adapter; say what it is or why it is unavailable."""
        ...

    def run(self, key: str, loops: int, size: int, timeout: float) -> RawResult | RunFailed:
        """Run a workload once within ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release the side's resources."""
        ...


class InProcessSide:
    """An adapter run in this process (no time limit: used by the smoke test)."""

    def __init__(self, adapter: PeerAdapter) -> None:
        self.adapter = adapter

    @property
    def name(self) -> str:
        """The adapter's name."""
        return self.adapter.name

    def start(self) -> SideInfo | Unavailable:
        """Call the adapter's ``load()``."""
        try:
            self.adapter.load()
        except Exception as exc:
            return Unavailable(self.name, f"{type(exc).__name__}: {exc}")
        return SideInfo.from_description(describe(self.adapter))

    def run(self, key: str, loops: int, size: int, timeout: float) -> RawResult | RunFailed:
        """Run once; ``timeout`` is not enforced in-process."""
        status, payload = run_once(self.adapter, key, loops, size)
        if status == "ok":
            return payload  # type: ignore[no-any-return]
        return RunFailed(f"failed: {payload}")

    def close(self) -> None:
        """Nothing to release."""


class WorkerSide:
    """An adapter in its own worker process (``multiprocessing`` spawn), time-limited."""

    def __init__(self, name: str, spec: str, *, start_timeout: float = START_TIMEOUT) -> None:
        self._name = name
        self.spec = spec
        self.start_timeout = start_timeout
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def name(self) -> str:
        """The side's name."""
        return self._name

    def start(self) -> SideInfo | Unavailable:
        """Start the worker and wait until its adapter is loaded."""
        self.close()
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(self.spec, child_end), name=f"peer-{self._name}"
        )
        process.daemon = True
        process.start()
        child_end.close()
        self._process, self._connection = process, parent_end
        reply = self._receive(self.start_timeout)
        if isinstance(reply, RunFailed):
            self.close(kill=True)
            return Unavailable(self._name, f"worker did not start: {reply.reason}")
        status, payload = reply
        if status != "ready":
            self.close()
            return Unavailable(self._name, str(payload))
        return SideInfo.from_description(payload)

    def run(self, key: str, loops: int, size: int, timeout: float) -> RawResult | RunFailed:
        """Run once in the worker; kill it if the run takes longer than ``timeout``."""
        if self._connection is None:
            restarted = self.start()
            if isinstance(restarted, Unavailable):
                return RunFailed(f"worker could not be restarted: {restarted.error}")
        assert self._connection is not None
        try:
            self._connection.send((key, loops, size))
        except (OSError, ValueError) as exc:
            self.close(kill=True)
            return RunFailed(f"worker gone: {type(exc).__name__}: {exc}")
        reply = self._receive(timeout)
        if isinstance(reply, RunFailed):
            self.close(kill=True)
            return reply
        status, payload = reply
        if status == "ok":
            return payload  # type: ignore[no-any-return]
        return RunFailed(f"failed: {payload}")

    def _receive(self, timeout: float) -> tuple[str, Any] | RunFailed:
        connection = self._connection
        assert connection is not None
        try:
            if not connection.poll(timeout):
                return RunFailed(f"timed out: one run took over {timeout:g} s")
            reply: tuple[str, Any] = connection.recv()
        except (EOFError, OSError) as exc:
            code = None if self._process is None else self._process.exitcode
            return RunFailed(f"worker died ({type(exc).__name__}, exit code {code})")
        return reply

    def close(self, *, kill: bool = False) -> None:
        """Ask the worker to exit (kill it if it does not, or at once with ``kill``)."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            if not kill:
                with contextlib.suppress(OSError, ValueError):
                    connection.send(None)
            connection.close()
        if process is not None:
            if not kill:
                process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)


def worker_sides(names: Sequence[str] | None = None) -> list[WorkerSide]:
    """Worker sides for ours plus ``names`` (default: every peer), in table order."""
    wanted = set(ADAPTERS) if names is None else {OURS, *names}
    unknown = wanted - set(ADAPTERS)
    if unknown:
        raise KeyError(f"unknown peers {sorted(unknown)}; known: {sorted(ADAPTERS)}")
    return [WorkerSide(name, spec) for name, spec in ADAPTERS.items() if name in wanted]


# -- figures ------------------------------------------------------------------------------


@attrs.frozen
class Figures:
    """One side's figures for one workload.

    Attributes:
        loops: Loops per run this side did (smaller than asked when capped).
        values: Statistic (``""``, ``"p50"``, ``"p99"``) to one figure per round.
        note: Why ``loops`` is smaller than asked, if it is.
    """

    loops: int
    values: Mapping[str, tuple[float, ...]]
    note: str | None = None

    def median(self, statistic: str) -> float:
        """Median over the rounds."""
        return statistics.median(self.values[statistic])

    def spread(self, statistic: str) -> float:
        """Half the min-max range relative to the median (``0.02`` reads as ±2 %)."""
        values = self.values[statistic]
        median = statistics.median(values)
        return (max(values) - min(values)) / 2 / median if median else 0.0


@attrs.frozen
class NotAvailable:
    """Why a side has no figure for a workload; shown as ``n/a (reason)``."""

    reason: str


Outcome = Figures | NotAvailable


@attrs.frozen
class WorkloadResult:
    """Every side's outcome for one workload, ours first."""

    workload: Workload
    loops: int
    outcomes: Mapping[str, Outcome]


@attrs.frozen
class Comparison:
    """A whole run: the sides and every workload's outcomes."""

    sides: Sequence[SideInfo | Unavailable]
    results: Sequence[WorkloadResult]
    rounds: int
    timeout: float


def figures_of(workload: Workload, raw: RawResult, loops: int, size: int) -> dict[str, float]:
    """Statistic name to figure for one run's raw result."""
    if workload.kind is Kind.THROUGHPUT:
        if not isinstance(raw, float) or not raw > 0:
            raise ValueError(f"{workload.key}: expected elapsed seconds > 0, got {raw!r}")
        return {"": loops * size / raw}
    if isinstance(raw, float) or not raw:
        raise ValueError(f"{workload.key}: expected a list of latencies, got {raw!r}")
    latencies = list(raw)
    if len(latencies) == 1:
        return {f"p{p}": latencies[0] for p in PERCENTILES}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {f"p{p}": cuts[p - 1] for p in PERCENTILES}


def compare(
    sides: Sequence[Side],
    workloads: Sequence[Workload],
    *,
    quick: bool,
    rounds: int,
    timeout: float,
    loops_scale: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Start every side, run every workload on each, stop the sides.

    The first side is ours: every ratio is taken against it.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    say = progress or (lambda message: None)
    infos: list[SideInfo | Unavailable] = []
    try:
        for side in sides:
            started = time.perf_counter()
            info = side.start()
            infos.append(info)
            took = time.perf_counter() - started
            if isinstance(info, Unavailable):
                say(f"{side.name}: unavailable ({info.error}) ({took:.1f} s)")
            else:
                say(f"{side.name} {info.version or ''}: ready ({took:.1f} s)")
        results = []
        for workload in workloads:
            started = time.perf_counter()
            results.append(
                _measure(
                    workload,
                    list(zip(sides, infos, strict=True)),
                    quick=quick,
                    rounds=rounds,
                    timeout=timeout,
                    loops_scale=loops_scale,
                )
            )
            say(f"{workload.key}: done ({time.perf_counter() - started:.1f} s)")
    finally:
        for side in sides:
            side.close()
    return Comparison(sides=infos, results=results, rounds=rounds, timeout=timeout)


def _measure(
    workload: Workload,
    sides: Sequence[tuple[Side, SideInfo | Unavailable]],
    *,
    quick: bool,
    rounds: int,
    timeout: float,
    loops_scale: float,
) -> WorkloadResult:
    key, size = workload.key, workload.size
    loops = max(1, round(workload.loops_for(quick) * loops_scale))
    outcomes: dict[str, Outcome] = {}
    plan: dict[str, tuple[Side, int, str | None]] = {}
    for side, info in sides:
        if isinstance(info, Unavailable):
            outcomes[side.name] = NotAvailable(f"unavailable: {info.error}")
        elif key in info.unsupported:
            outcomes[side.name] = NotAvailable(info.unsupported[key])
        elif key in info.caps and info.caps[key][0] < loops:
            cap, why = info.caps[key]
            plan[side.name] = (side, cap, f"capped at {cap:,}: {why}")
        else:
            plan[side.name] = (side, loops, None)

    def attempt(name: str, run_loops: int) -> dict[str, float] | None:
        side = plan[name][0]
        raw = side.run(key, run_loops, size, timeout)
        if isinstance(raw, RunFailed):
            outcomes[name] = NotAvailable(raw.reason)
            return None
        try:
            return figures_of(workload, raw, run_loops, size)
        except ValueError as exc:
            outcomes[name] = NotAvailable(f"failed: {exc}")
            return None

    for name, (_, side_loops, _) in plan.items():
        attempt(name, max(1, side_loops // 4))
    collected: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
    order = list(plan)
    for round_index in range(rounds):
        shift = round_index % len(order) if order else 0
        for name in order[shift:] + order[:shift]:
            if name in outcomes:
                continue
            figures = attempt(name, plan[name][1])
            if figures is not None:
                collected[name].append(figures)
    for name, runs in collected.items():
        if name in outcomes:
            continue
        _, side_loops, note = plan[name]
        values = {stat: tuple(run[stat] for run in runs) for stat in workload.statistics}
        outcomes[name] = Figures(loops=side_loops, values=values, note=note)
    ordered = {side.name: outcomes[side.name] for side, _ in sides}
    return WorkloadResult(workload=workload, loops=loops, outcomes=ordered)
