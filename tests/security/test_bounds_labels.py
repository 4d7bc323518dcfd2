"""Issue 12, item 6: made-up names cannot grow the metrics' label sets.

The review's case: a model asking for 30,000 made-up tool names made 30,000
Prometheus series (each kept for ever) and a scrape then blocked the loop for 724 ms.
Now a ``tool`` label names only tools registered on the tool bus, and every other
label taken from event text has a budget.
"""

from __future__ import annotations

import time

import pytest
import trio
from prometheus_client import generate_latest

from mister_smith.errors import ToolError
from mister_smith.events import (
    ChildExited,
    DeadLetter,
    EventBus,
    ExitKind,
    ResourcePoolExhausted,
    ToolCalled,
    ToolOutcome,
)
from mister_smith.monitoring import OTHER_LABEL, UNKNOWN_TOOL, FrameworkMetrics
from mister_smith.runtime import RuntimeManager
from mister_smith.tools import EchoTool, ToolBus

MADE_UP = 30_000


def series(metrics: FrameworkMetrics, family: str) -> list[dict[str, str]]:
    """The label sets of ``family`` in the registry."""
    return [
        sample.labels
        for metric in metrics.registry.collect()
        if metric.name == family
        for sample in metric.samples
        if sample.name == f"{family}_total"
    ]


async def test_30000_made_up_tool_names_make_one_unknown_series(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with RuntimeManager.open() as runtime:
        runtime.tool_bus.register_tool(EchoTool())
        metrics = runtime.metrics
        # Through the real bus: an unknown name is refused (NOT_FOUND, or DENIED first
        # under deny-by-default) and announced with the made-up name.
        for index in range(50):
            with pytest.raises(ToolError):
                await runtime.tool_bus.call("model", f"made-up-{index}", {})
        with pytest.raises(ToolError):  # registered; denied or invalid, still "echo"
            await runtime.tool_bus.call("model", "echo", {"nothing": 1})
        # The rest as the bus announces them, also with outcomes a forged event claims.
        for index in range(MADE_UP):
            outcome = ToolOutcome.NOT_FOUND if index % 2 else ToolOutcome.OK
            runtime.events.emit(
                ToolCalled(tool=f"tool-{index}", caller="model", outcome=outcome, duration=0.01)
            )
        tools = {labels["tool"] for labels in series(metrics, "mister_smith_tool_calls")}
        assert tools == {UNKNOWN_TOOL, "echo"}
        assert len(series(metrics, "mister_smith_tool_calls")) <= 2 * len(ToolOutcome)
        started = time.perf_counter()
        body = generate_latest(metrics.registry)
        assert time.perf_counter() - started < 0.1  # was 724 ms with a series per name
        assert b"made-up" not in body
        assert b"tool-1" not in body


def test_a_tool_registered_later_gets_its_label_from_its_first_call() -> None:
    bus, tools, metrics = EventBus(), ToolBus(), FrameworkMetrics()
    metrics.attach(bus)
    metrics.add_tool_registry(tools)
    bus.emit(ToolCalled(tool="search", caller="a", outcome=ToolOutcome.OK))
    tools.register_tool(EchoTool(name="search"))
    bus.emit(ToolCalled(tool="search", caller="a", outcome=ToolOutcome.OK))
    bus.emit(ToolCalled(tool="search", caller="a", outcome=ToolOutcome.NOT_FOUND))
    counts = {
        (labels["tool"], labels["outcome"]) for labels in series(metrics, "mister_smith_tool_calls")
    }
    assert counts == {(UNKNOWN_TOOL, "ok"), ("search", "ok"), (UNKNOWN_TOOL, "not_found")}


def test_without_a_registry_no_name_is_trusted() -> None:
    bus, metrics = EventBus(), FrameworkMetrics()
    metrics.attach(bus)
    bus.emit(ToolCalled(tool="echo", caller="a", outcome=ToolOutcome.OK))
    assert series(metrics, "mister_smith_tool_calls") == [{"tool": UNKNOWN_TOOL, "outcome": "ok"}]


def test_other_labels_from_event_text_have_a_budget() -> None:
    bus, metrics = EventBus(history_size=0), FrameworkMetrics(max_label_values=100)
    metrics.attach(bus)
    for index in range(MADE_UP // 10):
        bus.emit(ChildExited(supervisor=f"sup-{index}", child="c", exit=ExitKind.FAILED))
        bus.emit(ResourcePoolExhausted(pool=f"pool-{index}", waited=1.0))
        bus.emit(
            DeadLetter(
                actor="a",
                message=None,
                reason=f"crashed while handling it: ValueError('secret {index}')",
            )
        )
        metrics.observe_message(f"actor-{index}", 0.01)
    supervisors = {
        labels["supervisor"] for labels in series(metrics, "mister_smith_child_failures")
    }
    assert len(supervisors) == 101
    assert OTHER_LABEL in supervisors
    assert len(series(metrics, "mister_smith_pool_exhausted")) == 101
    assert series(metrics, "mister_smith_dead_letters") == [
        {"reason": "crashed while handling it"}  # the kind, not the quoted error
    ]
    assert (
        metrics.registry.get_sample_value(
            "mister_smith_metric_label_overflows_total", {"label": "supervisor"}
        )
        == MADE_UP // 10 - 100
    )
    body = generate_latest(metrics.registry)
    assert b"secret" not in body
    assert body.count(b"mister_smith_message_duration_seconds_count{") == 101
