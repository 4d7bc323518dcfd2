"""Issue 12, item 2: a per-file cap and a per-workspace byte quota bound what writes take.

Against the old jail, 40 appends of 1 MiB made a 40 MiB file: nothing counted the total.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from mister_smith.errors import ToolQuotaExceeded
from mister_smith.tools import Workspace, WriteFileTool

MIB = 1_048_576
CHUNK = "x" * MIB


async def append_forty(tool: WriteFileTool, path: str) -> tuple[int, list[ToolQuotaExceeded]]:
    written, refused = 0, []
    for _ in range(40):
        try:
            await tool.execute({"path": path, "content": CHUNK, "append": True})
        except ToolQuotaExceeded as error:
            refused.append(error)
        else:
            written += 1
    return written, refused


async def test_forty_appends_stop_at_the_workspace_quota(tmp_path: Path) -> None:
    (tmp_path / "old.bin").write_bytes(b"o" * MIB)  # what is already there counts
    workspace = Workspace(tmp_path, max_file_bytes=64 * MIB, quota_bytes=6 * MIB)
    written, refused = await append_forty(WriteFileTool(workspace), "log.txt")
    assert (written, len(refused)) == (5, 35)
    assert os.path.getsize(tmp_path / "log.txt") == 5 * MIB
    assert "over its 6291456-byte quota (6291456 bytes used)" in str(refused[0])
    # Space freed by someone else is seen: the quota is measured afresh before refusing.
    (tmp_path / "old.bin").unlink()
    await WriteFileTool(workspace).execute({"path": "log.txt", "content": CHUNK, "append": True})
    assert os.path.getsize(tmp_path / "log.txt") == 6 * MIB


async def test_forty_appends_stop_at_the_default_file_cap(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)  # defaults: 1 MiB per write, 8 MiB per file
    written, refused = await append_forty(WriteFileTool(workspace), "log.txt")
    assert (written, len(refused)) == (8, 32)
    assert os.path.getsize(tmp_path / "log.txt") == 8 * MIB
    assert "'log.txt' would be 9437184 bytes, over the 8388608-byte per-file limit" in str(
        refused[0]
    )


async def test_concurrent_writers_cannot_share_the_last_bytes(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, quota_bytes=4 * MIB)
    tool = WriteFileTool(workspace)
    outcomes: list[str] = []

    async def write(index: int) -> None:
        try:
            await tool.execute({"path": f"f{index}", "content": CHUNK})
        except ToolQuotaExceeded:
            outcomes.append("refused")
        else:
            outcomes.append("written")

    async with trio.open_nursery() as nursery:
        for index in range(10):
            nursery.start_soon(write, index)
    assert sorted(outcomes) == ["refused"] * 6 + ["written"] * 4
    assert sum(path.stat().st_size for path in tmp_path.iterdir()) == 4 * MIB


async def test_replacing_a_file_counts_only_the_difference(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, quota_bytes=2 * MIB)
    tool = WriteFileTool(workspace)
    for _ in range(5):  # rewriting the same 1 MiB file never accumulates
        await tool.execute({"path": "same.txt", "content": CHUNK})
    await tool.execute({"path": "other.txt", "content": CHUNK})
    with pytest.raises(ToolQuotaExceeded):
        await tool.execute({"path": "third.txt", "content": "y"})
    await tool.execute({"path": "same.txt", "content": "small"})  # shrinking frees room
    await tool.execute({"path": "third.txt", "content": "y" * 1000})
    assert workspace.quota is not None
    assert workspace.quota.used() == MIB + 5 + 1000


def test_limits_must_be_positive(tmp_path: Path) -> None:
    for name in ("max_file_bytes", "quota_bytes"):
        with pytest.raises(ValueError, match=name):
            Workspace(tmp_path, **{name: 0})  # type: ignore[arg-type]
    assert Workspace(tmp_path, quota_bytes=None, quota_entries=None).quota is None
