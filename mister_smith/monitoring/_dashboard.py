"""A Grafana dashboard built from the metric definitions.

Like the alert rules (:mod:`._rules`), every query names its series through
:func:`~._catalog.metric_catalog`, so the dashboard follows the code. The JSON is
Grafana's dashboard model (``schemaVersion`` 39, time-series and stat panels) with a
``datasource`` template variable, ready for *Dashboards → Import* or provisioning.
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs

from ..errors import ConfigError
from ._catalog import MetricCatalog, metric_catalog

DASHBOARD_UID: Final = "mister-smith-runtime"
"""The dashboard's default uid (stable, so re-imports replace it)."""

SCHEMA_VERSION: Final = 39
"""Grafana dashboard schema version written."""

_DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH: Final = 24
_PANEL_HEIGHT: Final = 8


@attrs.frozen
class DashboardQuery:
    """One PromQL query of a panel.

    Attributes:
        expr: The expression.
        legend: Grafana's legend format (``{{actor}}``...).
    """

    expr: str
    legend: str = ""


@attrs.frozen
class DashboardPanel:
    """One dashboard panel.

    Attributes:
        title: Its title.
        queries: Its queries.
        unit: Grafana unit id (``short``, ``s``, ``percentunit``, ``ops``...).
        kind: ``timeseries`` or ``stat``.
        width: Grid columns of 24.
        description: Shown in the panel's info tooltip.
    """

    title: str
    queries: tuple[DashboardQuery, ...]
    unit: str = "short"
    kind: str = attrs.field(
        default="timeseries", validator=attrs.validators.in_(("timeseries", "stat"))
    )
    width: int = 12
    description: str = ""


@attrs.frozen
class DashboardRow:
    """A titled row of panels."""

    title: str
    panels: tuple[DashboardPanel, ...]


