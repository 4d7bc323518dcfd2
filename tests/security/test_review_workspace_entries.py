"""Review of issue 12, item 2: the workspace quota counted bytes only, and walked slowly.

Attacks (found in the review, against the merged jail):

* Directories and empty files cost disk but no bytes: 200 writes of an empty file under
  40 fresh directories each made 8,000 directories (32 MB on ext4) in a workspace with
  a 64 KiB quota, whose count stayed at 0. Now entries (files, directories, every
  kind) have a quota too, and each directory a write creates is admitted against it.
* Deep paths made the quota's measurement quadratic: it reopened every directory from
  the root, so six chains 2,000 directories deep took one measurement 107 s, in a
  worker thread holding the quota's lock (every later write queued behind it, holding
  a blocking-thread slot each). Now paths have at most 64 components and the walk
  opens each directory once, relative to its parent (the same tree: 6 ms).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import trio

from mister_smith.errors import InvalidToolInput, ToolQuotaExceeded
from mister_smith.tools import AllowedCommand, ArgumentPolicy, CommandTool, Workspace, WriteFileTool
from mister_smith.tools._jail import MAX_DEPTH


def entries_on_disk(root: Path) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(root))


async def test_empty_files_under_fresh_directories_hit_the_entry_quota(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, quota_bytes=64 * 1024, quota_entries=200)
    tool = WriteFileTool(workspace)
    written, refusals = 0, []
    for index in range(30):
        path = "/".join(f"d{index}x{level}" for level in range(20)) + "/empty"
        try:
            await tool.execute({"path": path, "content": ""})
        except ToolQuotaExceeded as error:
            refusals.append(str(error))
        else:
            written += 1
    refused = len(refusals)
    assert all("200-entry quota" in text for text in refusals)
    # 9 writes of 21 entries fit; the 10th stops at its 12th directory
    assert (written, refused) == (9, 21)
    assert entries_on_disk(tmp_path) == 200
    assert workspace.quota is not None
    assert (workspace.quota.used(), workspace.quota.entries_used()) == (0, 200)


async def test_concurrent_writers_cannot_share_the_last_entries(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, quota_entries=5)
    tool = WriteFileTool(workspace)
    written: list[str] = []
    refused: list[str] = []

    async def write(name: str) -> None:
        try:
            await tool.execute({"path": name, "content": "x"})
        except ToolQuotaExceeded:
            refused.append(name)
        else:
            written.append(name)

    async with trio.open_nursery() as nursery:
        for index in range(12):
            nursery.start_soon(write, f"f{index}")
    assert (len(written), len(refused)) == (5, 7)
    assert entries_on_disk(tmp_path) == 5
    # Rewriting an existing file adds no entry, so it still works at the limit.
    await tool.execute({"path": written[0], "content": "again"})
    assert (tmp_path / written[0]).read_text() == "again"


async def test_paths_deeper_than_the_limit_are_refused_by_every_tool(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    deep = "/".join(["a"] * (MAX_DEPTH + 1))
    with pytest.raises(InvalidToolInput, match=f"more than {MAX_DEPTH}"):
        await WriteFileTool(workspace).execute({"path": deep, "content": "x"})
    listing = CommandTool(
        {"ls": AllowedCommand(["ls"], arguments=ArgumentPolicy(operands="paths"))},
        workspace=workspace,
    )
    with pytest.raises(InvalidToolInput, match=f"more than {MAX_DEPTH}"):
        await listing.execute({"command": "ls", "args": [deep]})
    await WriteFileTool(workspace).execute({"path": "/".join(["a"] * MAX_DEPTH), "content": "x"})


def test_measuring_a_deep_tree_made_by_another_program_is_fast(tmp_path: Path) -> None:
    try:
        _measure_deep_tree(tmp_path)
    finally:
        # pytest's own clean-up of old temporary directories (shutil.rmtree) recurses
        # once per level and fails on very deep trees in a later session: remove it here.
        for chain in range(6):
            subprocess.run(["rm", "-rf", str(tmp_path / f"c{chain}")], check=True)


def _measure_deep_tree(tmp_path: Path) -> None:
    # 6 x 400 nested directories, as a command could leave: deep enough that the old
    # quadratic walk took seconds (107 s at 2,000 levels), cheap enough to build here.
    for chain in range(6):
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        os.mkdir(f"c{chain}", dir_fd=fd)
        for name in [f"c{chain}"] + ["a"] * 400:
            if name == "a":
                os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)
    (tmp_path / "c0" / "top.txt").write_bytes(b"12345")
    workspace = Workspace(tmp_path)
    assert workspace.quota is not None
    started = time.perf_counter()
    used, entries = workspace.quota.used(), workspace.quota.entries_used()
    took = time.perf_counter() - started
    assert took < 1.0, f"measuring took {took:.2f} s"  # was 107 s
    assert used == 5
    # Counted down to the walk's depth (80 levels), beyond which no tool reaches.
    assert 6 * 60 < entries < 6 * 100
