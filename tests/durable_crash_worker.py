"""A durable workload that SIGKILLs itself at a chosen point (run as a script by
``test_durable_crash.py``), and the actor and message it uses (imported by the test).

``python durable_crash_worker.py STORE EFFECTS TOTAL KILL_AFTER_TELLS KILL_IN_HANDLER
EFFECT_FIRST``: four senders tell ``TOTAL`` messages (ids ``m<n>``) to the durable
actor ``sink``, printing ``<n>`` on stdout once each ``tell`` returned. The process
kills itself after ``KILL_AFTER_TELLS`` tells returned, or while handling message
``KILL_IN_HANDLER`` (before or after its effect is written, per ``EFFECT_FIRST``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import attrs
import trio

from mister_smith.actors import Actor, ActorContext, open_actor_system
from mister_smith.config import PersistenceSettings
from mister_smith.persistence import durable_message, open_sqlite_store

LANES = 4


@durable_message(tag="crash.Item")
@attrs.frozen
class Item:
    """One message of the workload."""

    n: int


class Sink(Actor):
    """Writes each message's number to the effects file (an append, unbuffered: it
    survives the process being killed), optionally killing the process on one."""

    def __init__(self, effects: str, kill_on: int = -1, effect_first: bool = True) -> None:
        self.effects = effects
        self.kill_on = kill_on
        self.effect_first = effect_first

    async def handle(self, message: Any, ctx: ActorContext) -> None:
        assert isinstance(message, Item)
        if message.n == self.kill_on and not self.effect_first:
            os.kill(os.getpid(), signal.SIGKILL)
        fd = os.open(self.effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{message.n}\n".encode())
        finally:
            os.close(fd)
        if message.n == self.kill_on:
            os.kill(os.getpid(), signal.SIGKILL)


async def workload(
    store_path: str, effects: str, total: int, kill_after: int, kill_on: int, effect_first: bool
) -> None:
    returned = 0
    async with (
        open_sqlite_store(PersistenceSettings(path=store_path)) as store,
        open_actor_system(store=store, mailbox_capacity=16) as system,
    ):
        ref = await system.spawn(Sink, effects, kill_on, effect_first, name="sink", durable=True)

        async def sender(lane: int) -> None:
            nonlocal returned
            for n in range(lane, total, LANES):
                await ref.tell(Item(n), message_id=f"m{n}")  # type: ignore[call-arg]
                sys.stdout.write(f"{n}\n")
                sys.stdout.flush()
                returned += 1
                if returned == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

        async with trio.open_nursery() as nursery:
            for lane in range(LANES):
                nursery.start_soon(sender, lane)
        await trio.sleep_forever()  # the kill ends it (the handler's, if not a sender's)


if __name__ == "__main__":
    path, effects_path, total_text, after_text, on_text, first_text = sys.argv[1:7]
    trio.run(
        workload,
        path,
        effects_path,
        int(total_text),
        int(after_text),
        int(on_text),
        first_text == "1",
    )
