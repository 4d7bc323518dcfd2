"""The framework's metric definitions, read from the code that exports them.

Alert rules and dashboards (:mod:`._rules`, :mod:`._dashboard`) must never name a
metric that ``/metrics`` does not serve. So they do not copy names: they look each one
up in :func:`metric_catalog`, which builds a :class:`FrameworkMetrics` and reads what
it defines — the metrics fed by events, and the families read from ``statistics()`` at
scrape time, collected once from stand-in sources of every kind — with their type,
help text and label names. A metric renamed or removed in ``_metrics.py`` makes the
lookup fail with :class:`~mister_smith.errors.ConfigError`, so the renderers (and their
tests) fail instead of drifting.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import trio
from prometheus_client.metrics import MetricWrapperBase

from ..errors import ConfigError
from ._metrics import NAMESPACE, FrameworkMetrics


class MetricKind(enum.Enum):
    """The Prometheus type of a metric family."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


_SERIES_SUFFIXES: Mapping[MetricKind, tuple[str, ...]] = {
    MetricKind.COUNTER: ("_total",),
    MetricKind.GAUGE: ("",),
    MetricKind.HISTOGRAM: ("_bucket", "_sum", "_count"),
}


@attrs.frozen
class MetricDefinition:
    """One metric family as ``/metrics`` exposes it.

    Attributes:
        name: The family name, e.g. ``mister_smith_restarts``.
        kind: Counter, gauge or histogram.
        help: Its help text (the ``# HELP`` line).
        labels: Its label names, in order (without a histogram's ``le``).
        scraped: Whether it is read from ``statistics()`` at scrape time (present only
            when its source is registered) rather than fed by events.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    scraped: bool = False

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names a query can use: ``<name>_total`` for a counter, the name
        itself for a gauge, ``_bucket``/``_sum``/``_count`` for a histogram."""
        return tuple(self.name + suffix for suffix in _SERIES_SUFFIXES[self.kind])


@attrs.frozen
class MetricCatalog:
    """Every metric the framework defines, by family name.

    Attributes:
        definitions: The definitions, by family name.
    """

    definitions: Mapping[str, MetricDefinition]

    def __iter__(self) -> Iterator[MetricDefinition]:
        return iter(self.definitions.values())

    def __len__(self) -> int:
        return len(self.definitions)

    def __contains__(self, name: object) -> bool:
        return name in self.definitions

    def get(self, name: str) -> MetricDefinition:
        """The definition of ``name`` (the family name, with or without the namespace).

        Raises:
            ConfigError: no metric of that name is defined (the message lists the
                names that are).
        """
        full = name if name.startswith(f"{NAMESPACE}_") else f"{NAMESPACE}_{name}"
        try:
            return self.definitions[full]
        except KeyError:
            known = ", ".join(sorted(self.definitions))
            raise ConfigError(f"no metric named {full!r} is defined; known: {known}") from None

    def series(self, name: str, suffix: str = "") -> str:
        """The sample name ``name`` + ``suffix`` (``"_total"``, ``"_bucket"``, ...),
        checked against the metric's kind.

        Raises:
            ConfigError: the metric is unknown, or has no such series (a gauge has no
                ``_total``, a counter no ``_bucket``...).
        """
        definition = self.get(name)
        sample = definition.name + suffix
        if sample not in definition.series:
            raise ConfigError(
                f"metric {definition.name!r} is a {definition.kind.value}: its series are "
                f"{', '.join(definition.series)}, not {sample!r}"
            )
        return sample

    def owner_of(self, series: str) -> MetricDefinition | None:
        """The definition a sample name (``mister_smith_tool_calls_total``...) belongs
        to, or ``None`` when no defined metric exposes it."""
        for definition in self.definitions.values():
            if series in definition.series:
                return definition
        return None


@functools.cache
def metric_catalog() -> MetricCatalog:
    """The framework's metric definitions (built once, then cached).

    Event-fed metrics are read from a fresh :class:`FrameworkMetrics`; the families
    read at scrape time are collected from it with one stand-in source of every kind
    registered (pool, actor, event bus, blocking detector, health), so each appears
    with its labels.
    """
    metrics = FrameworkMetrics()
    definitions: dict[str, MetricDefinition] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            definition = _wrapped(value)
            definitions[definition.name] = definition
    metrics.add_pool(_StandInPool())
    metrics.add_actors(lambda: [_StandInActor()])
    metrics.add_event_bus(_StandInBus())
    metrics.add_blocking_detector(_StandInDetector())
    metrics.add_health(_StandInHealth())
    for family in metrics.registry.collect():
        if family.name in definitions:
            continue
        labels: list[str] = []
        for sample in family.samples:
            labels.extend(key for key in sample.labels if key not in labels)
        definitions[family.name] = MetricDefinition(
            name=family.name,
            kind=MetricKind(family.type),
            help=family.documentation,
            labels=tuple(labels),
            scraped=True,
        )
    return MetricCatalog(dict(sorted(definitions.items())))


def _wrapped(metric: MetricWrapperBase) -> MetricDefinition:
    (family,) = metric.describe()
    labels: tuple[str, ...] = tuple(getattr(metric, "_labelnames", ()))
    return MetricDefinition(
        name=family.name,
        kind=MetricKind(family.type),
        help=family.documentation,
        labels=labels,
    )


# -- stand-in sources: one of each kind, so every scrape-time family is collected ----------


@attrs.frozen
class _PoolStatistics:
    name: str = "pool"
    idle: int = 0
    in_use: int = 0
    creating: int = 0
    closing: int = 0
    waiting: int = 0
    max_size: int = 1
    created: int = 0
    closed: int = 0
    acquired: int = 0
    timeouts: int = 0
    discarded: int = 0


class _StandInPool:
    def statistics(self) -> _PoolStatistics:
        return _PoolStatistics()


@attrs.frozen
class _ActorStatistics:
    name: str = "actor"
    queued: int = 0
    capacity: int = 1
    in_flight: int = 0
    handled: int = 0
    failed: int = 0
    dead_lettered: int = 0
    restarts: int = 0


class _StandInActor:
    def statistics(self) -> _ActorStatistics:
        return _ActorStatistics()


@attrs.frozen
class _BusStatistics:
    emitted: int = 0
    dropped: int = 0
    handler_failures: int = 0


class _StandInBus:
    def statistics(self) -> _BusStatistics:
        return _BusStatistics()


@attrs.frozen
class _DetectorStatistics:
    steps: int = 0
    blocked: int = 0


class _StandInDetector:
    def statistics(self) -> _DetectorStatistics:
        return _DetectorStatistics()


@attrs.frozen
class _HealthView:
    ok: bool = True

    def to_dict(self) -> Mapping[str, Any]:
        return {"status": "healthy", "checks": {"component": {"status": "healthy"}}}


class _StandInHealth:
    def liveness(self) -> _HealthView:
        return _HealthView()

    def readiness(self) -> _HealthView:
        return _HealthView()

    async def fresh_readiness(self) -> _HealthView:
        await trio.lowlevel.checkpoint()
        return _HealthView()
