"""The side-by-side table for people and ``peers_results.json`` for machines."""

from __future__ import annotations

import datetime
import math
import statistics
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from .._cases import Better
from .._report import machine_info
from ._model import Kind, Workload
from ._runner import (
    OURS,
    Comparison,
    Figures,
    NotAvailable,
    Outcome,
    SideInfo,
    Unavailable,
    WorkloadResult,
)

SCHEMA_VERSION = 1
EVEN = 1.05
"""Within this factor either way a verdict reads "even"."""


def format_figure(workload: Workload, value: float) -> str:
    """E.g. ``"251k msgs/s"`` or ``"14.2 µs"``."""
    if workload.kind is Kind.THROUGHPUT:
        for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= factor:
                return f"{value / factor:.3g}{prefix} {workload.unit}"
        return f"{value:.3g} {workload.unit}"
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def ratio(peer: float, ours: float) -> float | None:
    """``peer / ours``, or ``None`` when it is not a finite positive number."""
    if not ours > 0 or not peer > 0:
        return None
    value = peer / ours
    return value if math.isfinite(value) else None


def verdict(better: Better, peer_over_ours: float, peer: str) -> str:
    """Who wins a row and by how much, e.g. ``"ours 2.3x better"``."""
    advantage = peer_over_ours if better is Better.HIGHER else 1 / peer_over_ours
    if advantage >= EVEN:
        return f"{peer} {_factor(advantage)} better"
    if advantage <= 1 / EVEN:
        return f"ours {_factor(1 / advantage)} better"
    return f"even (within {EVEN - 1:.0%})"


def _factor(value: float) -> str:
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def _heading(workload: Workload, statistic: str) -> str:
    stat = f" {statistic}" if statistic else ""
    unit = workload.unit if workload.kind is Kind.THROUGHPUT else "latency"
    return f"{workload.title}{stat}  ({unit}, {workload.better.value} is better)"


def _work(result: WorkloadResult, figures: Figures) -> str:
    work = result.workload.describe_work(figures.loops)
    return f"{work} ({figures.note})" if figures.note else work


def format_table(comparison: Comparison) -> str:
    """One section per workload row (per percentile for latencies), one line per side."""
    header = ("side", "figure", "peer/ours", "verdict", "spread", "work per run")
    sections: list[tuple[str, list[tuple[str, ...] | tuple[str, str]]]] = []
    for result in comparison.results:
        for statistic in result.workload.statistics:
            sections.append((_heading(result.workload, statistic), _rows(result, statistic)))
    table_rows = [row for _, rows in sections for row in rows if len(row) == len(header)]
    widths = [max(len(row[i]) for row in [header, *table_rows]) for i in range(len(header))]
    right_aligned = {1, 2, 4}

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("  " + "  ".join(padded)).rstrip()

    out = [line(header), "-" * len(line(header))]
    for heading, rows in sections:
        out.append(heading)
        for row in rows:
            if len(row) == len(header):
                out.append(line(row))
            else:
                out.append(f"  {row[0].ljust(widths[0])}  {row[1]}")
    out.append("-" * len(line(header)))
    out += _legend(comparison)
    return "\n".join(out)


def _rows(result: WorkloadResult, statistic: str) -> list[tuple[str, ...] | tuple[str, str]]:
    workload = result.workload
    ours = result.outcomes.get(OURS)
    ours_median = ours.median(statistic) if isinstance(ours, Figures) else None
    rows: list[tuple[str, ...] | tuple[str, str]] = []
    for name, outcome in result.outcomes.items():
        if isinstance(outcome, NotAvailable):
            rows.append((name, f"n/a ({outcome.reason})"))
            continue
        median = outcome.median(statistic)
        peer_ratio = None if ours_median is None else ratio(median, ours_median)
        if name == OURS:
            ratio_cell, verdict_cell = "", ""
        elif peer_ratio is None:
            ratio_cell, verdict_cell = "n/a", "no figure of ours to compare"
        else:
            ratio_cell = f"{peer_ratio:.2f}x"
            verdict_cell = verdict(workload.better, peer_ratio, name)
        rows.append(
            (
                name,
                format_figure(workload, median),
                ratio_cell,
                verdict_cell,
                f"±{outcome.spread(statistic):.1%}",
                _work(result, outcome),
            )
        )
    return rows


