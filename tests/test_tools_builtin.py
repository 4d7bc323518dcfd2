"""Built-in tools: workspace files (traversal refused), HTTP GET (mocked), commands."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import (
    InvalidToolInput,
    ToolExecutionFailed,
    ToolPermissionDenied,
    ToolTimeout,
)
from mister_smith.tools import (
    AllowedCommand,
    ArgumentPolicy,
    CommandTool,
    HttpGetTool,
    ToolBus,
    Workspace,
)

# -- files -------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("alpha")
    (tmp_path / "secret.txt").write_text("top secret")
    return Workspace(root, max_read_bytes=64, max_write_bytes=32, max_entries=3)


def file_bus(workspace: Workspace) -> ToolBus:
    bus = ToolBus(default_policy="open")
    for item in workspace.tools():
        bus.register_tool(item)
    return bus


async def test_read_write_list(workspace: Workspace) -> None:
    bus = file_bus(workspace)
    assert await bus.call("a", "read_file", {"path": "docs/a.txt"}) == {
        "path": "docs/a.txt",
        "content": "alpha",
        "size": 5,
    }
    assert await bus.call("a", "write_file", {"path": "new/deep/b.txt", "content": "bé"}) == {
        "path": "new/deep/b.txt",
        "bytes_written": 3,
    }
    await bus.call("a", "write_file", {"path": "new/deep/b.txt", "content": "!", "append": True})
    assert Path(workspace.root, "new/deep/b.txt").read_text() == "bé!"
    listing = await bus.call("a", "list_directory", {})
    assert listing == {
        "path": ".",
        "entries": [
            {"name": "docs", "type": "directory", "size": listing["entries"][0]["size"]},  # type: ignore[index]
            {"name": "new", "type": "directory", "size": listing["entries"][1]["size"]},  # type: ignore[index]
        ],
        "truncated": False,
    }
    for i in range(4):
        await bus.call("a", "write_file", {"path": f"many/{i}", "content": ""})
    many = await bus.call("a", "list_directory", {"path": "many"})
    assert [e["name"] for e in many["entries"]] == ["0", "1", "2"]  # type: ignore[index]
    assert many["truncated"] is True  # type: ignore[index]


async def test_size_limits(workspace: Workspace) -> None:
    bus = file_bus(workspace)
    Path(workspace.root, "big.txt").write_text("x" * 65)
    with pytest.raises(ToolExecutionFailed, match="over the 64-byte read limit"):
        await bus.call("a", "read_file", {"path": "big.txt"})
    with pytest.raises(InvalidToolInput, match="longer than 32 characters"):
        await bus.call("a", "write_file", {"path": "x", "content": "y" * 33})
    with pytest.raises(ToolExecutionFailed, match="over the 32-byte limit"):
        await bus.call("a", "write_file", {"path": "x", "content": "é" * 20})  # 40 bytes
    Path(workspace.root, "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(ToolExecutionFailed, match="not UTF-8") as caught:
        await bus.call("a", "read_file", {"path": "bin"})
    assert caught.value.__cause__ is not None
    with pytest.raises(ToolExecutionFailed, match=r"'missing\.txt' does not exist"):
        await bus.call("a", "read_file", {"path": "missing.txt"})


TRAVERSALS = [
    "../secret.txt",
    "docs/../../secret.txt",
    "docs/..",
    "..",
    "/etc/passwd",
    "~/secret.txt",
    "\\etc\\passwd",
    "C:\\Windows\\win.ini",
    "C:secret.txt",
    "..\\secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_path_traversal_is_refused(workspace: Workspace, path: str) -> None:
    bus = file_bus(workspace)
    with pytest.raises(ToolPermissionDenied):
        await bus.call("a", "read_file", {"path": path})
    with pytest.raises(ToolPermissionDenied):
        await bus.call("a", "write_file", {"path": path, "content": "pwned"})
    with pytest.raises(ToolPermissionDenied):
        await bus.call("a", "list_directory", {"path": path})
    assert Path(workspace.root).parent.joinpath("secret.txt").read_text() == "top secret"


async def test_symlink_escapes_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    bus = file_bus(workspace)
    root = Path(workspace.root)
    (root / "out").symlink_to(tmp_path)
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "inner.txt").symlink_to(root / "docs" / "a.txt")
    for path in ("out/secret.txt", "leak.txt", "out"):
        with pytest.raises(ToolPermissionDenied, match="outside the workspace"):
            await bus.call("a", "read_file", {"path": path})
    with pytest.raises(ToolPermissionDenied):
        await bus.call("a", "write_file", {"path": "out/new.txt", "content": "x"})
    with pytest.raises(ToolPermissionDenied):
        await bus.call("a", "write_file", {"path": "leak.txt", "content": "x"})
    assert not (tmp_path / "new.txt").exists()
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    # No symlink is followed, not even one that stays inside (it could be swapped for
    # one that leads out); listing shows links as links.
    with pytest.raises(ToolPermissionDenied, match=r"'inner\.txt' is a symlink"):
        await bus.call("a", "read_file", {"path": "inner.txt"})
    listing = await bus.call("a", "list_directory", {})
    assert {"name": "inner.txt", "type": "symlink"}.items() <= listing["entries"][1].items()  # type: ignore[index]
    with pytest.raises(InvalidToolInput):
        await bus.call("a", "read_file", {"path": "a\x00b"})


@given(st.text(alphabet="./\\~:abc\x00 ", max_size=12))
def test_any_path_splits_inside_or_is_refused(path: str) -> None:
    root = str(Path(__file__).parent)
    try:
        parts = Workspace.split(path)
    except (ToolPermissionDenied, InvalidToolInput):
        return
    for part in parts:
        assert part not in ("", ".", "..")
        assert not {"/", "\\", "\x00"} & set(part)
    joined = os.path.normpath(os.path.join(root, *parts))
    assert os.path.commonpath([joined, root]) == root


def test_workspace_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        Workspace(tmp_path / "missing")
    with pytest.raises(ValueError, match="max_entries"):
        Workspace(tmp_path, max_entries=0)


# -- HTTP --------------------------------------------------------------------------------


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/redirect-out":
        return httpx.Response(302, headers={"location": "https://evil.example.org/x"})
    if request.url.path == "/redirect-in":
        return httpx.Response(301, headers={"location": "/final"})
    if request.url.path == "/loop":
        return httpx.Response(302, headers={"location": "/loop"})
    if request.url.path == "/big":
        return httpx.Response(200, content=b"x" * 100, headers={"content-type": "text/plain"})
    if request.url.path == "/missing":
        return httpx.Response(404, text="nope")
    return httpx.Response(
        200,
        text=f"hello from {request.headers['host']}{request.url.path}",
        headers={"content-type": "text/plain"},
    )


async def public_dns(host: str, port: int) -> list[str]:
    """A resolver giving every name one public address (the tests never touch DNS)."""
    await trio.lowlevel.checkpoint()
    return ["93.184.215.14"]


def http_bus(**kwargs: object) -> ToolBus:
    bus = ToolBus(default_policy="open")
    bus.register_tool(
        HttpGetTool(
            ["api.example.com", "*.docs.example.com"],
            transport=httpx.MockTransport(handler),
            resolver=public_dns,
            max_bytes=40,
            **kwargs,  # type: ignore[arg-type]
        )
    )
    return bus


async def test_http_get_allowed_hosts() -> None:
    bus = http_bus()
    result = await bus.call("a", "http_get", {"url": "https://api.example.com/hi"})
    assert result == {
        "url": "https://api.example.com/hi",
        "status": 200,
        "content_type": "text/plain",
        "text": "hello from api.example.com/hi",
        "truncated": False,
    }
    sub = await bus.call("a", "http_get", {"url": "https://v1.docs.example.com/p"})
    assert sub["status"] == 200  # type: ignore[index]
    for url in (
        "https://docs.example.com/p",
        "https://example.com/",
        "https://api.example.com.evil.org/",
    ):
        with pytest.raises(ToolPermissionDenied, match="not on the allow-list"):
            await bus.call("a", "http_get", {"url": url})


async def test_http_get_limits_and_redirects() -> None:
    bus = http_bus()
    big = await bus.call("a", "http_get", {"url": "https://api.example.com/big"})
    assert big["truncated"] is True  # type: ignore[index]
    assert len(big["text"]) == 40  # type: ignore[index]
    final = await bus.call("a", "http_get", {"url": "https://api.example.com/redirect-in"})
    assert final["url"] == "https://api.example.com/final"  # type: ignore[index]
    with pytest.raises(ToolPermissionDenied, match=r"evil\.example\.org"):
        await bus.call("a", "http_get", {"url": "https://api.example.com/redirect-out"})
    with pytest.raises(ToolExecutionFailed, match="more than 5 redirects"):
        await bus.call("a", "http_get", {"url": "https://api.example.com/loop"})
    missing = await bus.call("a", "http_get", {"url": "https://api.example.com/missing"})
    assert missing["status"] == 404  # type: ignore[index]
    with pytest.raises(InvalidToolInput, match="does not match pattern"):
        await bus.call("a", "http_get", {"url": "ftp://api.example.com/"})
    with pytest.raises(InvalidToolInput, match="credentials"):
        await bus.call("a", "http_get", {"url": "https://user:pw@api.example.com/"})
    https_only = http_bus(allow_http=False)
    with pytest.raises(InvalidToolInput):
        await https_only.call("a", "http_get", {"url": "http://api.example.com/"})


async def test_http_transport_errors_are_failures() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    bus = ToolBus(default_policy="open")
    bus.register_tool(
        HttpGetTool(["api.example.com"], transport=httpx.MockTransport(broken), resolver=public_dns)
    )
    with pytest.raises(ToolExecutionFailed, match="ConnectError") as caught:
        await bus.call("a", "http_get", {"url": "https://api.example.com/"})
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# -- commands ----------------------------------------------------------------------------

needs_posix = pytest.mark.skipif(
    sys.platform == "win32" or not all(shutil.which(c) for c in ("echo", "sleep", "head", "false")),
    reason="needs POSIX echo, sleep, head, false",
)


def command_bus(tmp_path: Path) -> ToolBus:
    bus = ToolBus(default_policy="open")
    bus.register_tool(
        CommandTool(
            {
                "say": AllowedCommand(
                    ("echo",),
                    description="Print arguments.",
                    # echo does not understand "--"; operands starting with "-" are refused
                    arguments=ArgumentPolicy(operands="text", end_of_options=False),
                ),
                "fail": ["false"],
                "pwd": ["pwd"],
                "env": ["env"],
                "flood": ["head", "-c", "100000", "/dev/zero"],
                "sleep": AllowedCommand(
                    ("sleep",), arguments=ArgumentPolicy(operands="text", max_args=1)
                ),
            },
            cwd=tmp_path,
            timeout=0.5,
            max_output=1_000,
        )
    )
    return bus


@needs_posix
async def test_command_runs_allowed_commands(tmp_path: Path) -> None:
    bus = command_bus(tmp_path)
    assert await bus.call("a", "run_command", {"command": "say", "args": ["hi", "there"]}) == {
        "command": "say",
        "exit_code": 0,
        "stdout": "hi there\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    failed = await bus.call("a", "run_command", {"command": "fail"})
    assert failed["exit_code"] == 1  # type: ignore[index]
    cwd = await bus.call("a", "run_command", {"command": "pwd"})
    assert cwd["stdout"].strip() == str(tmp_path)  # type: ignore[index]
    env = await bus.call("a", "run_command", {"command": "env"})
    assert sorted(line.split("=")[0] for line in env["stdout"].split()) == ["LANG", "PATH"]  # type: ignore[index]
    flood = await bus.call("a", "run_command", {"command": "flood"})
    assert flood["stdout_truncated"] is True  # type: ignore[index]
    assert len(flood["stdout"]) == 1_000  # type: ignore[index]


@needs_posix
async def test_command_refusals_and_deadline(tmp_path: Path) -> None:
    bus = command_bus(tmp_path)
    with pytest.raises(InvalidToolInput, match="must be one of"):
        await bus.call("a", "run_command", {"command": "rm"})
    with pytest.raises(ToolPermissionDenied, match="takes no extra arguments"):
        await bus.call("a", "run_command", {"command": "fail", "args": ["-rf", "/"]})
    with pytest.raises(InvalidToolInput, match="at most 1"):
        await bus.call("a", "run_command", {"command": "sleep", "args": ["1", "2"]})
    with pytest.raises(InvalidToolInput, match="NUL"):
        await bus.call("a", "run_command", {"command": "say", "args": ["a\x00b"]})
    with pytest.raises(ToolPermissionDenied, match="flag '-n' is not allowed"):
        await bus.call("a", "run_command", {"command": "say", "args": ["-n", "x"]})
    with trio.fail_after(5):
        with pytest.raises(ToolTimeout, match="was killed"):
            await bus.call("a", "run_command", {"command": "sleep", "args": ["30"]})
        with pytest.raises(ToolTimeout):
            await bus.call("a", "run_command", {"command": "sleep", "args": ["30"]}, timeout=0.1)


def test_command_tool_checks() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CommandTool({})
    with pytest.raises(ValueError, match="argv"):
        AllowedCommand(())
    with pytest.raises(TypeError, match="not the string"):
        AllowedCommand("ls -la")
    with pytest.raises(TypeError, match=r"allow_args=True\) was removed"):
        AllowedCommand(("ls",), allow_args=True)
