"""Deployment settings (the design doc's ``OrchestrationConfig``), in Kubernetes terms."""

import enum
from typing import ClassVar

import attrs

from ._checks import (
    OrderedPairs,
    duration,
    instance_of,
    integer,
    number,
    require_ordered,
    text,
    to_optional_float,
    to_optional_text,
)
from ._duration import Seconds, to_seconds

_QUANTITY = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?"
_QUANTITY_IS = "a Kubernetes quantity such as '250m', '1', '0.5', '256Mi' or '1Gi'"


class UpdateStrategy(enum.Enum):
    """How replicas are replaced when the deployment changes."""

    ROLLING_UPDATE = "RollingUpdate"
    """Replace replicas a few at a time, keeping the service up."""
    RECREATE = "Recreate"
    """Stop every old replica before starting new ones."""


@attrs.frozen
class ReplicaSettings:
    """How many copies of the agent system run.

    Attributes:
        count: Replicas to run (when autoscaling is not in charge). >= 0.
        update_strategy: How replicas are replaced on a change.
    """

    count: int = attrs.field(default=1, validator=integer(minimum=0))
    update_strategy: UpdateStrategy = attrs.field(
        default=UpdateStrategy.ROLLING_UPDATE, validator=instance_of(UpdateStrategy)
    )


@attrs.frozen
class ResourceAllocation:
    """An amount of compute, as Kubernetes quantities (``"250m"`` CPU, ``"1Gi"`` memory).

    Attributes:
        cpu: CPU cores, e.g. ``"250m"`` (a quarter core) or ``"2"``.
        memory: Memory in bytes with an optional suffix, e.g. ``"256Mi"``.
        gpu: GPUs, e.g. ``"1"``; ``None`` (or ``"none"``) when none are needed.
    """

    cpu: str = attrs.field(validator=text(_QUANTITY, _QUANTITY_IS))
    memory: str = attrs.field(validator=text(_QUANTITY, _QUANTITY_IS))
    gpu: str | None = attrs.field(
        default=None,
        converter=to_optional_text,
        validator=text(_QUANTITY, _QUANTITY_IS, optional=True),
    )


def _default_requests() -> ResourceAllocation:
    return ResourceAllocation(cpu="250m", memory="256Mi")


def _default_limits() -> ResourceAllocation:
    return ResourceAllocation(cpu="1", memory="1Gi")


@attrs.frozen
class ResourceSettings:
    """What a replica asks for and may use at most.

    Attributes:
        requests: Guaranteed resources, used for scheduling (default 250m CPU, 256Mi).
        limits: Hard caps; the replica is throttled or killed above them
            (default 1 CPU, 1Gi).
    """

    requests: ResourceAllocation = attrs.field(
        factory=_default_requests, validator=instance_of(ResourceAllocation)
    )
    limits: ResourceAllocation = attrs.field(
        factory=_default_limits, validator=instance_of(ResourceAllocation)
    )


@attrs.frozen
class ProbeConfig:
    """One HTTP health probe (served by the monitoring endpoint).

    Attributes:
        endpoint: Path probed, e.g. ``"/health/live"``; starts with ``/``.
        initial_delay: Seconds after start before the first probe. >= 0.
        period: Seconds between probes. > 0.
        timeout: Seconds one probe may take. > 0.
        success_threshold: Consecutive successes that make the probe pass again. >= 1.
        failure_threshold: Consecutive failures that make the probe fail. >= 1.
    """

    endpoint: str = attrs.field(validator=text(r"/\S*", "a path starting with '/'"))
    initial_delay: Seconds = attrs.field(
        default=0.0, converter=to_seconds, validator=duration(positive=False)
    )
    period: Seconds = attrs.field(
        default=10.0, converter=to_seconds, validator=duration(positive=True)
    )
    timeout: Seconds = attrs.field(
        default=1.0, converter=to_seconds, validator=duration(positive=True)
    )
    success_threshold: int = attrs.field(default=1, validator=integer(minimum=1))
    failure_threshold: int = attrs.field(default=3, validator=integer(minimum=1))


def _default_liveness() -> ProbeConfig:
    return ProbeConfig(endpoint="/health/live")


def _default_readiness() -> ProbeConfig:
    return ProbeConfig(endpoint="/health/ready", period=5.0)


@attrs.frozen
class ProbeSettings:
    """The probes an orchestrator runs against each replica.

    Attributes:
        liveness: Restart the replica when this fails (default ``/health/live``).
        readiness: Send no traffic while this fails (default ``/health/ready``, every
            5 s).
        startup: Hold the other probes off until this passes once; ``None`` for no
            startup probe.
    """

    liveness: ProbeConfig = attrs.field(
        factory=_default_liveness, validator=instance_of(ProbeConfig)
    )
    readiness: ProbeConfig = attrs.field(
        factory=_default_readiness, validator=instance_of(ProbeConfig)
    )
    startup: ProbeConfig | None = attrs.field(
        default=None, validator=instance_of(ProbeConfig, optional=True)
    )


@attrs.frozen
class AutoscalingSettings:
    """Horizontal autoscaling of replicas.

    Attributes:
        min_replicas: Fewest replicas. >= 1 and <= ``max_replicas``.
        max_replicas: Most replicas. >= 1.
        target_cpu_utilization: Average CPU use (fraction of the request) to scale
            towards; ``None`` to ignore CPU. In (0, 1].
        target_memory_utilization: The same for memory; ``None`` to ignore memory.
            In (0, 1].
        scale_up_rate: Seconds the autoscaler waits between scale-up steps. > 0.
        scale_down_rate: Seconds the autoscaler waits between scale-down steps. > 0.
    """

    min_replicas: int = attrs.field(default=1, validator=integer(minimum=1))
    max_replicas: int = attrs.field(default=10, validator=integer(minimum=1))
    target_cpu_utilization: float | None = attrs.field(
        default=0.8,
        converter=to_optional_float,
        validator=number(0.0, 1.0, exclusive_minimum=True, optional=True),
    )
    target_memory_utilization: float | None = attrs.field(
        default=None,
        converter=to_optional_float,
        validator=number(0.0, 1.0, exclusive_minimum=True, optional=True),
    )
    scale_up_rate: Seconds = attrs.field(
        default=60.0, converter=to_seconds, validator=duration(positive=True)
    )
    scale_down_rate: Seconds = attrs.field(
        default=300.0, converter=to_seconds, validator=duration(positive=True)
    )

    _ordered: ClassVar[OrderedPairs] = (("min_replicas", "max_replicas"),)

    def __attrs_post_init__(self) -> None:
        require_ordered(self)


@attrs.frozen
class OrchestrationConfig:
    """How the agent system is deployed and scaled.

    Attributes:
        replicas: Replica count and update strategy.
        resources: Resource requests and limits of each replica.
        probes: Liveness, readiness and startup probes.
        autoscaling: Horizontal autoscaling bounds and targets.
    """

    replicas: ReplicaSettings = attrs.field(
        factory=ReplicaSettings, validator=instance_of(ReplicaSettings)
    )
    resources: ResourceSettings = attrs.field(
        factory=ResourceSettings, validator=instance_of(ResourceSettings)
    )
    probes: ProbeSettings = attrs.field(factory=ProbeSettings, validator=instance_of(ProbeSettings))
    autoscaling: AutoscalingSettings = attrs.field(
        factory=AutoscalingSettings, validator=instance_of(AutoscalingSettings)
    )
