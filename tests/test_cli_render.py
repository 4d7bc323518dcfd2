"""``mister-smith render alerts|dashboard|k8s``: the generated files, to stdout or a file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mister_smith.cli import main
from mister_smith.config import OrchestrationConfig
from mister_smith.monitoring import (
    grafana_dashboard,
    metric_catalog,
    render_kubernetes,
    render_prometheus_rules,
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_alerts_are_the_rendered_rules_with_runbook_links_and_labels() -> None:
    code, text = run(
        "render",
        "alerts",
        "--runbook-base-url",
        "https://docs.example/",
        "--label",
        "team=agents",
        "--group",
        "agents",
    )
    assert code == 0
    assert text == render_prometheus_rules(
        runbook_base_url="https://docs.example/", group="agents", extra_labels={"team": "agents"}
    )
    (group,) = yaml.safe_load(text)["groups"]
    assert group["name"] == "agents"
    assert group["rules"]
    for rule in group["rules"]:
        assert rule["labels"]["team"] == "agents"
        assert rule["annotations"]["runbook_url"].startswith("https://docs.example/runbooks/")
        page = rule["annotations"]["runbook_url"].removeprefix("https://docs.example/")
        assert (Path(__file__).parent.parent / "docs" / page).with_suffix(".rst").is_file()


def test_dashboard_is_grafana_json_of_the_catalog() -> None:
    code, text = run("render", "dashboard", "--title", "agents (prod)", "--uid", "prod-agents")
    assert code == 0
    dashboard = json.loads(text)
    assert dashboard == grafana_dashboard(title="agents (prod)", uid="prod-agents")
    served = set(metric_catalog().definitions)
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert queries
    assert all(any(name in query for name in served) for query in queries)


def test_k8s_takes_the_orchestration_settings_and_port_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "production.toml"
    config.write_text("[orchestration.replicas]\ncount = 3\n\n[monitoring]\nhttp_port = 9100\n")
    code, text = run(
        "render",
        "k8s",
        "--image",
        "registry.example/agents:1.2",
        "--name",
        "agents",
        "--namespace",
        "prod",
        "--label",
        "tier=backend",
        "--config",
        str(config),
    )
    assert code == 0
    assert "&id" not in text  # no YAML anchors: every object spells out its labels
    assert "*id" not in text
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]
    deployment = documents[0]
    assert deployment["kind"] == "Deployment"
    assert deployment["metadata"]["namespace"] == "prod"
    assert deployment["metadata"]["labels"]["tier"] == "backend"
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/agents:1.2"
    assert container["ports"][0]["containerPort"] == 9100
    default_code, default_text = run("render", "k8s", "--image", "x:1", "--port", "8080")
    assert default_code == 0
    assert default_text == render_kubernetes(
        OrchestrationConfig(), name="mister-smith", image="x:1", port=8080
    )


def test_output_writes_the_file_and_replaces_an_old_one(tmp_path: Path) -> None:
    target = tmp_path / "rules.yml"
    target.write_text("old contents that must go\n")
    code, text = run("render", "alerts", "--output", str(target))
    assert (code, text) == (0, "")
    assert target.read_text() == render_prometheus_rules()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rules.yml"]  # no temporary


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("alerts", "--runbook-base-url", "https://docs.example"), "must end with '/'"),
        (("alerts", "--label", "bad-name=x"), "not a Prometheus label name"),
        (("dashboard", "--uid", ""), "uid"),
        (("k8s", "--image", "x:1", "--port", "0"), "pass --port N"),
        (("k8s", "--image", "x:1", "--port", "70000"), "port must be in [1, 65535]"),
    ],
)
def test_refused_settings_are_usage_errors_naming_the_problem(
    argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run("render", *argv)
    assert (code, text) == (2, "")
    error = capsys.readouterr().err
    assert error.startswith(f"mister-smith: render {argv[0]}: ")
    assert says in error
    assert error.count("\n") == 1  # one line, no traceback


def test_an_unwritable_output_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "dashboard.json"
    assert run("render", "dashboard", "-o", str(target)) == (2, "")
    assert f"cannot write {target}: No such file or directory" in capsys.readouterr().err
    assert not target.parent.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("render",),
        ("render", "grafana"),
        ("render", "k8s"),  # --image is required
        ("render", "alerts", "--label", "novalue"),
    ],
)
def test_bad_command_lines_exit_2(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(list(argv), out=io.StringIO())
    assert exited.value.code == 2


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text
    assert "mister-smith render k8s --image" in text
    for what in ("alerts", "dashboard", "k8s"):
        assert what in text


def test_the_command_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mister_smith.cli", "render", "alerts"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_prometheus_rules()
