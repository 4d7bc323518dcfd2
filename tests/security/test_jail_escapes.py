"""Issue 12, item 2: ``..``, absolute paths and symlink escapes are still refused.

The same refusals as before the fd-based jail, now checked for every tool and for any
path built from ``..``, separators and symlinks leading out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import ToolError, ToolPermissionDenied
from mister_smith.tools import ListDirectoryTool, ReadFileTool, Workspace, WriteFileTool

SECRET = "top secret"
ESCAPES = [
    "../secret.txt",
    "docs/../../secret.txt",
    "docs/..",
    "..",
    "/etc/passwd",
    "~/secret.txt",
    "\\etc\\passwd",
    "..\\secret.txt",
    "C:\\Windows\\win.ini",
    "C:secret.txt",
    "out/secret.txt",  # through a symlinked directory
    "leak.txt",  # a symlinked file
    "out",
    "docs/deep/../../../secret.txt",
]


def build(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("alpha")
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "out").symlink_to(tmp_path)
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "docs" / "up").symlink_to("..")
    return root


@pytest.mark.parametrize("path", ESCAPES)
async def test_escapes_are_refused_by_every_tool(tmp_path: Path, path: str) -> None:
    workspace = Workspace(build(tmp_path))
    with pytest.raises(ToolPermissionDenied):
        await ReadFileTool(workspace).execute({"path": path})
    with pytest.raises(ToolPermissionDenied):
        await WriteFileTool(workspace).execute({"path": path, "content": "pwned"})
    with pytest.raises(ToolPermissionDenied):
        await WriteFileTool(workspace).execute({"path": f"{path}/new.txt", "content": "x"})
    with pytest.raises(ToolPermissionDenied):
        await ListDirectoryTool(workspace).execute({"path": path})
    assert (tmp_path / "secret.txt").read_text() == SECRET
    assert sorted(os.listdir(tmp_path)) == ["secret.txt", "ws"]


async def test_create_dirs_does_not_create_through_a_symlink(tmp_path: Path) -> None:
    workspace = Workspace(build(tmp_path))
    with pytest.raises(ToolPermissionDenied, match="'out' is a symlink"):
        await WriteFileTool(workspace).execute({"path": "out/made/x.txt", "content": "x"})
    assert not (tmp_path / "made").exists()
    with pytest.raises(ToolPermissionDenied, match="'docs/up' is a symlink"):
        await WriteFileTool(workspace).execute({"path": "docs/up/x.txt", "content": "x"})
    assert not (tmp_path / "x.txt").exists()


async def test_a_root_given_through_a_symlink_is_pinned(tmp_path: Path) -> None:
    """The root is resolved and opened once; re-pointing the link later changes nothing."""
    root = build(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "docs").mkdir()
    (tmp_path / "elsewhere" / "docs" / "a.txt").write_text("elsewhere")
    (tmp_path / "link").symlink_to(root)
    workspace = Workspace(tmp_path / "link")
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert (await ReadFileTool(workspace).execute({"path": "docs/a.txt"}))["content"] == "alpha"
    # Even renaming the root directory away leaves the tools on the same directory.
    root.rename(tmp_path / "moved")
    assert (await ReadFileTool(workspace).execute({"path": "docs/a.txt"}))["content"] == "alpha"


async def test_a_closed_workspace_refuses_calls(tmp_path: Path) -> None:
    with Workspace(build(tmp_path)) as workspace:
        assert (await ReadFileTool(workspace).execute({"path": "docs/a.txt"}))["size"] == 5
    assert workspace.closed
    with pytest.raises(ToolError, match="is closed"):
        await ReadFileTool(workspace).execute({"path": "docs/a.txt"})


COMPONENTS = st.sampled_from(["..", ".", "", "docs", "a.txt", "out", "leak.txt", "up", "~"])


@given(parts=st.lists(COMPONENTS, max_size=6), separator=st.sampled_from(["/", "\\"]))
def test_no_path_reads_the_outside_secret(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], separator: str
) -> None:
    base = tmp_path_factory.mktemp("jail")
    workspace = Workspace(build(base))
    for prefix in ("", separator):
        path = prefix + separator.join(parts)
        try:
            shown, data = workspace.read_bytes(path)
        except ToolError:
            continue
        assert data == b"alpha"
        assert shown == "docs/a.txt"
    workspace.close()
