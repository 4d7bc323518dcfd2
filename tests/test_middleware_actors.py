"""The middleware chain applied around every actor's handle, via the runtime."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from mister_smith.actors import Actor, ActorContext
from mister_smith.async_patterns import (
    MetricsMiddleware,
    Middleware,
    MiddlewareContext,
    MiddlewareRejected,
)
from mister_smith.events import DeadLetter
from mister_smith.runtime import RuntimeManager


class Journal(Middleware):
    def __init__(self, name: str, log: list[str], reject: str | None = None) -> None:
        self.name = name
        self.log = log
        self.reject = reject

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.before {ctx.actor}")
        if message == self.reject:
            raise MiddlewareRejected(f"{self.name} refuses {message!r}")

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.after {result}")

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.error {type(error).__name__}")


class Upper(Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        self.log.append(f"handle {message}")
        return str(message).upper()


async def test_chain_runs_around_every_actor_handle_in_onion_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    metrics = MetricsMiddleware()
    middleware = [Journal("outer", log), Journal("inner", log, reject="spam"), metrics]
    async with RuntimeManager.open(middleware=middleware) as runtime:
        ref = await runtime.actor_system.spawn(Upper, log, name="upper")
        assert await ref.ask("hi") == "HI"
        assert log == [
            "outer.before upper",
            "inner.before upper",
            "handle hi",
            "inner.after HI",
            "outer.after HI",
        ]
        log.clear()
        with pytest.raises(MiddlewareRejected, match="inner refuses 'spam'"):
            await ref.ask("spam")
        assert log == ["outer.before upper", "inner.before upper", "outer.error MiddlewareRejected"]
        letters = runtime.events.history(DeadLetter)
        assert [(letter.message, letter.reason) for letter in letters] == [
            ("spam", "rejected: inner refuses 'spam'")
        ]
        assert await ref.ask("again") == "AGAIN"
        stats = ref.statistics()
        assert (stats.restarts, stats.failed, stats.handled, stats.dead_lettered) == (0, 0, 2, 1)
    seen = metrics.statistics()
    assert seen.processed == 2
    assert seen.received == 2  # the rejected message never reached the metrics layer
