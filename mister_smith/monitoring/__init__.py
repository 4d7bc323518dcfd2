"""Monitoring: Prometheus metrics, OpenTelemetry traces, log level, HTTP endpoints.

:class:`FrameworkMetrics` keeps the framework's metrics in a registry of its own, fed
by event-bus handlers and by ``statistics()`` read on every scrape, with bounded label
sets (a ``tool`` label only for registered tools; other labels taken from events pooled
as ``other`` past a budget). :func:`serve_monitoring` serves ``/health/live``,
``/health/ready``, ``/metrics`` and the live ``/observer`` page (:class:`Observer`)
from inside the Trio loop (:class:`HttpServer`:
every read, write and shutdown bounded by :class:`HttpLimits`; ``/metrics`` rendered
in a worker thread). :func:`tracer` opens sampled OpenTelemetry spans, or no-op ones
when ``opentelemetry-api`` is absent. :func:`apply_log_level` sets the
``mister_smith`` logger tree's level. :func:`render_kubernetes` turns an
``OrchestrationConfig`` into Deployment and HorizontalPodAutoscaler YAML whose probes
point at these endpoints. :func:`render_prometheus_rules` and
:func:`render_grafana_dashboard` write alerting rules (each linked to its runbook) and
a Grafana dashboard from :func:`metric_catalog`, the metric definitions read from the
code, so they never name a metric ``/metrics`` does not serve.
"""

from ._catalog import MetricCatalog as MetricCatalog
from ._catalog import MetricDefinition as MetricDefinition
from ._catalog import MetricKind as MetricKind
from ._catalog import metric_catalog as metric_catalog
from ._dashboard import DashboardPanel as DashboardPanel
from ._dashboard import DashboardQuery as DashboardQuery
from ._dashboard import DashboardRow as DashboardRow
from ._dashboard import dashboard_rows as dashboard_rows
from ._dashboard import grafana_dashboard as grafana_dashboard
from ._dashboard import render_grafana_dashboard as render_grafana_dashboard
from ._http import LIVE_PATH as LIVE_PATH
from ._http import METRICS_PATH as METRICS_PATH
from ._http import READY_PATH as READY_PATH
from ._http import MonitoringApp as MonitoringApp
from ._http import serve_monitoring as serve_monitoring
from ._http_server import HttpLimits as HttpLimits
from ._http_server import HttpServer as HttpServer
from ._kubernetes import autoscaler_manifest as autoscaler_manifest
from ._kubernetes import deployment_manifest as deployment_manifest
from ._kubernetes import render_kubernetes as render_kubernetes
from ._labels import OTHER_LABEL as OTHER_LABEL
from ._labels import UNKNOWN_TOOL as UNKNOWN_TOOL
from ._logging import LOGGER_NAME as LOGGER_NAME
from ._logging import apply_log_level as apply_log_level
from ._metrics import NAMESPACE as NAMESPACE
from ._metrics import FrameworkMetrics as FrameworkMetrics
from ._observer import OBSERVER_JSON_PATH as OBSERVER_JSON_PATH
from ._observer import OBSERVER_PATH as OBSERVER_PATH
from ._observer import Observer as Observer
from ._observer import ObserverLimits as ObserverLimits
from ._observer import ObserverSource as ObserverSource
from ._rules import AlertRule as AlertRule
from ._rules import alert_rules as alert_rules
from ._rules import prometheus_rules as prometheus_rules
from ._rules import render_prometheus_rules as render_prometheus_rules
from ._sources import ActorMetricsSource as ActorMetricsSource
from ._sources import BlockingMetricsSource as BlockingMetricsSource
from ._sources import EventBusMetricsSource as EventBusMetricsSource
from ._sources import HealthSource as HealthSource
from ._sources import HealthView as HealthView
from ._sources import PoolMetricsSource as PoolMetricsSource
from ._sources import ToolRegistryLike as ToolRegistryLike
from ._tracing import MESSAGE_SPAN as MESSAGE_SPAN
from ._tracing import MODEL_OPERATION as MODEL_OPERATION
from ._tracing import NOOP_SPAN as NOOP_SPAN
from ._tracing import TOOL_SPAN as TOOL_SPAN
from ._tracing import Span as Span
from ._tracing import Tracer as Tracer
from ._tracing import TracingMiddleware as TracingMiddleware
from ._tracing import active_tracer as active_tracer
from ._tracing import opentelemetry_available as opentelemetry_available
from ._tracing import record_model_response as record_model_response
from ._tracing import tracer as tracer
from ._tracing import using_tracer as using_tracer

__all__ = [
    "MODEL_OPERATION",
    "active_tracer",
    "record_model_response",
    "using_tracer",
    "OBSERVER_JSON_PATH",
    "OBSERVER_PATH",
    "Observer",
    "ObserverLimits",
    "ObserverSource",
    "AlertRule",
    "MetricCatalog",
    "MetricDefinition",
    "MetricKind",
    "DashboardPanel",
    "DashboardQuery",
    "DashboardRow",
    "alert_rules",
    "dashboard_rows",
    "grafana_dashboard",
    "metric_catalog",
    "prometheus_rules",
    "render_grafana_dashboard",
    "render_prometheus_rules",
    "TracingMiddleware",
    "LIVE_PATH",
    "LOGGER_NAME",
    "MESSAGE_SPAN",
    "METRICS_PATH",
    "NAMESPACE",
    "NOOP_SPAN",
    "OTHER_LABEL",
    "READY_PATH",
    "TOOL_SPAN",
    "UNKNOWN_TOOL",
    "FrameworkMetrics",
    "ActorMetricsSource",
    "BlockingMetricsSource",
    "EventBusMetricsSource",
    "PoolMetricsSource",
    "ToolRegistryLike",
    "HealthSource",
    "HealthView",
    "HttpLimits",
    "HttpServer",
    "MonitoringApp",
    "Span",
    "Tracer",
    "apply_log_level",
    "autoscaler_manifest",
    "deployment_manifest",
    "opentelemetry_available",
    "render_kubernetes",
    "serve_monitoring",
    "tracer",
]
