"""The observer page in a real headless browser: Debian's chromium, no downloads.

Chromium runs in its own headless mode (``--headless=new``) and is driven over the
DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-separated JSON on file
descriptors 3 and 4), so the test needs no Playwright, no WebSocket client and no
network beyond the runtime's monitoring server on 127.0.0.1. It checks that the page
renders the supervision tree of a real runtime, that a restart shows up on the open
page as it happens, and that the page logs no console errors or exceptions.

Skipped, saying so, only when no chromium binary exists (CI installs Debian's
``chromium`` next to ``prometheus``). Set ``MISTER_SMITH_OBSERVER_SCREENSHOT=path.png``
to also save a screenshot of the page after the restart (how ``docs/_static/observer.png``
is made).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import pytest
import trio

from mister_smith import (
    Actor,
    ActorContext,
    AgentConfig,
    ComponentRecovered,
    MonitoringSettings,
    RuntimeManager,
)

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)"
)

DEADLINE = 20.0  # seconds for any one wait; the test takes a few seconds in all


class Parser(Actor):
    """Upper-cases text; crashes on ``poison`` (so its supervisor restarts it)."""

    async def handle(self, message: str, ctx: ActorContext) -> str:
        if message == "poison":
            raise ValueError("cannot parse poison")
        return message.upper()


class DevTools:
    """A DevTools-protocol client over chromium's debugging pipe, bound to one page."""

    def __init__(self, send: trio.lowlevel.FdStream, receive: trio.lowlevel.FdStream) -> None:
        self._send = send
        self._receive = receive
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.problems: list[str] = []  # console errors, exceptions, failed loads

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command (to the attached page, if any) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        await self._send.send_all(json.dumps(message).encode() + b"\0")
        while True:
            reply = await self._message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self._note(reply)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until it is truthy; fail naming ``what`` after the deadline."""
        last: Any = None
        with trio.move_on_after(DEADLINE):
            while True:
                last = await self.evaluate(expression)
                if last:
                    return last
                await trio.sleep(0.1)
        raise AssertionError(f"the page never showed {what} (last value: {last!r})")

    def _note(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.problems.append(f"console.{params['type']}: {params['args']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.problems.append(
                f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}"
            )

    async def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = await self._receive.receive_some(65536)
            if not chunk:
                raise AssertionError("chromium closed its debugging pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10, so the child's 3 and 4 can be set from it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


@asynccontextmanager
async def open_chromium(profile: Path, log: IO[bytes]) -> AsyncIterator[DevTools]:
    """Run headless chromium on a debugging pipe; yield a client attached to a blank page."""
    assert CHROMIUM is not None
    to_browser_read, to_browser_write = map(_high_fd, os.pipe())
    from_browser_read, from_browser_write = map(_high_fd, os.pipe())
    flags = [
        "--headless=new",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1280,900",
        "--enable-logging=stderr",  # console messages also land in the log kept on failure
        "--v=0",
        "about:blank",
    ]
    if os.geteuid() == 0:
        flags.insert(0, "--no-sandbox")  # chromium refuses to sandbox as root (containers)
    # A small trampoline puts the pipe ends on the descriptors chromium expects, then
    # execs it (no preexec_fn: that is unsafe in a process with threads).
    trampoline = (
        "import os, sys; "
        f"os.dup2({to_browser_read}, 3); os.dup2({from_browser_write}, 4); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            lambda task_status: trio.run_process(
                [sys.executable, "-c", trampoline, CHROMIUM, *flags],
                pass_fds=(to_browser_read, from_browser_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                check=False,
                task_status=task_status,
            )
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        send = trio.lowlevel.FdStream(to_browser_write)
        receive = trio.lowlevel.FdStream(from_browser_read)
        try:
            tools = DevTools(send, receive)
            with trio.fail_after(DEADLINE):
                target = await tools.call("Target.createTarget", url="about:blank")
                attached = await tools.call(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
            tools.session = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                await tools.call(f"{domain}.enable")
            yield tools
        finally:
            with trio.move_on_after(5) as cleanup:
                cleanup.shield = True
                with suppress(AssertionError, trio.BrokenResourceError, trio.ClosedResourceError):
                    await tools.call("Browser.close")
                await process.wait()
            if process.returncode is None:
                process.kill()
            await send.aclose()
            await receive.aclose()


@contextmanager
def _with_log_tail(log: Path) -> Iterator[None]:
    """On failure, add the end of chromium's own log to the error (why it failed)."""
    try:
        yield
    except BaseException as error:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        error.add_note(f"chromium's log ends:\n{tail}")
        raise


