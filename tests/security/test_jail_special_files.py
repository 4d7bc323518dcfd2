"""Issue 12, item 2: FIFOs, devices, sockets and hard links to outside files are refused.

Against the old jail, reading a FIFO blocked a worker thread for good (four of them
starved the tools), and a hard link to an outside file was read and written through.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import trio

from mister_smith.errors import ToolPermissionDenied
from mister_smith.tools import ListDirectoryTool, ReadFileTool, Workspace, WriteFileTool, _jail


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "plain.txt").write_text("plain")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


async def test_four_fifos_neither_block_nor_starve_the_thread_limiter(root: Path) -> None:
    workspace = Workspace(root)
    reader, writer = ReadFileTool(workspace), WriteFileTool(workspace)
    for index in range(4):
        os.mkfifo(root / f"pipe{index}")
    limiter = trio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = 4  # as many threads as FIFOs: one blocked thread would starve us
    refusals: list[str] = []

    async def read_fifo(name: str) -> None:
        with pytest.raises(ToolPermissionDenied, match="is a FIFO") as caught:
            await reader.execute({"path": name})
        refusals.append(str(caught.value))

    with trio.fail_after(5):  # real time; each refusal takes microseconds
        async with trio.open_nursery() as nursery:
            for index in range(4):
                nursery.start_soon(read_fifo, f"pipe{index}")
        with pytest.raises(ToolPermissionDenied, match="is a FIFO"):
            await writer.execute({"path": "pipe0", "content": "x"})
        assert (await reader.execute({"path": "plain.txt"}))["content"] == "plain"
    assert len(refusals) == 4
    assert limiter.borrowed_tokens == 0
    assert stat.S_ISFIFO(os.lstat(root / "pipe0").st_mode)  # not replaced by the write


def test_fifo_swapped_in_after_the_check_does_not_block(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO swapped in between the ``lstat`` and the open: ``O_NONBLOCK`` keeps the
    open from blocking and ``fstat`` on the opened fd refuses it before any read."""
    os.mkfifo(root / "pipe")
    regular = os.stat(root / "plain.txt")
    monkeypatch.setattr(_jail, "lstat_at", lambda dir_fd, name: regular)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ToolPermissionDenied, match="is a FIFO"):
            _jail.open_regular(dir_fd, "pipe", shown="pipe")
    finally:
        os.close(dir_fd)


async def test_sockets_and_devices_are_refused(root: Path) -> None:
    workspace = Workspace(root)
    reader = ReadFileTool(workspace)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(root / "sock"))
        with pytest.raises(ToolPermissionDenied, match="is a socket"):
            await reader.execute({"path": "sock"})
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(ToolPermissionDenied, match="is a character device"):
        await reader.execute({"path": "null"})
    with pytest.raises(ToolPermissionDenied, match="is a character device"):
        await WriteFileTool(workspace).execute({"path": "null", "content": "x"})


async def test_hard_link_to_an_outside_file_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    os.link(secret, root / "linked.txt")
    workspace = Workspace(root)
    reader, writer = ReadFileTool(workspace), WriteFileTool(workspace)
    with pytest.raises(ToolPermissionDenied, match="has 2 hard links"):
        await reader.execute({"path": "linked.txt"})
    for append in (False, True):
        with pytest.raises(ToolPermissionDenied, match="has 2 hard links"):
            await writer.execute({"path": "linked.txt", "content": "pwned", "append": append})
    assert secret.read_text() == "top secret"
    assert os.stat(secret).st_nlink == 2  # neither written through nor unlinked
    listing = await ListDirectoryTool(workspace).execute({})
    assert {"name": "linked.txt", "type": "file", "size": 10} in listing["entries"]


async def test_hard_link_made_while_writing_cannot_redirect_the_write(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes never go through an existing inode: the temp file is renamed over the
    name, so a hard link made after the checks only loses its workspace name."""
    secret = tmp_path / "secret.txt"
    real_replace = _jail.replace_file

    def link_then_replace(dir_fd: int, name: str, data: bytes, *, mode: int | None) -> None:
        os.unlink(root / name)
        os.link(secret, root / name)
        real_replace(dir_fd, name, data, mode=mode)

    monkeypatch.setattr(_jail, "replace_file", link_then_replace)
    await WriteFileTool(Workspace(root)).execute({"path": "plain.txt", "content": "new"})
    assert secret.read_text() == "top secret"
    assert (root / "plain.txt").read_text() == "new"
    assert os.stat(secret).st_nlink == 1
