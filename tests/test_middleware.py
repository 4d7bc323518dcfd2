"""MiddlewareChain order, rejection, errors, cancellation; logging and metrics middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from mister_smith.async_patterns import (
    AgentMiddleware,
    LoggingMiddleware,
    MetricsMiddleware,
    Middleware,
    MiddlewareChain,
    MiddlewareContext,
    MiddlewareRejected,
)
from mister_smith.errors import ActorError


class Recorder(Middleware):
    """Appends ``"<name>.<hook>"`` to a shared log; can reject or fail on demand."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        reject: bool = False,
        fail_after: bool = False,
        fail_on_error: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.reject = reject
        self.fail_after = fail_after
        self.fail_on_error = fail_on_error

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.before")
        if self.reject:
            raise MiddlewareRejected(middleware=self.name, reason="not today")

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.after({result})")
        if self.fail_after:
            raise RuntimeError(f"{self.name} after failed")

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        self.log.append(f"{self.name}.on_error({type(error).__name__})")
        if self.fail_on_error:
            raise RuntimeError("hook broke")


def handler_logging(log: list[str], *, fail: bool = False) -> Callable[[str], Awaitable[str]]:
    async def handler(message: str) -> str:
        await trio.lowlevel.checkpoint()
        log.append(f"handle({message})")
        if fail:
            raise KeyError(message)
        return message.upper()

    return handler


async def test_order_before_forward_after_reverse() -> None:
    log: list[str] = []
    chain = MiddlewareChain([Recorder("a", log), Recorder("b", log)])
    chain.add(Recorder("c", log))
    assert len(chain) == 3
    assert all(isinstance(m, AgentMiddleware) for m in chain)
    result = await chain.run("hi", MiddlewareContext(actor="x"), handler_logging(log))
    assert result == "HI"
    assert log == [
        "a.before",
        "b.before",
        "c.before",
        "handle(hi)",
        "c.after(HI)",
        "b.after(HI)",
        "a.after(HI)",
    ]


async def test_rejection_stops_the_message() -> None:
    log: list[str] = []
    chain = MiddlewareChain(
        [Recorder("a", log), Recorder("b", log, reject=True), Recorder("c", log)]
    )
    with pytest.raises(MiddlewareRejected) as caught:
        await chain.run("hi", MiddlewareContext(), handler_logging(log))
    assert isinstance(caught.value, ActorError)
    assert (caught.value.middleware, caught.value.reason) == ("b", "not today")
    assert "rejected by b" in str(caught.value)
    assert log == ["a.before", "b.before", "a.on_error(MiddlewareRejected)"]


async def test_handler_error_unwinds_every_middleware() -> None:
    log: list[str] = []
    chain = MiddlewareChain([Recorder("a", log), Recorder("b", log)])
    with pytest.raises(KeyError):
        await chain.run("x", MiddlewareContext(), handler_logging(log, fail=True))
    assert log == [
        "a.before",
        "b.before",
        "handle(x)",
        "b.on_error(KeyError)",
        "a.on_error(KeyError)",
    ]


async def test_after_hook_error_goes_to_outer_on_error() -> None:
    log: list[str] = []
    chain = MiddlewareChain(
        [Recorder("a", log), Recorder("b", log), Recorder("c", log, fail_after=True)]
    )
    with pytest.raises(RuntimeError, match="c after failed"):
        await chain.run("x", MiddlewareContext(), handler_logging(log))
    assert log[-3:] == ["c.after(X)", "b.on_error(RuntimeError)", "a.on_error(RuntimeError)"]


async def test_failing_on_error_hook_does_not_mask(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    chain = MiddlewareChain([Recorder("a", log), Recorder("b", log, fail_on_error=True)])
    with pytest.raises(KeyError):
        await chain.run("x", MiddlewareContext(), handler_logging(log, fail=True))
    assert log[-2:] == ["b.on_error(KeyError)", "a.on_error(KeyError)"]
    assert "original error stands" in caplog.text


async def test_cancellation_reaches_on_error(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    metrics = MetricsMiddleware()
    chain = MiddlewareChain([metrics, Recorder("a", log)])

    async def forever(message: str) -> None:
        await trio.sleep_forever()

    with trio.move_on_after(1):
        await chain.run("x", MiddlewareContext(), forever)
    assert log == ["a.before", "a.on_error(Cancelled)"]
    stats = metrics.statistics()
    assert (stats.cancelled, stats.in_flight) == (1, 0)


async def test_empty_chain_just_calls_the_handler() -> None:
    log: list[str] = []
    assert await MiddlewareChain().run("y", MiddlewareContext(), handler_logging(log)) == "Y"


async def test_metrics_middleware(autojump_clock: trio.testing.MockClock) -> None:
    metrics = MetricsMiddleware()
    chain = MiddlewareChain([metrics, Recorder("gate", [], reject=False)])
    rejecting = MiddlewareChain([metrics, Recorder("gate", [], reject=True)])

    async def slow(message: object) -> object:
        await trio.sleep(2)
        if message == "boom":
            raise ValueError(message)
        return message

    await chain.run("a", MiddlewareContext(), slow)
    await chain.run(3, MiddlewareContext(), slow)
    with pytest.raises(ValueError):
        await chain.run("boom", MiddlewareContext(), slow)
    with pytest.raises(MiddlewareRejected):
        await rejecting.run("no", MiddlewareContext(), slow)
    stats = metrics.statistics()
    assert (stats.received, stats.processed, stats.failed, stats.rejected) == (4, 2, 1, 1)
    assert stats.in_flight == 0
    assert stats.by_type == {"str": 3, "int": 1}
    assert stats.latency.count == 3
    assert stats.latency.p50 == stats.latency.p99 == 2.0


async def test_logging_middleware_structured(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="test.mw")
    chain = MiddlewareChain([LoggingMiddleware(logging.getLogger("test.mw"))])
    ctx = MiddlewareContext(actor="worker-1", correlation_id="c-9")

    async def slow(message: object) -> object:
        await trio.sleep(0.5)
        if message == "bad":
            raise KeyError("bad")
        return message

    await chain.run("ok", ctx, slow)
    with pytest.raises(KeyError):
        await chain.run("bad", MiddlewareContext(actor="worker-1"), slow)
    records = caplog.records
    assert [r.getMessage().split(":")[1].split()[0] for r in records] == [
        "processing",
        "processed",
        "processing",
        "failed",
    ]
    done = records[1]
    assert (done.actor, done.message_type, done.correlation_id) == ("worker-1", "str", "c-9")  # type: ignore[attr-defined]
    assert (done.outcome, done.duration) == ("ok", 0.5)  # type: ignore[attr-defined]
    failed = records[3]
    assert failed.levelno == logging.WARNING
    assert (failed.outcome, failed.error_type) == ("failed", "KeyError")  # type: ignore[attr-defined]
    assert failed.exc_info is not None
