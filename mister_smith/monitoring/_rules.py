"""Prometheus alerting rules built from the metric definitions, each linked to a runbook.

Every metric an expression uses is looked up in :func:`~._catalog.metric_catalog` (so
a metric renamed in the code fails the rendering instead of leaving a rule that never
fires), and every label value compared against comes from the enum that produces it
(:class:`~mister_smith.errors.RecoveryAction`,
:class:`~mister_smith.supervision.BreakerState`). Each alert names the page of
``docs/runbooks/`` an operator opens when it fires.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ..errors import ConfigError, RecoveryAction
from ..supervision import BreakerState
from ._catalog import MetricCatalog, metric_catalog

RULE_GROUP: Final = "mister-smith"
"""Name of the rule group :func:`render_prometheus_rules` writes."""

MODEL_BREAKER_PREFIX: Final = "model:"
"""Prefix of the circuit breakers the HTTP model adapters create (``model:<endpoint>``)."""

_SEVERITIES: Final = ("critical", "warning")


@attrs.frozen
class AlertRule:
    """One alerting rule.

    Attributes:
        name: The alert's name (``alert:``).
        expr: Its PromQL expression.
        duration: How long the expression must hold before the alert fires (``for:``).
        severity: ``critical`` (someone acts now) or ``warning`` (someone looks today).
        summary: One line for the notification.
        description: What it means, with ``{{ $labels.x }}`` templates.
        runbook: The runbook page under ``docs/runbooks/`` (without ``.rst``).
        metrics: The metric families the expression reads (each checked to exist).
    """

    name: str
    expr: str
    duration: str
    severity: str = attrs.field(validator=attrs.validators.in_(_SEVERITIES))
    summary: str
    description: str
    runbook: str
    metrics: tuple[str, ...]


def alert_rules(catalog: MetricCatalog | None = None) -> tuple[AlertRule, ...]:
    """The framework's alerting rules, built against ``catalog`` (default: the code's).

    Raises:
        ConfigError: a rule uses a metric or series the catalog does not define.
    """
    c = metric_catalog() if catalog is None else catalog
    actor_restarts = c.series("actor_restarts", "_total")
    decisions = c.series("supervision_decisions", "_total")
    restarts = c.series("restarts", "_total")
    breakers = c.series("circuit_breaker_transitions", "_total")
    dead_letters = c.series("dead_letters", "_total")
    heartbeats = c.series("heartbeats_missed", "_total")
    live = c.series("live")
    ready = c.series("ready")
    health = c.series("health_status")
    loop_blocked = c.series("loop_blocked", "_total")
    loop_blocked_seconds = c.series("loop_blocked_seconds", "_sum")
    depth = c.series("mailbox_depth")
    capacity = c.series("mailbox_capacity")
    dropped = c.series("events_dropped", "_total")
    exhausted = c.series("pool_exhausted", "_total")
    waiting = c.series("pool_waiting")
    timeouts = c.series("tool_timeouts", "_total")
    calls = c.series("tool_calls", "_total")
    stop = RecoveryAction.STOP.value
    escalate = RecoveryAction.ESCALATE.value
    opened = BreakerState.OPEN.value
    model = f'breaker=~"{MODEL_BREAKER_PREFIX}.*"'
    not_model = f'breaker!~"{MODEL_BREAKER_PREFIX}.*"'
    return (
        AlertRule(
            name="MisterSmithActorCrashLooping",
            expr=f"sum by (actor) (increase({actor_restarts}[10m])) >= 2",
            duration="1m",
            severity="warning",
            summary="Actor {{ $labels.actor }} keeps crashing and being restarted",
            description=(
                "{{ $labels.actor }} was restarted {{ $value }} times in 10 minutes; "
                "once its restart budget is spent it is stopped for good."
            ),
            runbook="actor-restart-budget",
            metrics=("actor_restarts",),
        ),
        AlertRule(
            name="MisterSmithActorStopped",
            expr=f'sum by (supervisor) (increase({decisions}{{action="{stop}"}}[10m])) > 0',
            duration="0m",
            severity="critical",
            summary="A child of {{ $labels.supervisor }} spent its restart budget and stopped",
            description=(
                "Supervisor {{ $labels.supervisor }} stopped a child for good: it failed "
                "more often than its restart budget allows. Its queued messages are "
                "dead letters and asks to it fail with ActorStopped."
            ),
            runbook="actor-restart-budget",
            metrics=("supervision_decisions",),
        ),
        AlertRule(
            name="MisterSmithHeartbeatsMissed",
            expr=f"increase({heartbeats}[10m]) > 0",
            duration="0m",
            severity="warning",
            summary="A supervised child stopped sending heartbeats and was restarted",
            description="{{ $value }} children were declared hung in 10 minutes.",
            runbook="actor-restart-budget",
            metrics=("heartbeats_missed",),
        ),
        AlertRule(
            name="MisterSmithDeadLetters",
            expr=f"sum by (reason) (increase({dead_letters}[10m])) > 0",
            duration="0m",
            severity="warning",
            summary="Accepted messages were dead-lettered ({{ $labels.reason }})",
            description=(
                "{{ $value }} accepted messages will never be handled, reason {{ $labels.reason }}."
            ),
            runbook="actor-restart-budget",
            metrics=("dead_letters",),
        ),
        AlertRule(
            name="MisterSmithSupervisorEscalated",
            expr=f'sum by (supervisor) (increase({decisions}{{action="{escalate}"}}[10m])) > 0',
            duration="0m",
            severity="critical",
            summary="Supervisor {{ $labels.supervisor }} escalated a failure to its parent",
            description=(
                "A child of {{ $labels.supervisor }} failed with an Escalate recovery: "
                "the supervisor gave up and its parent handles it as one failure."
            ),
            runbook="supervisor-gave-up",
            metrics=("supervision_decisions",),
        ),
        AlertRule(
            name="MisterSmithRootRestartedAChild",
            expr=f'sum by (action) (increase({restarts}{{supervisor="root"}}[10m])) > 0',
            duration="0m",
            severity="critical",
            summary="The root supervisor restarted one of its children",
            description=(
                "A domain supervisor (or another child of the root) gave up and was "
                "restarted by the root; the root's own budget is being spent."
            ),
            runbook="supervisor-gave-up",
            metrics=("restarts",),
        ),
        AlertRule(
            name="MisterSmithRuntimeDown",
            expr=f"absent({live}) or {live} == 0",
            duration="2m",
            severity="critical",
            summary="No live mister_smith runtime is being scraped",
            description=(
                "Liveness failed or the process is gone: the root supervisor gave up "
                "(its budget spent, or the memory watchdog escalated)."
            ),
            runbook="runtime-down",
            metrics=("live",),
        ),
        AlertRule(
            name="MisterSmithNotReady",
            expr=f"{ready} == 0",
            duration="5m",
            severity="critical",
            summary="The runtime has not been ready for 5 minutes",
            description="Readiness fails: a required health check is unhealthy.",
            runbook="not-ready",
            metrics=("ready",),
        ),
        AlertRule(
            name="MisterSmithComponentUnhealthy",
            expr=f'{health}{{status="unhealthy"}} == 1',
            duration="5m",
            severity="warning",
            summary="Health check {{ $labels.component }} is unhealthy",
            description="The {{ $labels.component }} check has reported unhealthy for 5 minutes.",
            runbook="not-ready",
            metrics=("health_status",),
        ),
        AlertRule(
            name="MisterSmithCircuitOpen",
            expr=(
                f'sum by (breaker) (increase({breakers}{{state="{opened}",{not_model}}}[10m])) > 0'
            ),
            duration="0m",
            severity="warning",
            summary="Circuit breaker {{ $labels.breaker }} opened",
            description=(
                "{{ $labels.breaker }} opened {{ $value }} times in 10 minutes: what it "
                "guards keeps failing and is given a rest."
            ),
            runbook="circuit-open",
            metrics=("circuit_breaker_transitions",),
        ),
        AlertRule(
            name="MisterSmithModelEndpointFailing",
            expr=f'sum by (breaker) (increase({breakers}{{state="{opened}",{model}}}[10m])) > 0',
            duration="0m",
            severity="critical",
            summary="Model endpoint breaker {{ $labels.breaker }} opened",
            description=(
                "Calls to the model endpoint kept failing (429 / 5xx / timeouts after "
                "retries): its breaker opened and agent turns fail fast."
            ),
            runbook="model-endpoint-errors",
            metrics=("circuit_breaker_transitions",),
        ),
        AlertRule(
            name="MisterSmithLoopBlocked",
            expr=f"increase({loop_blocked}[5m]) > 0",
            duration="0m",
            severity="warning",
            summary="Task steps blocked the Trio loop",
            description=(
                "{{ $value }} task steps held the event loop past the blocking threshold "
                "in 5 minutes; every actor, timeout and probe waited meanwhile."
            ),
            runbook="loop-blocked",
            metrics=("loop_blocked",),
        ),
        AlertRule(
            name="MisterSmithLoopBlockedLong",
            expr=f"increase({loop_blocked_seconds}[5m]) > 1",
            duration="0m",
            severity="critical",
            summary="The Trio loop was blocked for over a second in 5 minutes",
            description="Blocking steps held the loop {{ $value }} s in 5 minutes.",
            runbook="loop-blocked",
            metrics=("loop_blocked_seconds",),
        ),
        AlertRule(
            name="MisterSmithMailboxNearlyFull",
            expr=f"max by (actor) ({depth} / {capacity}) > 0.8",
            duration="5m",
            severity="warning",
            summary="Mailbox of {{ $labels.actor }} is over 80% full",
            description=(
                "{{ $labels.actor }} receives faster than it handles; senders are "
                "waiting (tell) or refused (tell_nowait: MailboxFull)."
            ),
            runbook="mailbox-full",
            metrics=("mailbox_depth", "mailbox_capacity"),
        ),
        AlertRule(
            name="MisterSmithEventsDropped",
            expr=f"increase({dropped}[10m]) > 0",
            duration="0m",
            severity="warning",
            summary="Event subscribers fell behind and events were dropped",
            description="{{ $value }} events were dropped from full subscriber queues.",
            runbook="mailbox-full",
            metrics=("events_dropped",),
        ),
        AlertRule(
            name="MisterSmithPoolExhausted",
            expr=f"sum by (pool) (increase({exhausted}[5m])) > 0",
            duration="0m",
            severity="warning",
            summary="Pool {{ $labels.pool }} was exhausted",
            description=(
                "Acquisitions from {{ $labels.pool }} found nothing free for their "
                "whole acquire timeout and failed with PoolExhausted."
            ),
            runbook="pool-exhausted",
            metrics=("pool_exhausted",),
        ),
        AlertRule(
            name="MisterSmithPoolQueueing",
            expr=f"{waiting} > 0",
            duration="5m",
            severity="warning",
            summary="Acquirers have been queueing on pool {{ $labels.pool }} for 5 minutes",
            description="{{ $value }} tasks wait for a connection from {{ $labels.pool }}.",
            runbook="pool-exhausted",
            metrics=("pool_waiting",),
        ),
        AlertRule(
            name="MisterSmithToolTimeouts",
            expr=(
                f"sum by (tool) (increase({timeouts}[10m])) / "
                f"clamp_min(sum by (tool) (increase({calls}[10m])), 1) > 0.05"
            ),
            duration="5m",
            severity="warning",
            summary="Over 5% of {{ $labels.tool }} calls time out",
            description=(
                "{{ $labels.tool }} calls run past their deadline; callers get "
                "ToolTimeout and the tool's work is cancelled."
            ),
            runbook="tool-timeouts",
            metrics=("tool_timeouts", "tool_calls"),
        ),
    )


def prometheus_rules(
    *,
    runbook_base_url: str = "",
    group: str = RULE_GROUP,
    extra_labels: Mapping[str, str] | None = None,
    catalog: MetricCatalog | None = None,
) -> dict[str, Any]:
    """The alerting rules as a Prometheus rule file (a dict ready to dump as YAML).

    Args:
        runbook_base_url: Where the docs site is served (``https://docs.example/``);
            each alert's ``runbook_url`` annotation is this followed by
            ``runbooks/<page>.html``. Empty: a path relative to the docs root.
        group: The rule group's name.
        extra_labels: Labels added to every alert (e.g. ``{"team": "agents"}``).
        catalog: The metric definitions (default: the code's).

    Raises:
        ConfigError: ``group`` is empty, ``runbook_base_url`` is not empty and does not
            end with ``/``, or a label name is not a Prometheus label name.
    """
    if not group.strip():
        raise ConfigError("group must be a non-empty rule group name")
    if runbook_base_url and not runbook_base_url.endswith("/"):
        raise ConfigError(
            f"runbook_base_url must end with '/' (got {runbook_base_url!r}); the runbook "
            "path 'runbooks/<page>.html' is appended to it"
        )
    labels = dict(extra_labels or {})
    for key in labels:
        if not key.isidentifier() or key.startswith("__"):
            raise ConfigError(f"extra_labels: {key!r} is not a Prometheus label name")
    rules = []
    for alert in alert_rules(catalog):
        rules.append(
            {
                "alert": alert.name,
                "expr": alert.expr,
                "for": alert.duration,
                "labels": {"severity": alert.severity, **labels},
                "annotations": {
                    "summary": alert.summary,
                    "description": alert.description,
                    "runbook_url": f"{runbook_base_url}runbooks/{alert.runbook}.html",
                },
            }
        )
    return {"groups": [{"name": group, "rules": rules}]}


def render_prometheus_rules(
    *,
    runbook_base_url: str = "",
    group: str = RULE_GROUP,
    extra_labels: Mapping[str, str] | None = None,
) -> str:
    """The alerting rules as a Prometheus rule file (YAML), for ``rule_files:``.

    Validated by ``promtool check rules`` in the test suite; see
    :func:`prometheus_rules` for the arguments.

    Raises:
        ConfigError: see :func:`prometheus_rules`.
        ImportError: PyYAML is not installed (``pip install 'mister-smith[http]'``).
    """
    document = prometheus_rules(
        runbook_base_url=runbook_base_url, group=group, extra_labels=extra_labels
    )
    try:
        yaml = importlib.import_module("yaml")
    except ImportError as exc:
        raise ImportError(
            "render_prometheus_rules needs PyYAML: pip install 'mister-smith[http]'"
        ) from exc
    rendered: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
    return rendered
