"""The ``mister-smith`` command: ``demo``, ``run TASK``, ``config``, ``mcp serve``, ``render``.

``mister-smith demo --nodes 3`` runs the same survey across three node processes on
an embedded NATS server and kills one midway (see ``_cluster_demo``).
``mister-smith demo --durable`` has a durable actor index the package; a supervised
fault ends its process midway and a second process replays what was left pending and
finishes (see ``_durable_demo``).

``mister-smith demo`` is the main job: a runtime on embedded defaults (no API key, no
server, no network) runs an agent team that surveys this package's source tree while
faults are injected, shows live progress, and ends with a summary whose last line
checks ``messages accepted = handled + dead-lettered``.

Exit codes: 0 done, 1 the task failed, 2 usage or configuration error, 3 the message
invariant did not hold, 130 interrupted (Ctrl-C / SIGTERM, after a graceful shutdown).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import trio

from ..config import AgentConfig, ConfigValidationError, dump_config, load_config
from ..errors import ConfigError, unwrap_single
from ._demo import PACKAGE_ROOT, DemoOptions, run_demo
from ._help import CONFIG_EXAMPLES, DEMO_EXAMPLES, RUN_DESCRIPTION, RUN_EXAMPLES
from ._mcp import READ_ONLY_TOOLS, McpServeOptions, parse_tools, serve_mcp
from ._render import add_render, run_render
from ._run import RunOptions, run_task
from ._session import EXIT_INTERRUPTED, EXIT_USAGE, MODEL_KINDS
from ._summary_json import config_json

__all__ = ["build_parser", "main"]


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (not ``nan``, ``inf`` or ``-5``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0: {text!r}")
    return value


def _directory(text: str) -> Path:
    """argparse type: an existing directory (checked before any runtime starts)."""
    path = Path(text)
    if not path.is_dir():
        reason = "does not exist" if not path.exists() else "is not a directory"
        raise argparse.ArgumentTypeError(f"{text!r} {reason}")
    return path


def _tool_names(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated built-in tool names."""
    try:
        return parse_tools(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_mcp(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mcp = commands.add_parser("mcp", help="Model Context Protocol: offer tools to MCP clients")
    sub = mcp.add_subparsers(dest="mcp_command", required=True, metavar="SUBCOMMAND")
    serve = sub.add_parser(
        "serve",
        help="offer workspace tools to one MCP client over stdio (default) or HTTP",
        description="Serve built-in tools to an MCP client. The client is one identity "
        "with the role 'mcp-client'; only the tools named with --tools are granted to it.",
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    serve.add_argument(
        "--workspace",
        type=_directory,
        default=Path.cwd(),
        help="directory the file tools are confined to (default: the current directory)",
    )
    serve.add_argument(
        "--tools",
        type=_tool_names,
        default=",".join(READ_ONLY_TOOLS),
        help="comma-separated: read_file, list_directory, write_file, echo "
        "(default: read_file,list_directory)",
    )
    serve.add_argument("--client", default="mcp-client", help="name of the client's identity")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (http)")
    serve.add_argument("--port", type=int, default=8765, help="port to bind (http; 0: any)")
    serve.add_argument("--config", type=Path, help="a TOML configuration file")


def _nodes(text: str) -> int:
    """argparse type: a node count >= 2 (one of them is killed midway)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"must be 2 to 16 nodes: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="mister-smith",
        description="Supervised AI-agent systems on Trio.",
        epilog="Exit codes: 0 done, 1 task failed, 2 usage/config error, "
        "3 message invariant broken, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def display_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--no-color", action="store_true", help="no ANSI colours")
        sub.add_argument(
            "--plain",
            action="store_true",
            help="print plain lines even on a terminal (no live redraw)",
        )
        sub.add_argument(
            "--model",
            choices=MODEL_KINDS,
            default="scripted",
            help="scripted (embedded, default) or a real model over HTTP: openai "
            "(OPENAI_API_KEY) or anthropic (ANTHROPIC_API_KEY); which model is the "
            "config's agents.openai_model / agents.anthropic_model",
        )
        sub.add_argument("--config", type=Path, help="a TOML configuration file")
        sub.add_argument(
            "--timeout", type=_seconds, default=45.0, help="seconds the team gets (default 45)"
        )
        sub.add_argument(
            "--json",
            action="store_true",
            help="print the summary as one JSON object on standard output (progress and "
            "the readable summary go to standard error)",
        )

    demo = commands.add_parser(
        "demo",
        help="run the main job: an agent team surveys this package under faults",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    display_options(demo)
    demo.add_argument(
        "--no-faults", action="store_true", help="do not inject the crash, hang and flaky reads"
    )
    demo.add_argument(
        "--workspace",
        type=_directory,
        default=PACKAGE_ROOT,
        help="directory to survey (default: the mister_smith package)",
    )
    demo.add_argument(
        "--mcp",
        action="store_true",
        help="serve the file tools from an MCP server subprocess (needs the mcp extra)",
    )

    demo.add_argument(
        "--nodes",
        type=_nodes,
        default=0,
        help="spread the survey over N node processes on an embedded NATS server and "
        "kill one midway (needs the nats extra; N >= 2)",
    )

    demo.add_argument(
        "--durable",
        action="store_true",
        help="a durable actor indexes the workspace; a supervised fault ends its process "
        "midway, and a second process replays what was left and finishes",
    )

    durable = commands.add_parser("durable-run", help=argparse.SUPPRESS)  # demo --durable
    durable.add_argument("--store", type=Path, required=True)
    durable.add_argument("--workspace", type=Path, default=PACKAGE_ROOT)
    durable.add_argument("--run", type=int, default=1)
    durable.add_argument("--fault", action="store_true")
    durable.add_argument("--fault-after", type=int, default=0)
    durable.add_argument("--latency", type=float, default=0.01)

    node = commands.add_parser("node", help=argparse.SUPPRESS)  # a process of demo --nodes
    node.add_argument("--nats-url", required=True)
    node.add_argument("--cluster", required=True)
    node.add_argument("--name", required=True)
    node.add_argument("--workspace", type=Path, default=PACKAGE_ROOT)
    node.add_argument("--shards", type=int, default=6)
    node.add_argument("--registry-ttl", type=_seconds, default=2.0)
    node.add_argument("--latency", type=float, default=0.0)

    run = commands.add_parser(
        "run",
        help="run your own task with a dynamically composed team",
        description=RUN_DESCRIPTION,
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("task", nargs="?", help="what the team should do (not with --resume)")
    display_options(run)
    run.add_argument(
        "--durable",
        action="store_true",
        help="record the task in the store (persistence.path) until it is finished, so "
        "that run --resume can take it up if this process ends first",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="run the tasks a run --durable recorded and did not finish (no TASK)",
    )
    run.add_argument(
        "--workspace",
        type=_directory,
        default=Path.cwd(),
        help="directory the file tools are confined to (default: the current directory)",
    )
    run.add_argument("--allow-write", action="store_true", help="also grant the write_file tool")

    config = commands.add_parser(
        "config",
        help="print the effective configuration as TOML",
        epilog=CONFIG_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("--config", type=Path, help="a TOML configuration file")
    config.add_argument(
        "--json", action="store_true", help="print it as JSON (an unset setting is null)"
    )
    _add_mcp(commands)
    add_render(commands)
    return parser


def _load(path: Path | None) -> AgentConfig:
    return load_config(path)


def _report_config_error(error: ConfigError) -> None:
    """Print one ``mister-smith: config error: <key path>: <reason>`` line per problem.

    No traceback: a bad configuration is the user's to fix, and each line names the
    key (or environment variable, or file) and what is wrong with it.
    """
    problems = error.problems if isinstance(error, ConfigValidationError) else [str(error)]
    for problem in problems or [str(error)]:
        flat = " ".join(problem.split())  # one line each, whatever the text held
        print(f"mister-smith: config error: {flat}", file=sys.stderr)


def _use_color(stream: TextIO, no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and stream.isatty()


def _serve_mcp(args: argparse.Namespace, config: AgentConfig) -> int:
    options = McpServeOptions(
        transport=args.transport,
        workspace=args.workspace,
        tools=args.tools,
        client=args.client,
        host=args.host,
        port=args.port,
    )
    try:
        code: int = trio.run(serve_mcp, options, config)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as raised:
        error = unwrap_single(raised)
        if isinstance(error, ImportError):
            print(
                f"mister-smith: mcp needs the mcp extra (pip install 'mister-smith[mcp]'): {error}",
                file=sys.stderr,
            )
        elif isinstance(error, ValueError):
            print(f"mister-smith: mcp serve: {error}", file=sys.stderr)
        else:
            raise
        return EXIT_USAGE
    return code


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``mister-smith`` command; return its exit code."""
    stream = sys.stdout if out is None else out
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _load(getattr(args, "config", None))
    except ConfigError as exc:
        _report_config_error(exc)
        return EXIT_USAGE
    if args.command == "config":
        stream.write(config_json(config) if args.json else dump_config(config))
        return 0
    if args.command == "mcp":
        return _serve_mcp(args, config)
    if args.command == "durable-run":
        from ._durable_demo import DurableDemoOptions, durable_run

        durable_options = DurableDemoOptions(
            args.workspace, fault_after=args.fault_after, latency=args.latency
        )
        code: int = trio.run(durable_run, durable_options, args.store, args.run, args.fault, stream)
        return code
    if args.command == "render":
        return run_render(args, config, stream)
    if args.command == "node":
        from ._cluster_node import NodeOptions, main_node

        return main_node(
            NodeOptions(
                nats_url=args.nats_url,
                cluster=args.cluster,
                name=args.name,
                workspace=args.workspace,
                shards=args.shards,
                registry_ttl=args.registry_ttl,
                latency=args.latency,
            )
        )
    if args.json and args.command == "demo" and args.nodes:
        parser.error("--json is not available with --nodes")
    # With --json, stdout carries only the JSON summary; everything else goes to stderr.
    summary_out, stream = (stream, sys.stderr) if args.json else (None, stream)
    color = _use_color(stream, args.no_color)
    live = stream.isatty() and not args.plain
    try:
        if args.command == "demo" and args.durable:
            from ._durable_demo import DurableDemoOptions, run_durable_demo

            durable_code: int = trio.run(
                run_durable_demo, DurableDemoOptions(args.workspace), stream
            )
            return durable_code
        if args.command == "demo" and args.nodes:
            from ._cluster_demo import ClusterDemoOptions, run_cluster_demo

            cluster = ClusterDemoOptions(
                nodes=args.nodes,
                workspace=args.workspace,
                timeout=args.timeout,
                kill=not args.no_faults,
                color=color,
            )
            cluster_code: int = trio.run(run_cluster_demo, cluster, stream)
            return cluster_code
        if args.command == "demo":
            options = DemoOptions(
                model=args.model,
                color=color,
                live=live,
                workspace=args.workspace,
                timeout=args.timeout,
                faults=not args.no_faults,
                mcp=args.mcp,
            )
            demo_code: int = trio.run(run_demo, options, stream, config, summary_out)
            return demo_code
        if (args.task is None) != args.resume:
            print("mister-smith: run needs a TASK, or --resume without one", file=sys.stderr)
            return EXIT_USAGE
        run_options = RunOptions(
            task=args.task or "",
            durable=args.durable,
            resume=args.resume,
            model=args.model,
            color=color,
            live=live,
            workspace=args.workspace,
            timeout=args.timeout,
            allow_write=args.allow_write,
            config_file=args.config,
        )
        run_code: int = trio.run(run_task, run_options, stream, config, summary_out)
        return run_code
    except ConfigError as exc:
        _report_config_error(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mister-smith: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