def _legend(comparison: Comparison) -> list[str]:
    text = (
        f"figure = median over {comparison.rounds} rounds; sides run in their own worker "
        "processes in one run, rotating which goes first each round. peer/ours = the "
        "peer's median over ours: above 1 the peer's figure is larger, which is better "
        "where higher is better (throughput) and worse where lower is better (latency). "
        "verdict names the better side. spread = half the min-max range over the "
        f"rounds, relative to the median. Each run is limited to {comparison.timeout:g} s."
    )
    lines = textwrap.wrap(text, 88)
    lines.append("sides:")
    for side in comparison.sides:
        if isinstance(side, Unavailable):
            lines.append(f"  {side.name}: unavailable ({side.error})")
        else:
            version = f" {side.version}" if side.version else ""
            lines.append(f"  {side.name}{version}: {side.concurrency}")
    return lines


# -- JSON ---------------------------------------------------------------------------------


def results_document(comparison: Comparison, *, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready document written to ``peers_results.json``."""
    return {
        "schema": SCHEMA_VERSION,
        "kind": "peers",
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {**settings, "rounds": comparison.rounds, "timeout": comparison.timeout},
        "sides": [_side_entry(side) for side in comparison.sides],
        "results": [
            _result_entry(result, statistic)
            for result in comparison.results
            for statistic in result.workload.statistics
        ],
    }


def _side_entry(side: SideInfo | Unavailable) -> dict[str, Any]:
    if isinstance(side, Unavailable):
        return {"name": side.name, "status": "unavailable", "error": side.error}
    return {
        "name": side.name,
        "status": "ok",
        "distribution": side.distribution,
        "version": side.version,
        "concurrency": side.concurrency,
        "unsupported": dict(side.unsupported),
        "caps": {key: {"loops": cap, "why": why} for key, (cap, why) in side.caps.items()},
    }


def _result_entry(result: WorkloadResult, statistic: str) -> dict[str, Any]:
    workload = result.workload
    ours = result.outcomes.get(OURS)
    ours_median = ours.median(statistic) if isinstance(ours, Figures) else None
    return {
        "workload": workload.key,
        "title": workload.title,
        "statistic": statistic or None,
        "kind": workload.kind.value,
        "unit": workload.unit,
        "better": workload.better.value,
        "ratio": "peer / ours",
        "description": workload.description,
        "loops": result.loops,
        "size": workload.size,
        "ours": _outcome_entry(result, ours, statistic)
        if ours is not None
        else {"status": "n/a", "reason": "ours was not run"},
        "peers": {
            name: _outcome_entry(result, outcome, statistic, peer=name, ours_median=ours_median)
            for name, outcome in result.outcomes.items()
            if name != OURS
        },
    }


def _outcome_entry(
    result: WorkloadResult,
    outcome: Outcome,
    statistic: str,
    *,
    peer: str | None = None,
    ours_median: float | None = None,
) -> dict[str, Any]:
    """One side's figures; for a peer also ``ratio`` (peer / ours) and ``verdict``."""
    if isinstance(outcome, NotAvailable):
        return {"status": "n/a", "reason": outcome.reason}
    values = outcome.values[statistic]
    median = outcome.median(statistic)
    entry: dict[str, Any] = {
        "status": "ok",
        "median": median,
        "min": min(values),
        "max": max(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "spread": outcome.spread(statistic),
        "values": list(values),
        "loops": outcome.loops,
        "work": result.workload.describe_work(outcome.loops),
        "note": outcome.note,
    }
    if peer is not None:
        peer_ratio = None if ours_median is None else ratio(median, ours_median)
        entry["ratio"] = peer_ratio
        entry["verdict"] = (
            None if peer_ratio is None else verdict(result.workload.better, peer_ratio, peer)
        )
    return entry
