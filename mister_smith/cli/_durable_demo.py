"""``mister-smith demo --durable``: a durable indexer survives its process ending midway.

The demo starts itself as a child process twice over one store file:

1. the first run tells a durable actor ``indexer`` one message per Python file of the
   workspace (each ``tell`` returns once the message is committed), and a supervised
   fault ends the process midway: a root child raises an error whose recovery is
   ``Escalate``, the root supervisor gives up, and the runtime ends with the rest of the
   messages still pending in the store;
2. the second run spawns ``indexer`` again: the pending messages are replayed first,
   the sender retries every file with the same message ids (those the store remembers
   are refused as duplicates), and the index is finished. Its accounting line counts
   the replayed messages.

The indexer's results live in a checkpoint written with compare-and-set after each
file, and a file already in it is skipped, so a message handled but not yet acked when
the process ended (delivered again: at-least-once) takes effect once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio

from ..actors import Actor, ActorContext, DurableActorRef
from ..config import AgentConfig, PersistenceSettings
from ..errors import ErrorSeverity, RecoveryStrategy, ResourceError, SupervisionError, root_cause
from ..persistence import Store, durable_message
from ..runtime import RuntimeManager
from ..supervision import Restart

INDEX_KEY = "demo/index"
"""The checkpoint holding the index built so far."""


@durable_message(tag="demo.IndexFile")
@attrs.frozen
class IndexFile:
    """Index one file (its path relative to the workspace)."""

    path: str


@attrs.frozen
class DurableDemoOptions:
    """How ``demo --durable`` runs.

    Attributes:
        workspace: The directory whose ``*.py`` files are indexed.
        fault_after: Files the first run indexes before the fault ends its process
            (0: half of them).
        latency: Seconds each file takes (so the fault lands midway).
    """

    workspace: Path
    fault_after: int = 0
    latency: float = 0.01


class Progress:
    """Files the indexer finished in this process, and waiting for a count of them."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, trio.Event]] = []

    def one(self) -> None:
        """One more file finished."""
        self.count += 1
        for wanted, event in self._waiters:
            if self.count >= wanted:
                event.set()

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` files were finished."""
        event = trio.Event()
        if self.count >= count:
            event.set()
        self._waiters.append((count, event))
        await event.wait()


class Indexer(Actor):
    """Counts the lines and ``def`` statements of each file into the checkpoint."""

    def __init__(self, store: Store, workspace: Path, latency: float, progress: Progress) -> None:
        self.store = store
        self.workspace = workspace
        self.latency = latency
        self.progress = progress

    async def handle(self, message: Any, ctx: ActorContext) -> None:
        assert isinstance(message, IndexFile)
        current = await self.store.get_checkpoint(INDEX_KEY)
        index: dict[str, list[int]] = {} if current is None else json.loads(current.data)
        if message.path in index:
            self.progress.one()
            return  # delivered again after the process ended before its ack: done already
        text = await trio.Path(self.workspace / message.path).read_text(encoding="utf-8")
        await trio.sleep(self.latency)
        lines = text.splitlines()
        functions = sum(1 for line in lines if line.lstrip().startswith(("def ", "async def ")))
        index[message.path] = [len(lines), functions]
        await self.store.put_checkpoint(
            INDEX_KEY,
            json.dumps(index, sort_keys=True).encode(),
            expected_version=0 if current is None else current.version,
        )
        self.progress.one()


async def _fault_after(progress: Progress, handled: int) -> None:
    """A root child that ends the process: once the indexer finished ``handled`` files
    it raises an error whose recovery is ``Escalate`` (the root gives up)."""
    await progress.wait_for(handled)
    raise ResourceError(
        f"injected fault after {handled} files: the process ends",
        severity=ErrorSeverity.CRITICAL,
        recovery_strategy=RecoveryStrategy.Escalate(),
    )


async def durable_run(
    options: DurableDemoOptions, store_path: Path, run: int, fault: bool, out: TextIO
) -> int:
    """One process's run of the demo (see the module); returns its exit code."""
    config = attrs.evolve(AgentConfig(), persistence=PersistenceSettings(path=str(store_path)))
    files = sorted(str(p.relative_to(options.workspace)) for p in options.workspace.rglob("*.py"))
    say = _printer(out, run)
    fault_after = options.fault_after or max(1, len(files) // 2)
    try:
        async with RuntimeManager.open(config) as runtime:
            system = runtime.actor_system
            assert system.durable is not None
            store = await system.durable.store()
            progress = Progress()
            ref = await system.spawn(
                Indexer,
                store,
                options.workspace,
                options.latency,
                progress,
                name="indexer",
                durable=True,
            )
            assert isinstance(ref, DurableActorRef)
            replayed = ref.statistics().replayed
            say(f"spawned the durable actor 'indexer': {replayed} messages replayed from the store")
            if fault:
                await runtime.supervision.start_child(
                    _fault_after,
                    progress,
                    fault_after,
                    name="fault",
                    restart=Restart.TEMPORARY,
                )
            accepted = 0
            for path in files:
                if await ref.tell(IndexFile(path), message_id=f"index:{path}"):
                    accepted += 1
            say(
                f"told {len(files)} files: {accepted} accepted, {len(files) - accepted} "
                "refused as duplicates (already in the store)"
            )
            if fault:
                say(f"fault armed: the process ends after {fault_after} files")
            with trio.fail_after(120):
                await progress.wait_for(replayed + accepted)
            index = await store.get_checkpoint(INDEX_KEY)
            done: dict[str, list[int]] = {} if index is None else json.loads(index.data)
            lines = sum(entry[0] for entry in done.values())
            defs = sum(entry[1] for entry in done.values())
            say(f"index complete: {len(done)} of {len(files)} files, {lines} lines, {defs} defs")
            totals = system.statistics()
            balanced = totals.accepted == totals.handled + totals.dead_lettered
            say(
                f"messages accepted = handled + dead-lettered: {totals.accepted} = "
                f"{totals.handled} + {totals.dead_lettered}  {'OK' if balanced else 'BROKEN'} "
                f"(replayed {totals.replayed})"
            )
            return 0 if balanced and len(done) == len(files) else 3
    except SupervisionError as exc:
        cause = root_cause(exc)
        say(f"the root supervisor gave up ({type(cause).__name__}: {cause}); the process ends")
        return 1


def _printer(out: TextIO, run: int) -> Any:
    def say(text: str) -> None:
        out.write(f"run {run}  {text}\n")
        out.flush()

    return say


async def run_durable_demo(options: DurableDemoOptions, out: TextIO) -> int:
    """Run the demo: the first process ends midway, the second finishes (see the
    module); returns the second run's exit code (1 if the first did not end early)."""
    out.write("mister-smith: a durable actor indexes this package; its process ends midway\n")
    with tempfile.TemporaryDirectory(prefix="mister-smith-durable-") as directory:
        store = Path(directory) / "demo.db"
        out.write(f"store          {store}\nworkspace      {options.workspace}\n")
        first = await _child(options, store, 1, fault=True, out=out)
        if first == 0:
            out.write("mister-smith: the first run was meant to end early and did not\n")
            return 1
        out.write(f"process 1 ended (exit code {first}); starting it again\n")
        return await _child(options, store, 2, fault=False, out=out)


def _package_parent() -> str:
    """PYTHONPATH for the child: where this mister_smith was imported from, first."""
    here = str(Path(__file__).resolve().parent.parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return here if not rest else os.pathsep.join([here, rest])


async def _child(
    options: DurableDemoOptions, store: Path, run: int, *, fault: bool, out: TextIO
) -> int:
    command = [
        sys.executable,
        "-m",
        "mister_smith.cli",
        "durable-run",
        "--store",
        str(store),
        "--workspace",
        str(options.workspace),
        "--run",
        str(run),
        "--fault-after",
        str(options.fault_after),
        "--latency",
        str(options.latency),
    ]
    if fault:
        command.append("--fault")
    done = await trio.run_process(
        command,
        check=False,
        capture_stdout=True,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": _package_parent()},
    )
    out.write(done.stdout.decode(errors="replace"))
    out.flush()
    return done.returncode
