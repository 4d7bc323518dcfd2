"""triotp: Erlang/OTP-style gen_servers and supervisors on Trio.

Natural use, one ``trio.run`` per measured run: the mailbox registry is initialised
(``mailbox._init()``, as ``triotp.node.run`` does), servers are ``gen_server.start``
tasks in a nursery with a callback module, tells are ``gen_server.cast``, asks
``gen_server.call``, stop is a cast whose ``handle_cast`` returns ``Stop()``. triotp's
mailboxes are unbuffered memory channels, so every cast is a rendezvous with the
server: that is its design, and the figures include it.

Restart: the server runs under ``supervisor.start`` with a ``PERMANENT`` child spec and
enough ``max_restarts``. A crash destroys the server's mailbox and the restarted server
registers a new one under the same name, so messages sent meanwhile fail with
``MailboxDoesNotExist`` (or a closed channel); the timed ask retries at once on those
errors until the new incarnation answers.

Compatibility: triotp 0.2.1 pins ``trio<0.20`` and ``trio-util<0.8``; ``nox -s
bench_peers`` installs it with ``--no-deps`` on the same Trio as ours (plus its
``Logbook`` dependency; ``tenacity`` comes with ours), which it runs on unchanged.
Its supervisor logs restarts through Logbook, silenced here with a ``NullHandler``.
"""

from __future__ import annotations

import math
import time
import types
from typing import Any, ClassVar

import logbook  # type: ignore[import-not-found, import-untyped, unused-ignore]
import trio
from triotp import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
    gen_server,
    mailbox,
    supervisor,
)

from ._model import PeerAdapter
from ._ours import CRASH, Countdown

STOP = "stop"


class _Init:
    """``init_arg`` of a benchmark server: what to count to, and readiness."""

    __slots__ = ("count", "done", "ready", "starts", "target")

    def __init__(self, target: int = 0, done: trio.Event | None = None) -> None:
        self.target = target
        self.done = done
        self.ready = trio.Event()
        self.count = 0
        self.starts = 0


async def _init(init: _Init) -> _Init:
    init.starts += 1
    init.ready.set()
    return init


async def _handle_call(message: Any, caller: Any, state: _Init) -> tuple[Any, _Init]:
    return gen_server.Reply(payload=message), state


async def _handle_cast(message: Any, state: _Init) -> tuple[Any, _Init]:
    if isinstance(message, Countdown):
        message.hit()
    elif message == STOP:
        return gen_server.Stop(), state
    elif message == CRASH:
        raise ValueError("crash requested by the benchmark")
    else:
        state.count += 1
        if state.count == state.target and state.done is not None:
            state.done.set()
    return gen_server.NoReply(), state


def _callbacks() -> types.ModuleType:
    """The gen_server callback module (triotp servers are modules of callbacks)."""
    module = types.ModuleType("benchmarks.peers._triotp_server")
    module.init = _init  # type: ignore[attr-defined]
    module.handle_call = _handle_call  # type: ignore[attr-defined]
    module.handle_cast = _handle_cast  # type: ignore[attr-defined]
    return module


SERVER = _callbacks()


async def _start(nursery: trio.Nursery, name: str, init: _Init) -> None:
    """Start a server and return once it is registered and initialised."""
    nursery.start_soon(gen_server.start, SERVER, init, name)
    await init.ready.wait()


async def _tell(loops: int) -> float:
    mailbox._init()
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        await _start(nursery, "sink", _Init(loops, done))
        started = time.perf_counter()
        for i in range(loops):
            await gen_server.cast("sink", i)
        await done.wait()
        elapsed = time.perf_counter() - started
        await gen_server.cast("sink", STOP)
    return elapsed


async def _ask(loops: int) -> list[float]:
    mailbox._init()
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        await _start(nursery, "echo", _Init())
        await gen_server.call("echo", -1)
        for i in range(loops):
            started = time.perf_counter()
            await gen_server.call("echo", i)
            latencies.append(time.perf_counter() - started)
        await gen_server.cast("echo", STOP)
    return latencies


async def _fanout(loops: int, actors: int) -> float:
    mailbox._init()
    names = [f"fan-{i}" for i in range(actors)]
    elapsed = 0.0
    async with trio.open_nursery() as nursery:
        for name in names:
            await _start(nursery, name, _Init())
        for _ in range(loops):
            wave = Countdown(actors)
            started = time.perf_counter()
            for name in names:
                await gen_server.cast(name, wave)
            await wave.done.wait()
            elapsed += time.perf_counter() - started
        for name in names:
            await gen_server.cast(name, STOP)
    return elapsed


async def _spawn_stop(loops: int) -> float:
    mailbox._init()
    names = [f"server-{i}" for i in range(loops)]
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for name in names:
            await _start(nursery, name, _Init())
        for name in names:
            await gen_server.cast(name, STOP)
    # Leaving the nursery waited for every server to finish.
    return time.perf_counter() - started


async def _call_until_answered(name: str, message: Any) -> Any:
    while True:
        try:
            return await gen_server.call(name, message)
        except (mailbox.MailboxDoesNotExist, trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.lowlevel.checkpoint()


async def _restart(loops: int) -> list[float]:
    mailbox._init()
    latencies: list[float] = []
    init = _Init()
    spec = supervisor.child_spec(
        id="crashy",
        task=gen_server.start,
        args=[SERVER, init, "crashy"],
        restart=supervisor.restart_strategy.PERMANENT,
    )
    options = supervisor.options(max_restarts=loops + 10, max_seconds=math.inf)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.start, [spec], options)
        await _call_until_answered("crashy", -1)
        for i in range(loops):
            started = time.perf_counter()
            await gen_server.cast("crashy", CRASH)
            await _call_until_answered("crashy", i)
            latencies.append(time.perf_counter() - started)
        nursery.cancel_scope.cancel()
    if init.starts != loops + 1:
        raise RuntimeError(f"expected {loops} restarts, saw {init.starts - 1}")
    return latencies


class TriOTP(PeerAdapter):
    """triotp gen_servers under triotp supervisors, on Trio."""

    name: ClassVar[str] = "triotp"
    distribution: ClassVar[str | None] = "triotp"
    concurrency: ClassVar[str] = (
        "trio, one task per gen_server, unbuffered mailboxes; one trio.run per measurement"
    )
    unsupported: ClassVar[dict[str, str]] = {
        "tell_burst": "no non-blocking send: gen_server.cast is awaited (the tell row)",
    }

    def load(self) -> None:
        logbook.NullHandler().push_application()

    def tell(self, loops: int) -> float:
        return trio.run(_tell, loops)

    def ask(self, loops: int) -> list[float]:
        return trio.run(_ask, loops)

    def fanout(self, loops: int, actors: int) -> float:
        return trio.run(_fanout, loops, actors)

    def spawn_stop(self, loops: int) -> float:
        return trio.run(_spawn_stop, loops)

    def restart(self, loops: int) -> list[float]:
        return trio.run(_restart, loops)
