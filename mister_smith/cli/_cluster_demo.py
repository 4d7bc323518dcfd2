"""``mister-smith demo --nodes N``: the survey spread over N node processes on NATS.

An embedded ``nats-server`` (from the pinned wheel, 127.0.0.1, a port it picks) and N
node processes start; each declares the ``surveyor`` shards, which the nodes share out
by KV lease. A coordinator (this process, a node too) asks the shard owning each
package of the workspace to survey it. When a third of the packages are done, the node
running the most shards is killed with SIGKILL: its leases expire, the survivors start
its shards, the coordinator's refs follow them (an ask that hit the dead node is tried
again), and the survey completes. The summary ends with the same accounting line as the
single-process demo, summed over the nodes that are still alive:
``messages accepted = handled + dead-lettered``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import attrs
import trio

from ..config import AgentConfig, DistributedSettings
from ..distributed import NatsUnavailable, Node, ShardRegion, open_nats_server, open_node
from ..errors import ActorNotFound, ActorStopped, AskTimeout, HandlingInterrupted
from ..runtime import RuntimeManager
from ._cluster_node import WIRE, NodeAccounting, PackageReport, SurveyPackage
from ._display import BOLD, GREEN, RED, RESET, YELLOW
from ._session import EXIT_INVARIANT, EXIT_OK, EXIT_TASK_FAILED

CLUSTER = "demo"
_RETRYABLE = (ActorNotFound, AskTimeout, ActorStopped, HandlingInterrupted, NatsUnavailable)


@attrs.frozen
class ClusterDemoOptions:
    """How the cluster demo runs.

    Attributes:
        nodes: Node processes to start (>= 2, so one can die).
        workspace: The directory whose packages are surveyed.
        shards: ``surveyor`` shards shared out among the nodes.
        registry_ttl: Seconds after which a dead node's leases expire.
        latency: Seconds each survey takes on top of reading the files.
        timeout: Seconds the whole survey gets.
        kill: Kill a node midway.
        color: ANSI colours.
    """

    nodes: int = 3
    workspace: Path = Path(__file__).resolve().parent.parent
    shards: int = 6
    registry_ttl: float = 2.0
    latency: float = 0.25
    timeout: float = 60.0
    kill: bool = True
    color: bool = False


@attrs.define
class _Run:
    reports: dict[str, PackageReport] = attrs.field(factory=dict)
    retries: int = 0
    killed: str = ""
    moves: list[str] = attrs.field(factory=list)


def packages_of(workspace: Path) -> list[str]:
    """The package directories directly under ``workspace`` (with an ``__init__.py``)."""
    return sorted(
        p.name for p in workspace.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )


async def _start_node(
    nursery: trio.Nursery, url: str, name: str, options: ClusterDemoOptions
) -> trio.Process:
    """Start one node process and wait for its ``ready`` line."""
    command = [
        sys.executable,
        "-m",
        "mister_smith.cli",
        "node",
        "--nats-url",
        url,
        "--cluster",
        CLUSTER,
        "--name",
        name,
        "--workspace",
        os.fspath(options.workspace),
        "--shards",
        str(options.shards),
        "--registry-ttl",
        str(options.registry_ttl),
        "--latency",
        str(options.latency),
    ]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(30):
        while b"ready" not in buffer:
            chunk = await process.stdout.receive_some(1024)
            if not chunk:
                raise RuntimeError(f"node {name} exited before it was ready")
            buffer += chunk
    return process


async def _stop_process(process: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                await process.wait()
        if process.poll() is None:
            process.kill()
            await process.wait()


async def _holders(node: Node, shards: int) -> dict[str, str]:
    holders: dict[str, str] = {}
    for index in range(shards):
        holder = await node.placement.holder(f"surveyor-{index}")
        holders[f"surveyor-{index}"] = holder or "-"
    return holders


async def _balanced(node: Node, options: ClusterDemoOptions) -> dict[str, str]:
    """The shard holders once every shard runs and no node holds more than its share
    (the nodes hand shards over by lease until then; at most ``10 * registry_ttl``)."""
    share = math.ceil(options.shards / options.nodes)
    holders = await _holders(node, options.shards)
    for _ in range(int(options.registry_ttl * 100)):
        counts = [list(holders.values()).count(h) for h in set(holders.values())]
        if "-" not in holders.values() and max(counts) <= share:
            break
        await trio.sleep(0.1)
        holders = await _holders(node, options.shards)
    return holders


async def run_cluster_demo(options: ClusterDemoOptions, out: TextIO) -> int:
    """Run the cluster demo; print progress and the summary; return the exit code."""

    def paint(text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if options.color else text

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    if options.nodes < 2:
        raise ValueError("the cluster demo needs at least 2 nodes (one of them is killed)")
    packages = packages_of(options.workspace)
    run = _Run()
    processes: dict[str, trio.Process] = {}
    started = trio.current_time()
    say(paint(f"mister-smith: survey {options.workspace} on {options.nodes} nodes", BOLD))
    async with open_nats_server() as server:
        say(f"nats-server    {server.url} (embedded, JetStream on)")
        config = attrs.evolve(
            AgentConfig(),
            distributed=DistributedSettings(
                nats_url=server.url,
                cluster=CLUSTER,
                node_name="coordinator",
                registry_ttl=options.registry_ttl,
                reconnect_wait=0.2,
            ),
        )
        try:
            async with trio.open_nursery() as starting:
                for index in range(options.nodes):
                    name = f"node-{index + 1}"

                    async def start(name: str = name) -> None:
                        processes[name] = await _start_node(starting, server.url, name, options)

                    starting.start_soon(start)
            async with (
                RuntimeManager.open(config) as runtime,
                open_node(runtime, wire=WIRE) as node,
            ):
                region = ShardRegion(node, "surveyor", options.shards)
                holders = await _balanced(node, options)
                say(f"nodes          {', '.join(sorted(processes))} + coordinator")
                say("shards         " + ", ".join(f"{s}@{h}" for s, h in holders.items()))
                say(f"packages       {len(packages)}: {', '.join(packages)}")
                with trio.move_on_after(options.timeout):
                    await _survey(node, region, packages, processes, run, options, say, paint)
                accounting = await _accounting(node, processes, run, say)
                stats = runtime.actor_system.statistics()
                accounting.append(
                    NodeAccounting(
                        "coordinator", stats.accepted, stats.handled, stats.dead_lettered, 0
                    )
                )
        finally:
            with trio.CancelScope(shield=True):
                for process in processes.values():
                    await _stop_process(process)
    return _summary(packages, run, accounting, trio.current_time() - started, say, paint)


async def _survey(
    node: Node,
    region: ShardRegion,
    packages: list[str],
    processes: dict[str, trio.Process],
    run: _Run,
    options: ClusterDemoOptions,
    say: Callable[[str], None],
    paint: Callable[[str, str], str],
) -> None:
    limiter = trio.CapacityLimiter(4)
    kill_after = math.ceil(len(packages) / 3)
    killed = trio.Event()

    async def survey(package: str) -> None:
        async with limiter:
            while True:
                shard = region.ref_for(package).name
                try:
                    report = await region.ask(package, SurveyPackage(package), timeout=2)
                except _RETRYABLE as exc:
                    run.retries += 1
                    say(paint(f"  retry        {package} ({shard}): {type(exc).__name__}", YELLOW))
                    await trio.sleep(0.3)
                    continue
                assert isinstance(report, PackageReport)
                run.reports[package] = report
                say(
                    f"  surveyed     {package:<16} on {report.node:<8} ({shard}) "
                    f"{report.files} files, {report.lines} lines"
                )
                if options.kill and len(run.reports) >= kill_after and not killed.is_set():
                    killed.set()
                return

    async def kill_one() -> None:
        await killed.wait()
        holders = await _holders(node, options.shards)
        counts = {name: list(holders.values()).count(name) for name in processes}
        victim = max(sorted(counts), key=lambda name: counts[name])
        run.killed = victim
        processes[victim].kill()  # SIGKILL: no goodbye, its leases just stop being renewed
        say(
            paint(
                f"  SIGKILL      {victim} (it ran {counts[victim]} shards); its leases expire "
                f"within {options.registry_ttl} s",
                RED,
            )
        )
        before = holders
        with trio.move_on_after(options.registry_ttl * 5):
            while True:
                await trio.sleep(0.25)
                now = await _holders(node, options.shards)
                for shard, holder in now.items():
                    if holder != before.get(shard) and holder != "-":
                        move = f"{shard}: {before.get(shard)} -> {holder}"
                        run.moves.append(move)
                        say(paint(f"  moved        {move}", GREEN))
                before = {s: h for s, h in now.items() if h != "-"} | {
                    s: h for s, h in before.items() if now.get(s) == "-"
                }
                if victim not in now.values() and "-" not in now.values():
                    return

    async with trio.open_nursery() as nursery:
        if options.kill:
            nursery.start_soon(kill_one)
        async with trio.open_nursery() as surveys:
            for package in packages:
                surveys.start_soon(survey, package)
        killed.set()  # (nothing to kill when the survey finished first)


async def _accounting(
    node: Node, processes: dict[str, trio.Process], run: _Run, say: Callable[[str], None]
) -> list[NodeAccounting]:
    found: list[NodeAccounting] = []
    for name in sorted(processes):
        if name == run.killed:
            continue
        reply = await node.remote(f"stats-{name}").ask("accounting", timeout=5)
        assert isinstance(reply, NodeAccounting)
        found.append(reply)
    return found


def _summary(
    packages: list[str],
    run: _Run,
    accounting: list[NodeAccounting],
    duration: float,
    say: Callable[[str], None],
    paint: Callable[[str, str], str],
) -> int:
    say("")
    say(paint("== summary " + "=" * 60, BOLD))
    done = len(run.reports)
    complete = done == len(packages)
    status = paint("completed", GREEN) if complete else paint("INCOMPLETE", RED)
    say(f"task        {status}: {done}/{len(packages)} packages in {duration:.2f} s")
    files = sum(r.files for r in run.reports.values())
    lines = sum(r.lines for r in run.reports.values())
    classes = sum(r.classes for r in run.reports.values())
    functions = sum(r.functions for r in run.reports.values())
    say(f"result      {files} files, {lines} lines, {classes} classes, {functions} functions")
    by_node: dict[str, int] = {}
    for report in run.reports.values():
        by_node[report.node] = by_node.get(report.node, 0) + 1
    say("work        " + ", ".join(f"{n}: {c}" for n, c in sorted(by_node.items())))
    if run.killed:
        say(
            f"killed      {run.killed} (SIGKILL); {len(run.moves)} shards moved; "
            f"{run.retries} asks retried"
        )
    for item in accounting:
        say(
            f"  {item.node:<12} accepted {item.accepted:>4} = handled {item.handled:>4} + "
            f"dead-lettered {item.dead_lettered}"
        )
    accepted = sum(a.accepted for a in accounting)
    handled = sum(a.handled for a in accounting)
    dead = sum(a.dead_lettered for a in accounting)
    holds = all(a.accepted == a.handled + a.dead_lettered for a in accounting)
    verdict = paint("OK", GREEN) if holds else paint("FAILED", RED)
    say(f"messages accepted = handled + dead-lettered: {accepted} = {handled} + {dead}  {verdict}")
    if not holds:
        return EXIT_INVARIANT
    return EXIT_OK if complete else EXIT_TASK_FAILED