def _restarts_of(name: str) -> str:
    """JavaScript: the restart label of ``name``'s tree node ('' when it has none)."""
    return (
        f"(() => {{ const li = document.querySelector('#tree li[data-name={json.dumps(name)}]');"
        " if (!li) return null;"
        " const r = li.querySelector(':scope > .restarts');"
        " return {state: li.querySelector(':scope > .badge').textContent,"
        " restarts: r ? r.textContent : ''}; })()"
    )


async def test_the_page_shows_the_tree_and_a_restart_as_it_happens(tmp_path: Path) -> None:
    config = AgentConfig(monitoring=MonitoringSettings(http_port=0))
    async with RuntimeManager.open(config, serve_http=True) as runtime:
        parser = await runtime.actor_system.spawn(Parser, name="parser")
        assert await parser.ask("ok", timeout=5) == "OK"
        url = f"http://127.0.0.1:{runtime.http_port}/observer"
        log_path = tmp_path / "chromium.log"
        with log_path.open("wb") as log, _with_log_tail(log_path):
            async with open_chromium(tmp_path / "profile", log) as page:
                navigated = await page.call("Page.navigate", url=url)
                assert "errorText" not in navigated, navigated
                await page.wait_for(
                    "document.getElementById('status')?.textContent.startsWith('live')",
                    "the live status",
                )
                root = await page.evaluate(
                    "document.querySelector('#tree > li > span.sup').textContent"
                )
                assert root  # the root supervisor, drawn as a supervisor
                before = await page.wait_for(_restarts_of("parser"), "the parser in the tree")
                assert before == {"state": "running", "restarts": ""}
                assert await page.evaluate(
                    "document.querySelector('#tree li[data-name=\"http\"]') !== null"
                )  # the monitoring server is itself a supervised child

                with pytest.raises(Exception, match="parser"):
                    await parser.ask("poison", timeout=5)
                await runtime.events.wait_for_event(
                    ComponentRecovered,
                    lambda event: event.child == "parser",
                    timeout=5,
                    include_history=True,
                )
                # The same page, without a reload, shows the restart.
                after = await page.wait_for(
                    f"(() => {{ const v = {_restarts_of('parser')};"
                    " return v && v.restarts === 'restarts=1' ? v : null; })()",
                    "the parser's restart",
                )
                assert after["state"] == "running"
                row = await page.wait_for(
                    "(() => { const tr = document.querySelector("
                    "'#actors tr[data-actor=\"parser\"]');"
                    " return tr ? Array.from(tr.cells, (c) => c.textContent) : null; })()",
                    "the parser's actor row",
                )
                assert row[0] == "parser"
                assert row[-1] == "1"  # restarts column
                assert row[-2] == "1"  # the poison message, dead-lettered
                decision = await page.wait_for(
                    "Array.from(document.querySelectorAll('#decisions tbody tr'),"
                    " (tr) => tr.textContent).find((t) => t.includes('ValueError')) || null",
                    "the supervision decision",
                )
                assert "parser" in decision
                assert "restart" in decision
                shot = os.environ.get("MISTER_SMITH_OBSERVER_SCREENSHOT")
                if shot:
                    image = await page.call("Page.captureScreenshot", format="png")
                    Path(shot).write_bytes(base64.b64decode(image["data"]))
                await trio.sleep(0.2)  # let a last poll's console output arrive
                await page.evaluate("1")
                assert page.problems == []
        await runtime.graceful_shutdown()
