"""Issue 12, item 2: a symlink swapped in after validation (TOCTOU) is never followed.

Against the string-based jail (``realpath`` check, then ``open``), a thread flipping a
workspace directory to a symlink to the outside leaked the secret within 2 to 2,400
rounds. The fd-based jail opens each component relative to the last with
``O_NOFOLLOW``, so there is no window between a check and a use.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from mister_smith.errors import ToolExecutionFailed, ToolPermissionDenied
from mister_smith.tools import ReadFileTool, Workspace, _jail

MAX_ROUNDS = 3_000
READERS = 4
TIME_BUDGET = 3.0  # seconds of real time; the rounds usually take well under one


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f.txt").write_text("public")
    (outside / "f.txt").write_text("SECRET")
    return root, outside


def flip_directory(root: Path, outside: Path) -> None:
    """``d`` becomes a symlink to the outside directory, then a directory again."""
    os.rename(root / "d", root / "d.real")
    os.symlink(outside, root / "d")
    os.unlink(root / "d")
    os.rename(root / "d.real", root / "d")


def flip_file(root: Path, outside: Path) -> None:
    """``d/f.txt`` becomes a symlink to the outside secret, then the file again."""
    os.rename(root / "d" / "f.txt", root / "d" / "f.real")
    os.symlink(outside / "f.txt", root / "d" / "f.txt")
    os.unlink(root / "d" / "f.txt")
    os.rename(root / "d" / "f.real", root / "d" / "f.txt")


@pytest.mark.parametrize("flip", [flip_directory, flip_file], ids=["directory", "file"])
async def test_racing_symlink_swaps_never_leak(
    layout: tuple[Path, Path], flip: Callable[[Path, Path], None]
) -> None:
    root, outside = layout
    tool = ReadFileTool(Workspace(root))
    stop = threading.Event()
    flips = 0

    def flipper() -> None:
        nonlocal flips
        while not stop.is_set():
            flip(root, outside)
            flips += 1

    outcomes: Counter[str] = Counter()
    rounds = 0
    started = time.monotonic()

    async def reader() -> None:
        nonlocal rounds
        while rounds < MAX_ROUNDS and time.monotonic() - started < TIME_BUDGET:
            rounds += 1
            try:
                result = await tool.execute({"path": "d/f.txt"})
            except (ToolPermissionDenied, ToolExecutionFailed) as refused:
                outcomes[type(refused).__name__] += 1
            else:
                outcomes[result["content"]] += 1

    thread = threading.Thread(target=flipper, name="symlink-flipper")
    thread.start()
    try:
        async with trio.open_nursery() as nursery:
            for _ in range(READERS):
                nursery.start_soon(reader)
    finally:
        stop.set()
        thread.join()
    assert outcomes["SECRET"] == 0, outcomes
    # The race was live: the flipper ran throughout, reads both succeeded and were refused.
    assert flips > 0
    assert outcomes["public"] > 0, outcomes
    assert outcomes["ToolPermissionDenied"] + outcomes["ToolExecutionFailed"] > 0, outcomes
    assert set(outcomes) <= {"public", "ToolPermissionDenied", "ToolExecutionFailed"}


async def test_swap_after_the_directory_was_opened_is_not_followed(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic interleaving: ``d`` is swapped for a symlink right after the jail
    opened it and before the file in it is opened (where the old jail had checked the
    path and was about to open it by name). The held fd still names the real directory,
    so the read returns the workspace file, never the outside one."""
    root, outside = layout
    real_lstat = _jail.lstat_at

    def swap_then_lstat(dir_fd: int, name: str) -> os.stat_result | None:
        if (root / "d").is_dir() and not (root / "d").is_symlink():
            os.rename(root / "d", root / "d.real")
            os.symlink(outside, root / "d")
        return real_lstat(dir_fd, name)

    monkeypatch.setattr(_jail, "lstat_at", swap_then_lstat)
    result = await ReadFileTool(Workspace(root)).execute({"path": "d/f.txt"})
    assert result["content"] == "public"
    assert (root / "d").is_symlink()  # the swap did happen
    monkeypatch.undo()
    with pytest.raises(ToolPermissionDenied, match="'d' is a symlink"):
        await ReadFileTool(Workspace(root)).execute({"path": "d/f.txt"})
