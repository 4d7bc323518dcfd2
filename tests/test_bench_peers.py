"""Smoke tests of the peers comparison: our side of every workload, the runner, the table
and the JSON, with tiny loops and fake peers.

No peer library is needed (``nox -s tests`` does not install them) and no test asserts
a timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from benchmarks import Better
from benchmarks.peers.__main__ import main
from benchmarks.peers._model import FANOUT, WORKLOADS, PeerAdapter, workload
from benchmarks.peers._ours import Ours
from benchmarks.peers._report import format_table, ratio, results_document, verdict
from benchmarks.peers._runner import (
    OURS,
    Comparison,
    Figures,
    InProcessSide,
    NotAvailable,
    RunFailed,
    SideInfo,
    Unavailable,
    WorkerSide,
    compare,
    figures_of,
)

TINY = 0.002
"""Loops scale: every workload runs a handful of operations."""

FIGURE_KEYS = {
    "status",
    "median",
    "min",
    "max",
    "stdev",
    "spread",
    "values",
    "loops",
    "work",
    "note",
}
RESULT_KEYS = {
    "workload",
    "title",
    "statistic",
    "kind",
    "unit",
    "better",
    "ratio",
    "description",
    "loops",
    "size",
    "ours",
    "peers",
}


def _elapsed_since(started: float) -> float:
    return max(time.perf_counter() - started, 1e-9)


class FakePeer(PeerAdapter):
    """Does trivial work; cannot restart; spawn + stop is capped; fan-out breaks."""

    name: ClassVar[str] = "fake"
    concurrency: ClassVar[str] = "plain loops in the caller's thread"
    unsupported: ClassVar[dict[str, str]] = {"restart": "fake has no supervision"}
    caps: ClassVar[dict[str, tuple[int, str]]] = {"spawn_stop": (1, "fake can hold one")}

    def tell(self, loops: int) -> float:
        started = time.perf_counter()
        sink = list(range(loops))
        assert len(sink) == loops
        return _elapsed_since(started)

    def ask(self, loops: int) -> Sequence[float]:
        return [1e-6 * (1 + i % 3) for i in range(loops)]

    def fanout(self, loops: int, actors: int) -> float:
        raise RuntimeError("fake fan-out is broken")

    def spawn_stop(self, loops: int) -> float:
        assert loops == 1
        return 1e-3


class MissingPeer(PeerAdapter):
    """A peer whose library is not installed."""

    name: ClassVar[str] = "missing"
    concurrency: ClassVar[str] = "none"

    def load(self) -> None:
        raise ModuleNotFoundError("No module named 'missing_peer'")


class HangingPeer(PeerAdapter):
    """Never finishes a tell (for the worker time limit)."""

    name: ClassVar[str] = "hanging"
    concurrency: ClassVar[str] = "sleeps"

    def tell(self, loops: int) -> float:
        time.sleep(60)
        return 1.0


def assert_document(document: dict[str, Any], *, sides: Sequence[str]) -> None:
    """The JSON has every promised field, ratios against ours, and reasons for n/a."""
    assert document["schema"] == 1
    assert document["kind"] == "peers"
    assert isinstance(document["timestamp"], str)
    assert {"python", "platform", "cpu_count", "trio"} <= document["machine"].keys()
    assert {"rounds", "timeout"} <= document["settings"].keys()
    assert [side["name"] for side in document["sides"]] == list(sides)
    for side in document["sides"]:
        assert side["status"] in {"ok", "unavailable"}
        if side["status"] == "unavailable":
            assert side["error"]
        else:
            assert side["concurrency"]
    assert document["results"]
    for entry in document["results"]:
        assert entry.keys() == RESULT_KEYS
        assert entry["better"] in {"higher", "lower"}
        assert entry["ratio"] == "peer / ours"
        assert list(entry["peers"]) == [name for name in sides if name != OURS]
        outcomes = [("ours", entry["ours"]), *entry["peers"].items()]
        for name, outcome in outcomes:
            if outcome["status"] == "n/a":
                assert outcome.keys() == {"status", "reason"}
                assert isinstance(outcome["reason"], str)
                assert outcome["reason"].strip(), f"{name} n/a without a reason"
                continue
            assert outcome["status"] == "ok"
            expected = FIGURE_KEYS if name == "ours" else FIGURE_KEYS | {"ratio", "verdict"}
            assert outcome.keys() == expected
            assert len(outcome["values"]) == document["settings"]["rounds"]
            assert outcome["median"] > 0
            assert outcome["loops"] >= 1
            if name != "ours" and entry["ours"]["status"] == "ok":
                assert outcome["ratio"] == pytest.approx(
                    outcome["median"] / entry["ours"]["median"]
                )
                assert isinstance(outcome["verdict"], str)


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    """Ours (every workload, tiny loops) next to a fake peer and a missing one."""
    sides = [InProcessSide(Ours()), InProcessSide(FakePeer()), InProcessSide(MissingPeer())]
    return compare(sides, WORKLOADS, quick=True, rounds=2, timeout=30.0, loops_scale=TINY)


def test_ours_runs_every_workload(comparison: Comparison) -> None:
    assert [result.workload for result in comparison.results] == list(WORKLOADS)
    for result in comparison.results:
        ours = result.outcomes[OURS]
        assert isinstance(ours, Figures), (result.workload.key, ours)
        assert ours.loops == result.loops
        for statistic in result.workload.statistics:
            assert len(ours.values[statistic]) == 2
            assert all(value > 0 for value in ours.values[statistic])


def test_peer_outcomes_carry_reasons(comparison: Comparison) -> None:
    by_key = {result.workload.key: result.outcomes for result in comparison.results}
    assert isinstance(by_key["tell"]["fake"], Figures)
    assert by_key["restart"]["fake"] == NotAvailable("fake has no supervision")
    fanout = by_key["fanout"]["fake"]
    assert isinstance(fanout, NotAvailable)
    assert "RuntimeError: fake fan-out is broken" in fanout.reason
    capped = by_key["spawn_stop"]["fake"]
    assert isinstance(capped, Figures)
    assert capped.loops == 1
    assert capped.note == "capped at 1: fake can hold one"
    for outcomes in by_key.values():
        missing = outcomes["missing"]
        assert isinstance(missing, NotAvailable)
        assert "ModuleNotFoundError" in missing.reason
    assert comparison.sides[2] == Unavailable(
        "missing", "ModuleNotFoundError: No module named 'missing_peer'"
    )


def test_table_shows_every_side_and_reason(comparison: Comparison) -> None:
    table = format_table(comparison)
    assert "peer/ours" in table
    assert "n/a (fake has no supervision)" in table
    assert "n/a (failed: RuntimeError: fake fan-out is broken)" in table
    assert "n/a (unavailable: ModuleNotFoundError" in table
    assert "capped at 1: fake can hold one" in table
    for result in comparison.results:
        assert result.workload.title in table
    assert "missing: unavailable" in table


def test_json_document(comparison: Comparison, tmp_path: Path) -> None:
    document = results_document(comparison, settings={"quick": True})
    path = tmp_path / "peers.json"
    path.write_text(json.dumps(document, allow_nan=False), encoding="utf-8")
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert_document(loaded, sides=[OURS, "fake", "missing"])
    rows = {(entry["workload"], entry["statistic"]) for entry in loaded["results"]}
    assert ("ask", "p50") in rows
    assert ("ask", "p99") in rows
    assert ("tell", None) in rows


def test_figures_and_verdicts() -> None:
    tell, ask = workload("tell"), workload("ask")
    assert figures_of(tell, 0.5, 100, 1) == {"": 200.0}
    assert figures_of(FANOUT, 2.0, 3, 1_000) == {"": 1_500.0}
    assert figures_of(ask, [0.25], 1, 1) == {"p50": 0.25, "p99": 0.25}
    with pytest.raises(ValueError, match="elapsed"):
        figures_of(tell, 0.0, 1, 1)
    assert ratio(2.0, 1.0) == 2.0
    assert ratio(1.0, 0.0) is None
    assert verdict(Better.HIGHER, 2.0, "p") == "p 2.0x better"
    assert verdict(Better.LOWER, 2.0, "p") == "ours 2.0x better"
    assert verdict(Better.LOWER, 1.01, "p").startswith("even")
    with pytest.raises(KeyError):
        workload("nope")


def test_worker_runs_ours_and_reports_import_failures() -> None:
    ours = WorkerSide(OURS, "benchmarks.peers._ours:Ours")
    try:
        info = ours.start()
        assert isinstance(info, SideInfo)
        assert info.name == OURS
        latencies = ours.run("ask", 3, 1, 30.0)
        assert isinstance(latencies, list)
        assert len(latencies) == 3
        failed = ours.run("nope", 1, 1, 30.0)
        assert isinstance(failed, RunFailed)
        assert "KeyError" in failed.reason
    finally:
        ours.close()
    missing = WorkerSide("missing", "benchmarks.peers._no_such_peer:Peer")
    unavailable = missing.start()
    assert isinstance(unavailable, Unavailable)
    assert "ModuleNotFoundError" in unavailable.error


def test_worker_time_limit() -> None:
    side = WorkerSide("hanging", f"{__name__}:HangingPeer")
    try:
        assert isinstance(side.start(), SideInfo)
        outcome = side.run("tell", 1, 1, 0.5)
        assert outcome == RunFailed("timed out: one run took over 0.5 s")
    finally:
        side.close()


def test_cli_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end through worker processes; peers not installed here show as unavailable."""
    path = tmp_path / "peers_results.json"
    argv = ["--quick", "--rounds", "1", "--loops-scale", str(TINY), "--json", str(path)]
    argv += ["--workload", "ask", "--workload", "restart", "--peer", "pykka"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ask round trip" in out
    assert "pykka" in out
    document = json.loads(path.read_text(encoding="utf-8"))
    assert_document(document, sides=[OURS, "pykka"])
    restart = [entry for entry in document["results"] if entry["workload"] == "restart"]
    assert restart
    for entry in restart:
        assert entry["ours"]["status"] == "ok"
        assert entry["peers"]["pykka"]["status"] == "n/a"