def dashboard_rows(catalog: MetricCatalog | None = None) -> tuple[DashboardRow, ...]:
    """The dashboard's rows and panels, built against ``catalog`` (default: the code's).

    Raises:
        ConfigError: a panel uses a metric or series the catalog does not define.
    """
    c = metric_catalog() if catalog is None else catalog

    def rate(name: str, by: str = "", window: str = "$__rate_interval") -> str:
        inner = f"rate({c.series(name, '_total')}[{window}])"
        return f"sum by ({by}) ({inner})" if by else f"sum({inner})"

    def quantile(q: float, name: str, by: str) -> str:
        bucket = c.series(name, "_bucket")
        return f"histogram_quantile({q}, sum by (le, {by}) (rate({bucket}[$__rate_interval])))"

    return (
        DashboardRow(
            "Health",
            (
                DashboardPanel("Live", (DashboardQuery(c.series("live")),), kind="stat", width=6),
                DashboardPanel("Ready", (DashboardQuery(c.series("ready")),), kind="stat", width=6),
                DashboardPanel(
                    "Actors alive", (DashboardQuery(c.series("actors")),), kind="stat", width=6
                ),
                DashboardPanel(
                    "Unhealthy components",
                    (DashboardQuery(f'sum({c.series("health_status")}{{status="unhealthy"}})'),),
                    kind="stat",
                    width=6,
                ),
            ),
        ),
        DashboardRow(
            "Supervision",
            (
                DashboardPanel(
                    "Restarts by supervisor",
                    (
                        DashboardQuery(
                            rate("restarts", "supervisor, action"), "{{supervisor}} {{action}}"
                        ),
                    ),
                    unit="ops",
                    description="Children brought back by their supervisor.",
                ),
                DashboardPanel(
                    "Supervision decisions",
                    (DashboardQuery(rate("supervision_decisions", "action"), "{{action}}"),),
                    unit="ops",
                    description="'stop' is an actor that spent its restart budget.",
                ),
                DashboardPanel(
                    "Actor restarts (top 10)",
                    (
                        DashboardQuery(
                            f"topk(10, increase({c.series('actor_restarts', '_total')}[1h]))",
                            "{{actor}}",
                        ),
                    ),
                ),
                DashboardPanel(
                    "Circuit breaker transitions",
                    (
                        DashboardQuery(
                            rate("circuit_breaker_transitions", "breaker, state"),
                            "{{breaker}} → {{state}}",
                        ),
                    ),
                    unit="ops",
                ),
                DashboardPanel(
                    "Errors by severity",
                    (DashboardQuery(rate("errors", "severity"), "{{severity}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Heartbeats missed",
                    (DashboardQuery(rate("heartbeats_missed"), "hung children"),),
                    unit="ops",
                ),
            ),
        ),
        DashboardRow(
            "Messages",
            (
                DashboardPanel(
                    "Mailbox fill (top 10)",
                    (
                        DashboardQuery(
                            f"topk(10, {c.series('mailbox_depth')}"
                            f" / {c.series('mailbox_capacity')})",
                            "{{actor}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                DashboardPanel(
                    "Messages by outcome",
                    (DashboardQuery(rate("messages", "outcome"), "{{outcome}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Dead letters by reason",
                    (DashboardQuery(rate("dead_letters", "reason"), "{{reason}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Message handling p99",
                    (
                        DashboardQuery(
                            quantile(0.99, "message_duration_seconds", "actor"), "{{actor}}"
                        ),
                    ),
                    unit="s",
                ),
                DashboardPanel(
                    "Events emitted and dropped",
                    (
                        DashboardQuery(rate("events_emitted"), "emitted"),
                        DashboardQuery(rate("events_dropped"), "dropped"),
                    ),
                    unit="ops",
                    width=_WIDTH,
                ),
            ),
        ),
        DashboardRow(
            "Tools",
            (
                DashboardPanel(
                    "Tool calls by outcome",
                    (DashboardQuery(rate("tool_calls", "tool, outcome"), "{{tool}} {{outcome}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Tool timeouts",
                    (DashboardQuery(rate("tool_timeouts", "tool"), "{{tool}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Tool latency p50 / p99",
                    (
                        DashboardQuery(
                            quantile(0.5, "tool_call_duration_seconds", "tool"), "p50 {{tool}}"
                        ),
                        DashboardQuery(
                            quantile(0.99, "tool_call_duration_seconds", "tool"), "p99 {{tool}}"
                        ),
                    ),
                    unit="s",
                    width=_WIDTH,
                ),
            ),
        ),
        DashboardRow(
            "Loop and resources",
            (
                DashboardPanel(
                    "Loop blocked (seconds per second)",
                    (
                        DashboardQuery(
                            f"rate({c.series('loop_blocked_seconds', '_sum')}[$__rate_interval])"
                        ),
                    ),
                    unit="percentunit",
                    description="Share of wall time the Trio loop was held by blocking steps.",
                ),
                DashboardPanel(
                    "Blocking steps",
                    (DashboardQuery(rate("loop_blocked_steps"), "blocked steps"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Pool connections",
                    (
                        DashboardQuery(
                            f"sum by (pool, state) ({c.series('pool_connections')})",
                            "{{pool}} {{state}}",
                        ),
                        DashboardQuery(
                            f"sum by (pool) ({c.series('pool_max_size')})", "{{pool}} max"
                        ),
                    ),
                ),
                DashboardPanel(
                    "Pool waiters and exhaustion",
                    (
                        DashboardQuery(
                            f"sum by (pool) ({c.series('pool_waiting')})", "{{pool}} waiting"
                        ),
                        DashboardQuery(rate("pool_exhausted", "pool"), "{{pool}} exhausted/s"),
                    ),
                ),
                DashboardPanel(
                    "Tasks by outcome",
                    (DashboardQuery(rate("tasks", "outcome"), "{{outcome}}"),),
                    unit="ops",
                ),
                DashboardPanel(
                    "Metric labels pooled as 'other'",
                    (DashboardQuery(rate("metric_label_overflows", "label"), "{{label}}"),),
                    unit="ops",
                    description="Non-zero: a label hit its distinct-value budget.",
                ),
            ),
        ),
    )


def grafana_dashboard(
    *,
    title: str = "mister_smith runtime",
    uid: str = DASHBOARD_UID,
    catalog: MetricCatalog | None = None,
) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict).

    Args:
        title: The dashboard's title.
        uid: Its uid (1-40 characters of letters, digits, ``-`` and ``_``).
        catalog: The metric definitions (default: the code's).

    Raises:
        ConfigError: an empty title, or a uid Grafana would refuse.
    """
    if not title.strip():
        raise ConfigError("title must not be empty")
    if not (1 <= len(uid) <= 40 and all(ch.isalnum() or ch in "-_" for ch in uid)):
        raise ConfigError(f"uid must be 1-40 letters, digits, '-' or '_', got {uid!r}")
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row in dashboard_rows(catalog):
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > _WIDTH:
                x = 0
                y += _PANEL_HEIGHT
            panels.append(_panel(panel, next_id, x, y))
            next_id += 1
            x += panel.width
        y += _PANEL_HEIGHT
    return {
        "uid": uid,
        "title": title,
        "tags": ["mister-smith"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(panel: DashboardPanel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": dict(_DATASOURCE),
            "expr": query.expr,
            "legendFormat": query.legend,
        }
        for index, query in enumerate(panel.queries)
    ]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(_DATASOURCE),
        "gridPos": {"h": _PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }


def render_grafana_dashboard(
    *, title: str = "mister_smith runtime", uid: str = DASHBOARD_UID
) -> str:
    """The Grafana dashboard as JSON text (see :func:`grafana_dashboard`).

    Raises:
        ConfigError: see :func:`grafana_dashboard`.
    """
    return json.dumps(grafana_dashboard(title=title, uid=uid), indent=2) + "\n"
