"""Review of issue 12, item 6: ``tool`` labels of *registered* tools were unbounded.

Attack (found in the review): the sibling work labels tool metrics by name only while a
tool of that name is registered, but registered names were trusted without limit.
Tools come and go: every lead-mode team registers ``ask_<team>.<member>`` tools and
drops them when it stops, so a service composing a team per request grew one label set
per team, for ever (1,000 short-lived tools made 1,000 ``tool`` values). Now registered
names share the same per-label budget as every other label taken from events.

Composed with deny-by-default: calls refused by the permission gate are counted under
the tool's (bounded) label with outcome ``denied``, and a made-up name stays ``unknown``
whoever calls it.
"""

from __future__ import annotations

import pytest

from mister_smith.errors import ToolError
from mister_smith.events import EventBus
from mister_smith.monitoring import OTHER_LABEL, UNKNOWN_TOOL, FrameworkMetrics
from mister_smith.tools import EchoTool, ToolBus


def tool_series(metrics: FrameworkMetrics) -> set[tuple[str, str]]:
    return {
        (sample.labels["tool"], sample.labels["outcome"])
        for metric in metrics.registry.collect()
        if metric.name == "mister_smith_tool_calls"
        for sample in metric.samples
        if sample.name == "mister_smith_tool_calls_total"
    }


async def test_short_lived_registered_tools_share_a_bounded_label_set() -> None:
    events = EventBus(history_size=0)
    bus = ToolBus(events=events)
    metrics = FrameworkMetrics(max_label_values=20)
    metrics.attach(events)
    metrics.add_tool_registry(bus)
    caller = bus.identities.mint("lead")
    stranger = bus.identities.mint("stranger")
    for index in range(1_000):  # a team per request, each with its delegate tool
        name = f"ask_team-{index}.writer"
        bus.register_tool(EchoTool(name=name), callers=[caller])
        await bus.call(caller, name, {"message": "hi"})
        with pytest.raises(ToolError):
            await bus.call(stranger, name, {"message": "hi"})
        bus.unregister_tool(name)
        with pytest.raises(ToolError):
            await bus.call(caller, name, {"message": "gone"})
    series = tool_series(metrics)
    names = {tool for tool, _ in series}
    assert len(names) == 20 + 2  # the budget, plus "other" and "unknown"
    assert {OTHER_LABEL, UNKNOWN_TOOL} <= names
    assert (OTHER_LABEL, "denied") in series
    assert (OTHER_LABEL, "ok") in series
    assert (UNKNOWN_TOOL, "not_found") in series
    overflow = metrics.registry.get_sample_value(
        "mister_smith_metric_label_overflows_total", {"label": "tool"}
    )
    assert overflow == 2 * (1_000 - 20)
