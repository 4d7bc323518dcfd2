"""The results table for people and ``results.json`` for machines."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import trio

from ._runner import PACKAGE_DIR, CaseFailure, CaseResult, Summary

SCHEMA_VERSION = 1


def format_table(
    results: Sequence[CaseResult], failures: Sequence[CaseFailure] = (), *, rounds: int
) -> str:
    """One row per case (per percentile for latencies), with a legend of the columns."""
    header = ("case", "ours", "baseline", "ratio", "better", "spread ours/base", "baseline is")
    rows = [
        (
            result.name,
            result.case.format_value(result.ours.median),
            result.case.format_value(result.baseline.median),
            _format_ratio(result.ratio),
            result.better.value,
            f"±{result.ours.spread:.1%} / ±{result.baseline.spread:.1%}",
            result.case.baseline_label,
        )
        for result in results
    ]
    rows += [(failure.name, "FAILED", "", "", "", "", failure.error) for failure in failures]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right_aligned = {1, 2, 3}

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    legend = (
        f"ratio = ours / baseline, medians over {rounds} alternating rounds in one process. "
        "'better' says which way is good for that row: higher for throughput, lower for "
        "latency and memory. spread = half the min-max range over the rounds, relative "
        "to the median."
    )
    rule = "-" * len(line(header))
    return "\n".join(
        [line(header), rule, *(line(row) for row in rows), rule, *textwrap.wrap(legend, 88)]
    )


def _format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else None,
        "memory_total_bytes": psutil.virtual_memory().total,
        "trio": trio.__version__,
        "mister_smith": _distribution_version("mister-smith"),
        "git_commit": _git_commit(),
    }


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def results_document(
    results: Sequence[CaseResult],
    failures: Sequence[CaseFailure],
    *,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON-ready document written to ``results.json``."""
    return {
        "schema": SCHEMA_VERSION,
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": dict(settings),
        "results": [_result_entry(result) for result in results],
        "failures": [{"name": f.name, "error": f.error} for f in failures],
    }


def _result_entry(result: CaseResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "suite": result.suite,
        "case": result.case.name,
        "kind": result.case.kind,
        "statistic": result.statistic or None,
        "unit": result.case.unit,
        "better": result.better.value,
        "baseline_label": result.case.baseline_label,
        "description": result.case.description,
        "ours": _summary_entry(result.ours),
        "baseline": _summary_entry(result.baseline),
        "ratio": result.ratio if math.isfinite(result.ratio) else None,
        "rounds": result.rounds,
        "loops": result.loops,
    }


def _summary_entry(summary: Summary) -> dict[str, Any]:
    return {
        "median": summary.median,
        "min": summary.min,
        "max": summary.max,
        "stdev": summary.stdev,
        "spread": summary.spread,
        "values": list(summary.values),
    }


def write_json(document: Mapping[str, Any], path: Path) -> None:
    """Write ``document`` as indented, strict JSON (no NaN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
