"""``OrchestrationConfig`` rendered as a Kubernetes Deployment and HorizontalPodAutoscaler.

The probes point at the monitoring endpoint served by
:func:`~mister_smith.monitoring.serve_monitoring`; the container is told, through
``MISTER_SMITH__MONITORING__*`` environment variables, to listen on all interfaces at
that port so the kubelet's probes and Prometheus reach it.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from ..config import ENV_PREFIX, OrchestrationConfig, ProbeConfig
from ..errors import ConfigError

GPU_RESOURCE: Final = "nvidia.com/gpu"
"""The extended resource name GPUs are requested under."""

PORT_NAME: Final = "monitoring"
"""Name of the container port the probes and scrapes use."""

_MAX_POLICY_PERIOD: Final = 1800
_MAX_STABILIZATION: Final = 3600


def _seconds(value: float, *, minimum: int = 0) -> int:
    """Kubernetes takes whole seconds: round up, never below ``minimum``."""
    return max(minimum, math.ceil(value))


def _percent(fraction: float) -> int:
    return max(1, round(fraction * 100))


def _probe(probe: ProbeConfig, path: str, *, single_success: bool) -> dict[str, Any]:
    if single_success and probe.success_threshold != 1:
        raise ConfigError(
            f"orchestration.probes.{path}.success_threshold: Kubernetes requires 1 for "
            f"liveness and startup probes, got {probe.success_threshold}"
        )
    return {
        "httpGet": {"path": probe.endpoint, "port": PORT_NAME},
        "initialDelaySeconds": _seconds(probe.initial_delay),
        "periodSeconds": _seconds(probe.period, minimum=1),
        "timeoutSeconds": _seconds(probe.timeout, minimum=1),
        "successThreshold": probe.success_threshold,
        "failureThreshold": probe.failure_threshold,
    }


def _resources(config: OrchestrationConfig) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        allocation = getattr(config.resources, kind)
        amounts = {"cpu": allocation.cpu, "memory": allocation.memory}
        if allocation.gpu is not None:
            amounts[GPU_RESOURCE] = allocation.gpu
        rendered[kind] = amounts
    return rendered


def _rate_period(seconds: float, path: str) -> int:
    period = _seconds(seconds, minimum=1)
    if period > _MAX_POLICY_PERIOD:
        raise ConfigError(
            f"orchestration.autoscaling.{path}: Kubernetes allows at most "
            f"{_MAX_POLICY_PERIOD} s, got {seconds}"
        )
    return period


def deployment_manifest(
    config: OrchestrationConfig,
    *,
    name: str,
    image: str,
    port: int,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Deployment as a plain dict (see :func:`render_kubernetes`)."""
    selector = {"app.kubernetes.io/name": name}
    pod_labels = {**selector, **(labels or {})}
    probes = config.probes
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": f"{ENV_PREFIX}MONITORING__HTTP_HOST", "value": "0.0.0.0"},
            {"name": f"{ENV_PREFIX}MONITORING__HTTP_PORT", "value": str(port)},
        ],
        "resources": _resources(config),
        "livenessProbe": _probe(probes.liveness, "liveness", single_success=True),
        "readinessProbe": _probe(probes.readiness, "readiness", single_success=False),
    }
    if probes.startup is not None:
        container["startupProbe"] = _probe(probes.startup, "startup", single_success=True)
    metadata: dict[str, Any] = {"name": name, "labels": pod_labels}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": config.replicas.count,
            "strategy": {"type": config.replicas.update_strategy.value},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {"containers": [container]},
            },
        },
    }


def autoscaler_manifest(
    config: OrchestrationConfig,
    *,
    name: str,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler as a plain dict, or ``None`` without any target."""
    scaling = config.autoscaling
    metrics: list[dict[str, Any]] = []
    for resource, target in (
        ("cpu", scaling.target_cpu_utilization),
        ("memory", scaling.target_memory_utilization),
    ):
        if target is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": resource,
                        "target": {"type": "Utilization", "averageUtilization": _percent(target)},
                    },
                }
            )
    if not metrics:
        return None
    up = _rate_period(scaling.scale_up_rate, "scale_up_rate")
    down = _rate_period(scaling.scale_down_rate, "scale_down_rate")
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/name": name, **(labels or {})},
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            # One step (up to doubling, or halving) per rate period; scale-down also
            # waits out a stabilization window of the same length.
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": up}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": min(down, _MAX_STABILIZATION),
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": down}],
                },
            },
        },
    }


def render_kubernetes(
    orchestration_config: OrchestrationConfig,
    *,
    name: str,
    image: str,
    port: int,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Render a Deployment (+ a HorizontalPodAutoscaler) as multi-document YAML.

    * **Deployment**: ``replicas.count`` replicas replaced by
      ``replicas.update_strategy``; one container running ``image`` with the
      resource requests and limits (a GPU as ``nvidia.com/gpu``); liveness, readiness
      and (when configured) startup HTTP probes on the monitoring port named
      ``monitoring``; environment telling mister_smith to serve that port on all
      interfaces; Prometheus scrape annotations for ``/metrics``.
    * **HorizontalPodAutoscaler** (``autoscaling/v2``, omitted when neither a CPU nor
      a memory target is set): ``min_replicas`` to ``max_replicas`` towards the
      utilization targets, one scaling step per ``scale_up_rate`` /
      ``scale_down_rate`` seconds. It takes over the replica count once applied.

    Durations become whole seconds (rounded up).

    Args:
        orchestration_config: The deployment settings.
        name: Deployment, container and ``app.kubernetes.io/name`` label.
        image: Container image reference.
        port: The monitoring port inside the container.
        namespace: Namespace of both objects (default: none, the current one).
        labels: Extra labels on both objects and the pods.

    Raises:
        ConfigError: a setting Kubernetes cannot express (a liveness or startup
            ``success_threshold`` other than 1, a scaling rate over 1800 s).
        ImportError: PyYAML is not installed (``pip install 'mister-smith[http]'``).
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in [1, 65535], got {port!r}")
    try:
        yaml = importlib.import_module("yaml")
    except ImportError as exc:
        raise ImportError(
            "render_kubernetes needs PyYAML: pip install 'mister-smith[http]'"
        ) from exc
    documents: list[dict[str, Any]] = [
        deployment_manifest(
            orchestration_config,
            name=name,
            image=image,
            port=port,
            namespace=namespace,
            labels=labels,
        )
    ]
    autoscaler = autoscaler_manifest(
        orchestration_config, name=name, namespace=namespace, labels=labels
    )
    if autoscaler is not None:
        documents.append(autoscaler)
    # A JSON round trip unshares the label dicts the objects reuse, which YAML would
    # otherwise write as anchors (``labels: *id001``) that hide the labels from readers.
    unshared = json.loads(json.dumps(documents))
    rendered: str = yaml.safe_dump_all(unshared, sort_keys=False, default_flow_style=False)
    return rendered
