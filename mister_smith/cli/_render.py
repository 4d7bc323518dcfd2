"""``mister-smith render alerts|dashboard|k8s``: generated operator files on stdout.

Each subcommand prints what the monitoring package renders from the code (and, for
``k8s``, from the configuration's ``orchestration`` section), so the files an operator
deploys come from the same definitions as the metrics the runtime serves:

* ``alerts``: the Prometheus alerting rules (YAML), each linked to its runbook;
* ``dashboard``: the Grafana dashboard (JSON);
* ``k8s``: the Deployment and HorizontalPodAutoscaler (multi-document YAML).

``--output FILE`` writes the file instead (atomically: a reader never sees half of it).
A setting the renderer refuses, a missing directory or a missing PyYAML is a usage
error (exit 2) with one line saying what was wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from ..config import AgentConfig
from ..errors import ConfigError
from ..monitoring import render_grafana_dashboard, render_kubernetes, render_prometheus_rules
from ..monitoring._dashboard import DASHBOARD_UID
from ..monitoring._rules import RULE_GROUP
from ._session import EXIT_USAGE

__all__ = ["add_render", "run_render"]

_EXAMPLES = """\
examples:
  mister-smith render alerts --runbook-base-url https://docs.example/ > rules.yml
  mister-smith render alerts --label team=agents --output /etc/prometheus/mister_smith.yml
  mister-smith render dashboard --output dashboard.json
  mister-smith render k8s --image registry.example/agents:1.2 --namespace agents \\
      --config production.toml | kubectl apply -f -
"""


def _label(text: str) -> tuple[str, str]:
    """argparse type: one ``KEY=VALUE`` label."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``render`` and its three subcommands on the top-level parser."""
    render = commands.add_parser(
        "render",
        help="print generated alert rules, Grafana dashboard or Kubernetes manifests",
        description="Print files generated from the code's metric definitions and the "
        "configuration, ready for Prometheus, Grafana or kubectl.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = render.add_subparsers(dest="render_what", required=True, metavar="WHAT")

    def output(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--output", "-o", type=Path, help="write to FILE instead of standard output"
        )

    alerts = sub.add_parser(
        "alerts",
        help="Prometheus alerting rules (YAML), each linked to its runbook",
        epilog="example: mister-smith render alerts --runbook-base-url https://docs.example/",
    )
    alerts.add_argument(
        "--runbook-base-url",
        default="",
        help="where the docs site is served, ending in '/'; each alert's runbook_url is "
        "this + runbooks/<page>.html (default: a path relative to the docs root)",
    )
    alerts.add_argument("--group", default=RULE_GROUP, help=f"rule group (default {RULE_GROUP})")
    alerts.add_argument(
        "--label",
        type=_label,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label added to every alert (repeatable)",
    )
    output(alerts)

    dashboard = sub.add_parser(
        "dashboard",
        help="Grafana dashboard (JSON) of the runtime's metrics",
        epilog="example: mister-smith render dashboard --title 'agents (prod)' -o dash.json",
    )
    dashboard.add_argument("--title", default="mister_smith runtime", help="dashboard title")
    dashboard.add_argument(
        "--uid", default=DASHBOARD_UID, help=f"its uid (default {DASHBOARD_UID})"
    )
    output(dashboard)

    k8s = sub.add_parser(
        "k8s",
        help="Kubernetes Deployment and autoscaler (YAML) from the orchestration settings",
        epilog="example: mister-smith render k8s --image registry.example/agents:1.2 "
        "--config production.toml | kubectl apply -f -",
    )
    k8s.add_argument("--image", required=True, help="container image reference")
    k8s.add_argument("--name", default="mister-smith", help="Deployment and container name")
    k8s.add_argument("--namespace", help="namespace of both objects (default: none)")
    k8s.add_argument(
        "--port",
        type=int,
        help="monitoring port inside the container (default: the config's monitoring.http_port)",
    )
    k8s.add_argument(
        "--label",
        type=_label,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label on both objects and the pods (repeatable)",
    )
    k8s.add_argument("--config", type=Path, help="a TOML configuration file")
    output(k8s)


def _rendered(args: argparse.Namespace, config: AgentConfig) -> str:
    if args.render_what == "alerts":
        return render_prometheus_rules(
            runbook_base_url=args.runbook_base_url,
            group=args.group,
            extra_labels=dict(args.label),
        )
    if args.render_what == "dashboard":
        return render_grafana_dashboard(title=args.title, uid=args.uid)
    port = config.monitoring.http_port if args.port is None else args.port
    if port == 0:
        raise ConfigError(
            "port 0 means any free port, but a pod needs a fixed monitoring port: "
            "pass --port N or set monitoring.http_port"
        )
    return render_kubernetes(
        config.orchestration,
        name=args.name,
        image=args.image,
        port=port,
        namespace=args.namespace,
        labels=dict(args.label) or None,
    )


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_render(args: argparse.Namespace, config: AgentConfig, stream: TextIO) -> int:
    """Run ``render``: print (or write) the file; 0 done, 2 on a refused setting."""
    try:
        text = _rendered(args, config)
    except (ConfigError, ValueError, ImportError) as error:
        print(f"mister-smith: render {args.render_what}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is None:
        stream.write(text)
        return 0
    try:
        _write(args.output, text)
    except OSError as error:
        print(
            f"mister-smith: render {args.render_what}: cannot write {args.output}: "
            f"{error.strerror or error}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return 0
