"""Alert rules and the Grafana dashboard, generated from the metric definitions.

``promtool`` (Debian package ``prometheus``) checks the rule file and runs unit tests
of a few alerts on synthetic series; without it those tests are skipped with a reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from mister_smith import Actor, ActorContext, RuntimeManager
from mister_smith.errors import ConfigError
from mister_smith.monitoring import (
    MetricCatalog,
    MetricKind,
    alert_rules,
    dashboard_rows,
    grafana_dashboard,
    metric_catalog,
    prometheus_rules,
    render_grafana_dashboard,
    render_prometheus_rules,
)

RUNBOOKS = Path(__file__).resolve().parent.parent / "docs" / "runbooks"
SERIES = re.compile(r"\bmister_smith_[a-z0-9_]+")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def _exprs(document: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def test_catalog_reads_every_kind_from_the_code() -> None:
    catalog = metric_catalog()
    restarts = catalog.get("restarts")
    assert restarts.kind is MetricKind.COUNTER
    assert restarts.labels == ("supervisor", "action")
    assert restarts.series == ("mister_smith_restarts_total",)
    depth = catalog.get("mister_smith_mailbox_depth")
    assert (depth.kind, depth.labels, depth.scraped) == (MetricKind.GAUGE, ("actor",), True)
    assert catalog.get("tool_call_duration_seconds").series == (
        "mister_smith_tool_call_duration_seconds_bucket",
        "mister_smith_tool_call_duration_seconds_sum",
        "mister_smith_tool_call_duration_seconds_count",
    )
    assert catalog.owner_of("mister_smith_tool_calls_total") is catalog.get("tool_calls")
    assert catalog.owner_of("mister_smith_tool_calls") is None  # a counter's family name


async def test_catalog_covers_what_a_running_runtime_serves() -> None:
    catalog = metric_catalog()
    async with RuntimeManager.open() as runtime:
        echo = await runtime.actor_system.spawn(Echo, name="echo")
        await echo.ask("hi", timeout=1)
        served = {family.name for family in runtime.metrics.registry.collect()}
        await runtime.graceful_shutdown()
    assert served
    assert served <= {definition.name for definition in catalog}


class Echo(Actor):
    async def handle(self, message: str, ctx: ActorContext) -> str:
        return message


def test_unknown_metric_and_wrong_series_are_typed_errors() -> None:
    catalog = metric_catalog()
    with pytest.raises(ConfigError, match="no metric named 'mister_smith_nope'"):
        catalog.get("nope")
    with pytest.raises(ConfigError, match="is a gauge"):
        catalog.series("mailbox_depth", "_total")


def test_a_metric_removed_from_the_code_breaks_the_rules_and_dashboard() -> None:
    full = metric_catalog()
    definitions = dict(full.definitions)
    del definitions["mister_smith_tool_timeouts"]
    shrunk = MetricCatalog(definitions)
    with pytest.raises(ConfigError, match="mister_smith_tool_timeouts"):
        alert_rules(shrunk)
    with pytest.raises(ConfigError, match="mister_smith_tool_timeouts"):
        dashboard_rows(shrunk)


def test_every_series_an_alert_reads_is_defined() -> None:
    catalog = metric_catalog()
    for rule in alert_rules():
        names = SERIES.findall(rule.expr)
        assert names, rule.name
        for name in names:
            owner = catalog.owner_of(name)
            assert owner is not None, f"{rule.name} reads {name}, which no metric exposes"
            assert owner.name.removeprefix("mister_smith_") in rule.metrics


def test_every_alert_links_an_existing_runbook_and_every_runbook_has_an_alert() -> None:
    document = prometheus_rules(runbook_base_url="https://docs.example/")
    linked = set()
    for rule in document["groups"][0]["rules"]:
        url = rule["annotations"]["runbook_url"]
        page = url.removeprefix("https://docs.example/runbooks/").removesuffix(".html")
        assert (RUNBOOKS / f"{page}.rst").is_file(), f"{rule['alert']}: no runbook {page}"
        linked.add(page)
    pages = {path.stem for path in RUNBOOKS.glob("*.rst")} - {"index"}
    # The durable store reports through exceptions and its actors' supervision (no
    # metric of its own yet), the memory watchdog ends the runtime, and a node's NATS
    # metrics come from its own collector (not the framework's catalog; a lost
    # connection makes the node not ready): their pages are reached from the pages the
    # crash-loop, runtime-down and not-ready alerts link.
    unlinked = pages - linked
    assert unlinked == {"durable-store-errors", "memory-watchdog", "nats-disconnected", "node-lost"}
    for page in unlinked:
        assert any(
            f":doc:`{page}`" in (RUNBOOKS / f"{source}.rst").read_text() for source in linked
        ), page


def test_rule_names_are_unique_and_annotated() -> None:
    rules = alert_rules()
    assert len({rule.name for rule in rules}) == len(rules)
    for rule in rules:
        assert rule.summary
        assert rule.description
        assert rule.name.startswith("MisterSmith")


def test_rule_file_options_and_their_errors() -> None:
    document = yaml.safe_load(
        render_prometheus_rules(group="agents", extra_labels={"team": "platform"})
    )
    (group,) = document["groups"]
    assert group["name"] == "agents"
    assert all(rule["labels"]["team"] == "platform" for rule in group["rules"])
    assert group["rules"][0]["annotations"]["runbook_url"].startswith("runbooks/")
    with pytest.raises(ConfigError, match="must end with '/'"):
        prometheus_rules(runbook_base_url="https://docs.example")
    with pytest.raises(ConfigError, match="not a Prometheus label name"):
        prometheus_rules(extra_labels={"bad-label": "x"})
    with pytest.raises(ConfigError, match="non-empty"):
        prometheus_rules(group=" ")


@needs_promtool
def test_promtool_accepts_the_rule_file(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    path = tmp_path / "rules.yml"
    path.write_text(render_prometheus_rules(runbook_base_url="https://docs.example/"))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@attrs.frozen
class AlertCase:
    """Synthetic series (promtool's expanding notation) and the alert they must fire."""

    alert: str
    series: list[dict[str, str]]
    labels: dict[str, str]


CASES = [
    AlertCase(
        "MisterSmithActorCrashLooping",
        [{"series": 'mister_smith_actor_restarts_total{actor="parser"}', "values": "0+1x20"}],
        {"actor": "parser"},
    ),
    AlertCase(
        "MisterSmithActorStopped",
        [
            {
                "series": 'mister_smith_supervision_decisions_total{supervisor="actors",'
                'action="stop"}',
                "values": "0x12 1x8",
            }
        ],
        {"supervisor": "actors"},
    ),
    AlertCase(
        "MisterSmithMailboxNearlyFull",
        [
            {"series": 'mister_smith_mailbox_depth{actor="slow"}', "values": "950x20"},
            {"series": 'mister_smith_mailbox_capacity{actor="slow"}', "values": "1000x20"},
        ],
        {"actor": "slow"},
    ),
    AlertCase(
        "MisterSmithToolTimeouts",
        [
            {
                "series": 'mister_smith_tool_calls_total{tool="fetch",outcome="ok"}',
                "values": "0+10x20",
            },
            {"series": 'mister_smith_tool_timeouts_total{tool="fetch"}', "values": "0+2x20"},
        ],
        {"tool": "fetch"},
    ),
    AlertCase(
        "MisterSmithModelEndpointFailing",
        [
            {
                "series": 'mister_smith_circuit_breaker_transitions_total{breaker="model:api",'
                'state="open"}',
                "values": "0x12 1x8",
            }
        ],
        {"breaker": "model:api"},
    ),
]


@needs_promtool
def test_promtool_unit_tests_fire_the_alerts(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = tmp_path / "rules.yml"
    document = prometheus_rules()
    for rule in document["groups"][0]["rules"]:
        del rule["annotations"]  # the expressions are under test, not the wording
    rules.write_text(yaml.safe_dump(document))
    by_name = {rule["alert"]: rule for rule in document["groups"][0]["rules"]}
    tests = []
    for case in CASES:
        rule = by_name[case.alert]
        labels = {**case.labels, **rule["labels"]}
        tests.append(
            {
                "interval": "1m",
                "input_series": case.series,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": case.alert,
                        "exp_alerts": [{"exp_labels": labels}],
                    }
                ],
            }
        )
    spec = tmp_path / "tests.yml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "tests": tests}))
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_json_parses_and_every_query_reads_a_defined_series() -> None:
    catalog = metric_catalog()
    dashboard = json.loads(render_grafana_dashboard())
    assert dashboard["uid"] == "mister-smith-runtime"
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    targets = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets", []):
            targets += 1
            names = SERIES.findall(target["expr"])
            assert names, target
            for name in names:
                assert catalog.owner_of(name) is not None, f"{panel['title']}: {name}"
    assert targets >= 20


def test_dashboard_options_and_their_errors() -> None:
    assert grafana_dashboard(title="prod", uid="prod_1")["title"] == "prod"
    with pytest.raises(ConfigError, match="uid"):
        grafana_dashboard(uid="no spaces allowed")
    with pytest.raises(ConfigError, match="title"):
        grafana_dashboard(title="")
