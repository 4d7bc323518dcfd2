"""``mister-smith demo --nodes 3`` from the command line: an embedded nats-server, three
node processes, one killed with SIGKILL midway, its shards resumed elsewhere, and the
accounting line at the end."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("nats", reason="the nats extra is not installed")


def test_cluster_demo_survives_a_killed_node() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mister_smith.cli", "demo", "--nodes", "3", "--plain"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"nats-server +nats://127\.0\.0\.1:\d+", out)
    assert re.search(r"SIGKILL +node-\d", out)
    assert "moved" in out
    killed = re.search(r"killed +(node-\d) \(SIGKILL\); (\d+) shards moved", out)
    assert killed is not None
    assert int(killed.group(2)) >= 1
    assert re.search(r"task +completed: (\d+)/\1 packages", out)
    line = re.search(
        r"messages accepted = handled \+ dead-lettered: (\d+) = (\d+) \+ (\d+)  OK", out
    )
    assert line is not None
    accepted, handled, dead = map(int, line.groups())
    assert accepted == handled + dead > 0
    assert killed.group(1) not in re.findall(r"^  (node-\d) +accepted", out, re.MULTILINE)


def test_cluster_demo_needs_two_nodes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mister_smith.cli", "demo", "--nodes", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "must be 2 to 16 nodes" in done.stderr
