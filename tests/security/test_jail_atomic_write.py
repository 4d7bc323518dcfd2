"""Issue 12, item 2: a crash during ``write_file`` leaves the old or the new content.

Against the old jail (``O_TRUNC`` then write), 7 of 12 ``SIGKILL``\\ s during a write left
the file empty or half-written. Writes now go through a temp file, ``fsync`` and
``os.replace``. Here a helper process imports the package once and forks one writer per
kill (so the test pays one interpreter start, not six); each writer rewrites its own
file with alternating contents until the helper ``SIGKILL``\\ s it, each at a different
moment. Every file must then hold one of the two contents, whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

import mister_smith
from mister_smith.tools._jail import TEMP_PREFIX

SIZE = 2 * 1_048_576
KILL_DELAYS = (0.002, 0.007, 0.012, 0.017, 0.022, 0.027, 0.032, 0.037)  # s after 1st write
HELPER = """
import os, signal, sys, time
import trio
from mister_smith.tools import Workspace, WriteFileTool

base, size, delays = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")


def rewrite_forever(directory: str, ready: int) -> None:
    tool = WriteFileTool(Workspace(directory, max_write_bytes=size))

    contents = ["a" * size, "b" * size]

    async def main() -> None:
        for index in range(1_000_000):
            await tool.execute({"path": "data.txt", "content": contents[index % 2]})
            if index == 0:
                os.write(ready, b"r")

    trio.run(main)


for index, delay in enumerate(delays):
    directory = os.path.join(base, f"kill{index}")
    os.mkdir(directory)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        rewrite_forever(directory, write_end)
        os._exit(1)
    os.close(write_end)
    assert os.read(read_end, 1) == b"r"
    time.sleep(float(delay))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(read_end)
    print(index, os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exited", flush=True)
"""


async def test_sigkill_during_writes_never_leaves_a_torn_file(tmp_path: Path) -> None:
    package_parent = str(Path(mister_smith.__file__).parent.parent)
    delays = ",".join(str(delay) for delay in KILL_DELAYS)
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-c", HELPER, str(tmp_path), str(SIZE), delays],
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            cwd=tmp_path,  # so ``-c`` imports the package under test, not one in our cwd
            env={**os.environ, "PYTHONPATH": package_parent},
        )
    reports = done.stdout.decode().split("\n")[:-1]
    assert reports == [f"{index} {int(signal.SIGKILL)}" for index in range(len(KILL_DELAYS))]
    for index in range(len(KILL_DELAYS)):
        directory = tmp_path / f"kill{index}"
        data = (directory / "data.txt").read_bytes()
        assert data in (b"a" * SIZE, b"b" * SIZE), (index, len(data), data[:1], data[-1:])
        # A kill between creating the temp file and the rename may leave that file.
        leftovers = {path.name for path in directory.iterdir()} - {"data.txt"}
        assert all(name.startswith(TEMP_PREFIX) for name in leftovers), leftovers
