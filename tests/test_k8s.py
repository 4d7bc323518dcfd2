"""Kubernetes rendering: YAML rendered from an OrchestrationConfig, parsed back and checked."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mister_smith.config import (
    AutoscalingSettings,
    OrchestrationConfig,
    ProbeConfig,
    ProbeSettings,
    ReplicaSettings,
    ResourceAllocation,
    ResourceSettings,
    UpdateStrategy,
)
from mister_smith.errors import ConfigError
from mister_smith.monitoring import render_kubernetes


def render(config: OrchestrationConfig, **options: Any) -> list[dict[str, Any]]:
    options.setdefault("name", "agents")
    options.setdefault("image", "registry.example/agents:1.2.3")
    options.setdefault("port", 9464)
    text = render_kubernetes(config, **options)
    return [document for document in yaml.safe_load_all(text) if document is not None]


def test_defaults_render_a_deployment_and_an_autoscaler() -> None:
    deployment, autoscaler = render(OrchestrationConfig())
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert deployment["metadata"]["name"] == "agents"
    assert "namespace" not in deployment["metadata"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate"}
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "agents"}
    pod = spec["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "agents"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9464"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    [container] = pod["spec"]["containers"]
    assert container["image"] == "registry.example/agents:1.2.3"
    assert container["ports"] == [{"name": "monitoring", "containerPort": 9464, "protocol": "TCP"}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {
        "MISTER_SMITH__MONITORING__HTTP_HOST": "0.0.0.0",
        "MISTER_SMITH__MONITORING__HTTP_PORT": "9464",
    }
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/health/live", "port": "monitoring"},
        "initialDelaySeconds": 0,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert "startupProbe" not in container

    assert (autoscaler["apiVersion"], autoscaler["kind"]) == (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    )
    hpa = autoscaler["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "agents",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 10)
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        }
    ]
    assert hpa["behavior"]["scaleUp"]["policies"][0]["periodSeconds"] == 60
    assert hpa["behavior"]["scaleDown"]["policies"][0]["periodSeconds"] == 300
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_every_section_is_rendered() -> None:
    config = OrchestrationConfig(
        replicas=ReplicaSettings(count=3, update_strategy=UpdateStrategy.RECREATE),
        resources=ResourceSettings(
            requests=ResourceAllocation(cpu="500m", memory="512Mi", gpu="1"),
            limits=ResourceAllocation(cpu="2", memory="4Gi", gpu="1"),
        ),
        probes=ProbeSettings(
            liveness=ProbeConfig(endpoint="/health/live", initial_delay=2.5, period=15.0),
            readiness=ProbeConfig(endpoint="/health/ready", success_threshold=2, timeout=0.5),
            startup=ProbeConfig(endpoint="/health/live", period=2.0, failure_threshold=30),
        ),
        autoscaling=AutoscalingSettings(
            min_replicas=2,
            max_replicas=8,
            target_cpu_utilization=0.6,
            target_memory_utilization=0.75,
            scale_up_rate=30.0,
            scale_down_rate=600.0,
        ),
    )
    deployment, autoscaler = render(
        config, name="team", port=8080, namespace="ai", labels={"tier": "agents"}
    )
    assert deployment["metadata"]["namespace"] == autoscaler["metadata"]["namespace"] == "ai"
    assert deployment["metadata"]["labels"] == {"app.kubernetes.io/name": "team", "tier": "agents"}
    assert autoscaler["metadata"]["labels"]["tier"] == "agents"
    spec = deployment["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (3, "Recreate")
    [container] = spec["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {
        "cpu": "500m",
        "memory": "512Mi",
        "nvidia.com/gpu": "1",
    }
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["livenessProbe"]["initialDelaySeconds"] == 3  # rounded up
    assert container["livenessProbe"]["periodSeconds"] == 15
    assert container["readinessProbe"]["successThreshold"] == 2
    assert container["readinessProbe"]["timeoutSeconds"] == 1  # at least a second
    assert container["startupProbe"]["failureThreshold"] == 30
    assert container["ports"][0]["containerPort"] == 8080
    hpa = autoscaler["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    targets = {
        metric["resource"]["name"]: metric["resource"]["target"]["averageUtilization"]
        for metric in hpa["metrics"]
    }
    assert targets == {"cpu": 60, "memory": 75}
    assert hpa["behavior"]["scaleUp"]["policies"][0]["periodSeconds"] == 30
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_no_targets_means_no_autoscaler() -> None:
    config = OrchestrationConfig(
        autoscaling=AutoscalingSettings(target_cpu_utilization=None, target_memory_utilization=None)
    )
    [deployment] = render(config)
    assert deployment["kind"] == "Deployment"


def test_settings_kubernetes_cannot_express_are_refused() -> None:
    bad_liveness = OrchestrationConfig(
        probes=ProbeSettings(liveness=ProbeConfig(endpoint="/health/live", success_threshold=2))
    )
    with pytest.raises(ConfigError, match=r"probes\.liveness\.success_threshold"):
        render(bad_liveness)
    bad_rate = OrchestrationConfig(autoscaling=AutoscalingSettings(scale_down_rate=3600.0))
    with pytest.raises(ConfigError, match="scale_down_rate"):
        render(bad_rate)
    with pytest.raises(ValueError, match="port"):
        render(OrchestrationConfig(), port=0)
