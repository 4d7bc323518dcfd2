"""Smoke tests of the benchmark harness: it runs and writes complete, valid JSON.

No test here asserts a timing; loops are shrunk so the whole file takes a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from benchmarks import Latency, Memory, PeakMemory, Stopwatch, Throughput
from benchmarks.__main__ import main
from benchmarks._report import format_table, results_document, write_json
from benchmarks._runner import discover, matches, run_all, select

REPO_ROOT = Path(__file__).resolve().parents[1]

RESULT_KEYS = {
    "name",
    "suite",
    "case",
    "kind",
    "statistic",
    "unit",
    "better",
    "baseline_label",
    "description",
    "ours",
    "baseline",
    "ratio",
    "rounds",
    "loops",
}
SUMMARY_KEYS = {"median", "min", "max", "stdev", "spread", "values"}
MACHINE_KEYS = {"python", "implementation", "platform", "machine", "cpu_count", "trio"}


def assert_complete(document: dict[str, Any]) -> None:
    """Every field the README promises is present and plausible."""
    assert document["schema"] == 1
    assert isinstance(document["timestamp"], str)
    assert document["machine"].keys() >= MACHINE_KEYS
    assert isinstance(document["machine"]["cpu_count"], int)
    assert document["settings"].keys() >= {"quick", "rounds", "loops_scale"}
    assert document["results"]
    for entry in document["results"]:
        assert entry.keys() == RESULT_KEYS
        assert entry["better"] in {"higher", "lower"}
        assert entry["kind"] in {"throughput", "latency", "memory"}
        assert entry["loops"] >= 1
        assert entry["ratio"] is None or entry["ratio"] > 0
        for side in ("ours", "baseline"):
            assert entry[side].keys() == SUMMARY_KEYS
            assert len(entry[side]["values"]) == entry["rounds"]
            assert entry[side]["min"] <= entry[side]["median"] <= entry[side]["max"]


def test_quick_run_of_bench_events_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", "events/*"]
    command += ["--loops-scale", "0.02", "--json", str(out)]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("case ")
    assert "ratio = ours / baseline" in completed.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert_complete(document)
    assert document["settings"]["quick"] is True
    assert document["failures"] == []
    names = {entry["name"] for entry in document["results"]}
    assert {f"events/emit, {n} stream{'' if n == 1 else 's'}" for n in (0, 1, 10, 100)} <= names
    for entry in document["results"]:
        assert entry["rounds"] == 3


TINY_MODULE = """
    from collections.abc import Sequence

    import trio

    from benchmarks import BenchCase, Latency, Memory, PeakMemory, Stopwatch, Throughput


    async def checkpoints(loops: int) -> float:
        stopwatch = Stopwatch()
        with stopwatch:
            for _ in range(loops):
                await trio.lowlevel.checkpoint()
        return stopwatch.elapsed


    async def latencies(loops: int) -> list[float]:
        return [float(i + 1) for i in range(loops)]


    async def allocate(loops: int) -> int:
        with PeakMemory() as memory:
            kept = [bytearray(100) for _ in range(loops)]
        del kept
        return memory.peak


    async def broken(loops: int) -> float:
        raise ValueError("boom")


    def cases(quick: bool) -> Sequence[BenchCase]:
        return [
            Throughput(name="checkpoints", loops=10, ours=checkpoints, baseline=checkpoints),
            Latency(
                name="steps", loops=10, ours=latencies, baseline=latencies,
                percentiles=(50, 90, 99),
            ),
            Memory(name="bytearrays", unit="B/array", loops=10, ours=allocate, baseline=allocate),
            Throughput(name="broken", loops=1, ours=broken, baseline=checkpoints),
        ]
"""


def test_synthetic_module_through_the_api(tmp_path: Path) -> None:
    (tmp_path / "bench_tiny.py").write_text(textwrap.dedent(TINY_MODULE), encoding="utf-8")
    (tmp_path / "not_a_bench.py").write_text("raise AssertionError('imported')\n")
    modules = discover(tmp_path)
    assert [module.suite for module in modules] == ["tiny"]

    selected = select(modules, quick=True)
    assert [case.name for _, case in selected] == ["checkpoints", "steps", "bytearrays", "broken"]
    assert [case.name for _, case in select(modules, quick=True, only=["*/B*"])] == [
        "bytearrays",
        "broken",
    ]

    results, failures = run_all(selected, rounds=2)
    assert [result.name for result in results] == [
        "tiny/checkpoints",
        "tiny/steps [p50]",
        "tiny/steps [p90]",
        "tiny/steps [p99]",
        "tiny/bytearrays",
    ]
    assert [failure.name for failure in failures] == ["tiny/broken"]
    assert "ValueError: boom" in failures[0].error
    steps = {result.statistic: result.ours.median for result in results[1:4]}
    assert steps == {"p50": 5.5, "p90": pytest.approx(9.1), "p99": pytest.approx(9.91)}
    assert results[4].ours.median >= 100  # a bytearray(100) costs at least 100 bytes

    table = format_table(results, failures, rounds=2)
    assert "tiny/broken" in table
    assert "FAILED" in table
    path = tmp_path / "out" / "results.json"
    write_json(
        results_document(
            results, failures, settings={"quick": True, "rounds": 2, "loops_scale": 1.0}
        ),
        path,
    )
    document = json.loads(path.read_text(encoding="utf-8"))
    assert_complete(document)
    assert document["failures"] == [{"name": "tiny/broken", "error": failures[0].error}]


def test_list_and_unmatched_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--list", "--only", "events/emit, 10 streams"]) == 0
    assert capsys.readouterr().out.startswith("events/emit, 10 streams  (throughput")
    assert main(["--quick", "--only", "no such case"]) == 2


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("events", True),
        ("EMIT, 10", True),
        ("events/emit*", True),
        ("*streams", True),
        ("actors/*", False),
        ("handlers", False),
    ],
)
def test_only_patterns(pattern: str, expected: bool) -> None:
    assert matches("events/emit, 10 streams", [pattern]) is expected


def test_no_pattern_selects_everything() -> None:
    assert matches("anything/at all", [])


def test_cases_reject_nonsense() -> None:
    async def never(loops: int) -> float:
        raise AssertionError

    with pytest.raises(ValueError, match="loops"):
        Throughput(name="x", loops=0, ours=never, baseline=never)

    async def no_latencies(loops: int) -> list[float]:
        raise AssertionError

    with pytest.raises(ValueError, match="percentiles"):
        Latency(name="x", loops=1, ours=no_latencies, baseline=no_latencies, percentiles=(100,))


def test_stopwatch_accumulates_only_inside_blocks() -> None:
    stopwatch = Stopwatch()
    assert stopwatch.elapsed == 0.0
    with stopwatch:
        pass
    first = stopwatch.elapsed
    with stopwatch:
        pass
    assert stopwatch.elapsed >= first >= 0.0


def test_peak_memory_counts_what_is_allocated_inside() -> None:
    with PeakMemory() as memory:
        block = bytearray(1_000_000)
    assert memory.peak >= 1_000_000
    assert len(block) == 1_000_000
    assert Memory.better.value == "lower"
