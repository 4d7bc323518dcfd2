"""``mister-smith node``: one node process of the cluster demo (and of the tests).

It opens a runtime, joins the cluster, declares the ``surveyor`` shards (placed by
lease across the nodes that declare them) and serves ``stats-<node>``, which answers
with its actor system's accounting. It prints ``ready <node>`` once it serves, then
runs until SIGTERM / SIGINT (graceful: its shards' leases are released) or SIGKILL.
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from ..actors import Actor, ActorContext, ActorSystem
from ..config import AgentConfig, DistributedSettings
from ..distributed import WireFormat, open_node
from ..runtime import RuntimeManager

WIRE = WireFormat()
"""The message types of the cluster demo (registered the same on every node)."""


@WIRE.register
@attrs.frozen
class SurveyPackage:
    """Ask a surveyor to survey one package directory of the workspace."""

    package: str


@WIRE.register
@attrs.frozen
class PackageReport:
    """What a surveyor found in one package (and which node did the work)."""

    package: str
    files: int
    lines: int
    classes: int
    functions: int
    node: str


@WIRE.register
@attrs.frozen
class NodeAccounting:
    """A node's actor-system accounting: accepted = handled + dead-lettered."""

    node: str
    accepted: int
    handled: int
    dead_lettered: int
    surveyed: int


@attrs.frozen
class NodeOptions:
    """How a node process runs.

    Attributes:
        nats_url: The NATS server.
        cluster: The cluster name.
        name: This node's name.
        workspace: The directory the surveyors read.
        shards: How many ``surveyor`` shards the cluster has.
        registry_ttl: Seconds before a dead node's leases expire.
        latency: Seconds a survey takes on top of reading the files (to make
            progress visible).
    """

    nats_url: str
    cluster: str
    name: str
    workspace: Path
    shards: int = 6
    registry_ttl: float = 2.0
    latency: float = 0.0


_CLASS = re.compile(r"^\s*class\s", re.MULTILINE)
_DEF = re.compile(r"^\s*(async\s+)?def\s", re.MULTILINE)


def survey_directory(directory: Path) -> tuple[int, int, int, int]:
    """Files, lines, classes and functions of the Python files under ``directory``
    (blocking: run it in a thread)."""
    files = lines = classes = functions = 0
    for path in sorted(directory.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        files += 1
        lines += text.count("\n")
        classes += len(_CLASS.findall(text))
        functions += len(_DEF.findall(text))
    return files, lines, classes, functions


class Surveyor(Actor):
    """Surveys the packages it is asked about (one shard of ``surveyor``)."""

    def __init__(self, workspace: Path, node: str, latency: float, done: list[int]) -> None:
        self.workspace = workspace
        self.node = node
        self.latency = latency
        self.done = done

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        """Survey ``message.package`` (a direct child directory of the workspace)."""
        if not isinstance(message, SurveyPackage):
            raise TypeError(f"a surveyor takes SurveyPackage, not {type(message).__name__}")
        directory = (self.workspace / message.package).resolve()
        if directory.parent != self.workspace.resolve() or not directory.is_dir():
            raise ValueError(f"{message.package!r} is not a package of the workspace")
        counts = await trio.to_thread.run_sync(survey_directory, directory)
        await trio.sleep(self.latency)
        self.done[0] += 1
        return PackageReport(message.package, *counts, node=self.node)


class Accountant(Actor):
    """Answers with this node's actor-system accounting."""

    def __init__(self, system: ActorSystem, node: str, done: list[int]) -> None:
        self.system = system
        self.node = node
        self.done = done

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        """Any message: the accounting now (this ask itself is counted as handled)."""
        stats = self.system.statistics()
        return NodeAccounting(
            self.node, stats.accepted, stats.handled + 1, stats.dead_lettered, self.done[0]
        )


def node_config(options: NodeOptions) -> AgentConfig:
    """The node's configuration: defaults, joined to the demo's cluster."""
    config = AgentConfig()
    return attrs.evolve(
        config,
        distributed=DistributedSettings(
            nats_url=options.nats_url,
            cluster=options.cluster,
            node_name=options.name,
            registry_ttl=options.registry_ttl,
            reconnect_wait=0.2,
        ),
    )


async def run_node(options: NodeOptions, out: TextIO) -> int:
    """Run one node until SIGTERM / SIGINT; return the exit code."""
    done = [0]
    async with (
        RuntimeManager.open(node_config(options)) as runtime,
        open_node(runtime, wire=WIRE) as node,
    ):
        await node.spawn(
            Accountant, runtime.actor_system, options.name, done, name=f"stats-{options.name}"
        )
        await node.sharded(
            "surveyor",
            Surveyor,
            options.workspace,
            options.name,
            options.latency,
            done,
            shards=options.shards,
        )
        out.write(f"ready {options.name}\n")
        out.flush()
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
    return 0


def main_node(options: NodeOptions) -> int:
    """Entry point of ``mister-smith node``."""
    code: int = trio.run(run_node, options, sys.stdout)
    return code
