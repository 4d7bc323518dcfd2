"""``McpServerConnection``: one MCP server, connected, supervised and mirrored on the bus.

The connection is a supervised child (:meth:`McpServerConnection.run`) of a small
supervisor of its own, ``mcp:<name>``, started under the supervisor the application
hands over. Each run opens the transport (spawning a stdio server), does the MCP
handshake, lists the tools and registers them on the :class:`~mister_smith.ToolBus`,
then pings the server every ``ping_interval`` and follows its tool-list changes until
something fails: the process exits, a ping goes unanswered (a hung server), the
connection drops. The run then raises a typed error and the supervisor restarts it
after a backoff, within the server's own restart budget; a server that spends it is
stopped for good and nothing else is touched. Meanwhile its tools stay registered and
answer :class:`McpServerUnavailable` (or, with ``wait_for_restart``, wait for the
server within their deadline).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import attrs
import mcp_types
import trio
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from trio_util import AsyncValue

from ...errors import InvalidGrant, RecoveryStrategy, UnknownRole
from ...supervision import Child, ChildEnd, ChildSpec, Restart, Supervisor, heartbeat
from ...types import CallerIdentity
from .._bus import DuplicateTool, ToolBus
from .._permissions import ToolPolicy
from ._catalog import Catalog, RefusedTool, RemoteTool, build_catalog, plan_sync
from ._errors import McpProtocolError, McpServerHung, McpServerUnavailable
from ._failures import call_error, connection_failure
from ._options import McpServerOptions
from ._results import Blob, BlobStore, tool_result
from ._stdio import StdioServer
from ._tool import McpTool
from ._transport import Link, ServerLocation, open_link

logger = logging.getLogger("mister_smith.tools.mcp")

CLIENT_INFO = mcp_types.Implementation(name="mister-smith", version="0.1.0")

STOP_GRACE = 3.0
"""Seconds a connection gets to close its server when stopped (a clean stdio stop takes
at most 1 s of grace and 1 s after the kill)."""


def _stderr_end(process: StdioServer) -> str:
    """The last lines a stdio server wrote to stderr, for an error message."""
    lines = process.stderr_tail().splitlines()[-5:]
    return "; its stderr ends with: " + "\n".join(lines) if lines else ""


def _with_stderr(failure: Exception, process: StdioServer) -> Exception:
    """``failure`` again, its message ending with what the server said on stderr."""
    end = _stderr_end(process)
    if not end or end in str(failure):
        return failure
    return type(failure)(f"{failure}{end}")


class McpServerState(enum.Enum):
    """Where a connection is in its life."""

    STARTING = "starting"
    """Its first connection is being made."""
    READY = "ready"
    """Connected: its tools answer."""
    RESTARTING = "restarting"
    """It failed and its supervisor is connecting it again (after a backoff)."""
    STOPPED = "stopped"
    """It spent its restart budget: stopped for good, its tools answer unavailable."""
    CLOSED = "closed"
    """Closed (or shut down with its supervisor): its tools are unregistered."""


@attrs.frozen
class McpServerStatistics:
    """A snapshot of one connection.

    Attributes:
        name: The server's name.
        transport: ``"stdio"``, ``"http"`` or ``"custom"``.
        state: Where the connection is.
        pid: The stdio server's process id while it runs.
        connects: Connections made (the first one included).
        restarts: Connections made again after a failure.
        tools: Bus names of the tools registered now.
        refused: Tools the server lists that are not registered, with why.
        schema_issues: Schema keywords left out of the registered tools' schemas.
        calls: Calls sent to the server.
        in_flight: Calls running now.
        max_concurrent_calls: The bound on ``in_flight``.
        pings: Heartbeat pings answered.
        list_changes: Tool-list changes followed.
        protocol_errors: Messages from the server that were not valid JSON-RPC.
        blob_bytes: Bytes of binary results kept now.
        last_error: The latest failure, as text.
    """

    name: str
    transport: str
    state: McpServerState
    pid: int | None
    connects: int
    restarts: int
    tools: tuple[str, ...]
    refused: tuple[RefusedTool, ...]
    schema_issues: int
    calls: int
    in_flight: int
    max_concurrent_calls: int
    pings: int
    list_changes: int
    protocol_errors: int
    blob_bytes: int
    last_error: str | None


class McpServerConnection:
    """A connection to one MCP server, its tools registered on a bus.

    Made and started by :func:`~mister_smith.tools.mcp.register_mcp_server` (or
    ``ToolBus.register_mcp_server``); see the module's docstring for its life.

    Attributes:
        name: The server's name (its tools are ``<name>.<tool>`` by default).
        bus: Where its tools are registered.
        location: Where the server is.
        options: Its bounds, deadlines and restart budget.
    """

    def __init__(
        self,
        name: str,
        bus: ToolBus,
        location: ServerLocation,
        options: McpServerOptions,
        *,
        callers: frozenset[CallerIdentity] = frozenset(),
        roles: frozenset[str] = frozenset(),
        policy: ToolPolicy | None = None,
    ) -> None:
        self.name = name
        self.bus = bus
        self.location = location
        self.options = options
        self._callers = callers
        self._roles = roles
        self._policy = policy
        # Callers waiting for a restart wait on its transitions.
        self._state = AsyncValue(McpServerState.STARTING)
        self._session: ClientSession | None = None
        self._link: Link | None = None
        self._limiter = trio.CapacityLimiter(options.max_concurrent_calls)
        self._registered: dict[str, RemoteTool] = {}
        self._refused: tuple[RefusedTool, ...] = ()
        self._list_changed = trio.Event()
        self._blobs = BlobStore(f"mcp://{name}/blob/", options.max_blob_bytes)
        self._parent: Supervisor | None = None
        self._child: Child | None = None
        self._closing = False
        self._connects = 0
        self._calls = 0
        self._in_flight = 0
        self._pings = 0
        self._list_changes = 0
        self._protocol_errors = 0
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"<McpServerConnection {self.name!r} {self.state.value}>"

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> McpServerState:
        """Where the connection is."""
        return self._state.value

    @property
    def available(self) -> bool:
        """Whether its tools answer now."""
        return self._state.value is McpServerState.READY

    def _set_state(self, state: McpServerState) -> None:
        old = self._state.value
        if state is old:
            return
        logger.info("MCP server %s: %s -> %s", self.name, old.value, state.value)
        self._state.value = state

    async def wait_ready(self) -> None:
        """Wait until the server is connected (whatever ``wait_for_restart`` says).

        Raises:
            McpServerUnavailable: it is stopped for good or closed.
        """
        await self._session_for_call(wait=True)

    def _unavailable(self, what: str = "") -> McpServerUnavailable:
        reason = f"; last error: {self._last_error}" if self._last_error else ""
        state = {
            McpServerState.STOPPED: "stopped for good (it spent its restart budget)",
            McpServerState.CLOSED: "closed",
        }.get(self.state, self.state.value)
        return McpServerUnavailable(f"MCP server {self.name!r} is {state}{what}{reason}")

    async def _session_for_call(self, *, wait: bool | None = None) -> ClientSession:
        while True:
            link = self._link
            process = link.process if link is not None else None
            gone = process is not None and (process.eof.is_set() or process.killed)
            state = self._state.value
            if state is McpServerState.READY and self._session is not None and not gone:
                await trio.lowlevel.checkpoint()
                return self._session
            terminal = state in (McpServerState.STOPPED, McpServerState.CLOSED)
            if terminal or not (self.options.wait_for_restart if wait is None else wait):
                await trio.lowlevel.checkpoint()
                raise self._unavailable(": its tools are unavailable")
            # (A server whose end is not processed yet is left as soon as it is: the
            # state becomes RESTARTING, so this wakes up.)
            await self._state.wait_transition()

    # -- supervision ----------------------------------------------------------------------

    async def start(self, supervisor: Supervisor) -> None:
        """Start the connection under a supervisor of its own, ``mcp:<name>``, itself a
        child of ``supervisor``; return once the server is connected and its tools are
        registered.

        Raises:
            McpConnectFailed: the first connection failed (nothing is left running).
        """
        spec = ChildSpec.of(
            self.run,
            name="connection",
            restart=Restart.PERMANENT,
            recovery=RecoveryStrategy.Restart(),
            restart_limit=self.options.restart_limit,
            shutdown_timeout=STOP_GRACE,
            on_terminated=self._terminated,
        )
        self._parent = supervisor
        try:
            nested = await supervisor.start_supervisor(
                f"mcp:{self.name}",
                max_restarts=None,
                backoff=self.options.backoff,
                child_limit=None,
                children=[spec],
                restart=Restart.TRANSIENT,
            )
        except BaseException as error:
            self._closing = True
            self._set_state(McpServerState.CLOSED)
            failure = connection_failure(self.name, error, connected=False)
            if failure is error:
                raise
            raise failure from error
        self._child = supervisor.child(nested.name)

    async def close(self) -> None:
        """Stop the server (its process exits) and unregister its tools. Idempotent."""
        self._closing = True
        if self._parent is not None and self._child is not None:
            child, self._child = self._child, None
            if child.end_reason is None:
                await self._parent.stop_child(child)
        self._set_state(McpServerState.CLOSED)
        self._unregister_all()
        await trio.lowlevel.checkpoint()

    def _terminated(self, child: Child) -> None:
        """The connection child is gone for good (told by its supervisor)."""
        if self._closing or child.end_reason in (ChildEnd.SHUT_DOWN, ChildEnd.STOPPED):
            self._set_state(McpServerState.CLOSED)
            self._unregister_all()
        else:
            self._set_state(McpServerState.STOPPED)
            logger.warning(
                "MCP server %s stopped for good (%s); its tools answer unavailable",
                self.name,
                child.end_reason.value if child.end_reason else "ended",
            )

    def kill_server(self) -> bool:
        """Kill a stdio server's process group now, as a crash would (for fault
        injection and tests); its supervisor restarts it. ``False`` when there is no
        process to kill (not connected, or not a stdio server)."""
        link = self._link
        if link is None or link.process is None:
            return False
        link.process.kill()
        if not self._closing:
            self._set_state(McpServerState.RESTARTING)
        return True

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """One connection, from opening the transport to the failure that ends it.

        The supervised child's body: returns only when cancelled (stopped), raises a
        typed :class:`~mister_smith.tools.mcp.McpError` when the server fails.
        """
        self._connects += 1
        connected = False
        process: StdioServer | None = None
        try:
            async with open_link(self.location, self.options) as link:
                process = link.process
                async with ClientSession(
                    link.read_stream,
                    link.write_stream,
                    message_handler=self._on_message,
                    client_info=CLIENT_INFO,
                ) as session:
                    with trio.fail_after(self.options.connect_timeout):
                        await session.initialize()
                        catalog = await self._list(session)
                    self._apply(catalog)
                    self._session, self._link = session, link
                    connected = True
                    self._set_state(McpServerState.READY)
                    heartbeat()
                    task_status.started(self)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._ping, session)
                        nursery.start_soon(self._follow_list_changes, session)
                        await self._wait_lost(link)
        except BaseException as error:
            failure = connection_failure(self.name, error, connected=connected)
            if not connected and isinstance(failure, Exception) and process is not None:
                failure = _with_stderr(failure, process)
            if isinstance(failure, Exception):
                self._last_error = f"{type(failure).__name__}: {failure}"
                logger.warning("MCP server %s failed: %s", self.name, self._last_error)
            if failure is error:
                raise
            raise failure from error
        finally:
            self._session = self._link = None
            if self._state.value is McpServerState.READY and not self._closing:
                self._set_state(McpServerState.RESTARTING)

    async def _wait_lost(self, link: Link) -> None:
        """Return never; raise when a stdio server's process exits."""
        if link.process is None:
            await trio.sleep_forever()
        process = link.process
        await process.eof.wait()  # no answer can come any more
        if not self._closing:
            self._set_state(McpServerState.RESTARTING)
        with trio.move_on_after(1.0):
            await process.exited.wait()  # for its status, if it is exiting
        if process.failure is not None:
            raise process.failure
        if process.killed:
            how = "was killed"
        elif process.returncode is None:
            how = "closed its stdout"
        else:
            how = f"exited with status {process.returncode}"
        raise McpServerUnavailable(f"MCP server {self.name!r} {how}{_stderr_end(process)}")

    async def _ping(self, session: ClientSession) -> None:
        while True:
            await trio.sleep(self.options.ping_interval)
            with trio.move_on_after(self.options.ping_timeout) as waited:
                try:
                    await session.send_ping()
                except MCPError as error:
                    raise connection_failure(self.name, error, connected=True) from error
            if waited.cancelled_caught:
                raise McpServerHung(
                    f"MCP server {self.name!r} did not answer a ping within "
                    f"{self.options.ping_timeout} s: it is hung, restarting it"
                )
            self._pings += 1
            heartbeat()

    async def _on_message(self, message: object) -> None:
        """The session's handler of notifications and transport errors."""
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._list_changed.set()
        elif isinstance(message, Exception):
            self._protocol_errors += 1
            first_line = (str(message).splitlines() or [""])[0][:200]
            self._last_error = f"unreadable message: {first_line}"
            logger.warning("MCP server %s sent an unreadable message: %s", self.name, first_line)
        await trio.lowlevel.checkpoint()

    async def _follow_list_changes(self, session: ClientSession) -> None:
        while True:
            await self._list_changed.wait()
            self._list_changed = trio.Event()
            self._list_changes += 1
            with trio.move_on_after(self.options.connect_timeout) as waited:
                catalog = await self._list(session)
            if waited.cancelled_caught:
                raise McpServerHung(
                    f"MCP server {self.name!r} did not list its tools within "
                    f"{self.options.connect_timeout} s after announcing a change"
                )
            self._apply(catalog)

    # -- the registry -----------------------------------------------------------------------

    async def _list(self, session: ClientSession) -> Catalog:
        listed: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(self.options.max_list_pages):
            params = None if cursor is None else mcp_types.PaginatedRequestParams(cursor=cursor)
            page = await session.list_tools(params=params)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        else:
            logger.warning(
                "MCP server %s: tool listing cut after max_list_pages=%d pages",
                self.name,
                self.options.max_list_pages,
            )
        return build_catalog(listed, server=self.name, options=self.options)

    def _ours(self, bus_name: str) -> bool:
        try:
            tool = self.bus.get_tool(bus_name)
        except LookupError:
            return False
        return isinstance(tool, McpTool) and tool.connection is self

    def _apply(self, catalog: Catalog) -> None:
        """Register, replace and unregister tools so the bus mirrors ``catalog``."""
        plan = plan_sync(self._registered, catalog)
        refused = list(catalog.refused)
        for name in plan.remove:
            if self._ours(name):
                self.bus.unregister_tool(name)
            del self._registered[name]
        for remote in plan.replace:
            if self._ours(remote.bus_name):
                self.bus.replace_tool(McpTool(self, remote, timeout=self.options.timeout))
            self._registered[remote.bus_name] = remote
        callers = [c for c in self._callers if self.bus.identities.is_live(c)]
        for remote in plan.add:
            try:
                self.bus.register_tool(
                    McpTool(self, remote, timeout=self.options.timeout),
                    timeout=self.options.timeout,
                    callers=callers,
                    roles=sorted(self._roles),
                    policy=self._policy,
                )
            except (DuplicateTool, InvalidGrant, UnknownRole) as error:
                refused.append(RefusedTool(remote.remote_name, str(error)))
                continue
            self._registered[remote.bus_name] = remote
        for remote in (*plan.add, *plan.replace):
            for issue in remote.issues:
                logger.info("MCP tool %s: schema %s", remote.bus_name, issue)
        for refusal in refused:
            logger.warning(
                "MCP server %s: tool %r not registered: %s",
                self.name,
                refusal.remote_name,
                refusal.reason,
            )
        self._refused = tuple(refused)

    def _unregister_all(self) -> None:
        for name in list(self._registered):
            if self._ours(name):
                self.bus.unregister_tool(name)
        self._registered.clear()

    def tools(self) -> tuple[RemoteTool, ...]:
        """The tools registered now, with what their schemas leave out."""
        return tuple(self._registered.values())

    def refused(self) -> tuple[RefusedTool, ...]:
        """The tools the server lists that are not registered, with why."""
        return self._refused

    # -- calls ------------------------------------------------------------------------------

    async def call_tool(self, remote_name: str, args: Mapping[str, Any]) -> object:
        """Call the server's tool ``remote_name`` (its own name) with ``args``.

        Runs under the caller's deadline (the bus's); waits for a free slot of
        ``max_concurrent_calls``.

        Raises:
            McpServerUnavailable: not connected (or it went away during the call).
            McpToolFailed: the tool reported a failure.
            McpProtocolError: a JSON-RPC error or a malformed answer.
            McpResultTooLarge: the result is larger than ``max_result_bytes``.
            InvalidToolInput: the server refused the arguments.
        """
        await self._session_for_call()
        async with self._limiter:
            session = await self._session_for_call()
            link = self._link
            self._calls += 1
            self._in_flight += 1
            try:
                result = await session.call_tool(remote_name, dict(args))
            except MCPError as error:
                if error.code == mcp_types.METHOD_NOT_FOUND:
                    self._list_changed.set()  # our registry is behind the server's
                failure = link.process.failure if link and link.process else None
                if error.code == mcp_types.CONNECTION_CLOSED and failure is not None:
                    raise type(failure)(f"MCP server {self.name!r}: {failure}") from error
                raise call_error(self.name, remote_name, error) from error
            except (anyio.ClosedResourceError, anyio.BrokenResourceError) as error:
                raise self._unavailable(
                    f" (it went away during the call of {remote_name!r})"
                ) from error
            except (ValidationError, RuntimeError) as error:
                raise McpProtocolError(
                    f"MCP server {self.name!r} answered the call of {remote_name!r} with an "
                    f"invalid result: {str(error)[:500]}"
                ) from error
            finally:
                self._in_flight -= 1
        return tool_result(
            result, tool=remote_name, max_bytes=self.options.max_result_bytes, blobs=self._blobs
        )

    def blob(self, ref: str) -> Blob:
        """The image, audio or binary resource a result referred to as ``ref``.

        Raises:
            McpBlobMissing: not kept (dropped to stay within ``max_blob_bytes``).
        """
        return self._blobs.get(ref)

    def statistics(self) -> McpServerStatistics:
        """Counters and state (see :class:`McpServerStatistics`)."""
        link = self._link
        return McpServerStatistics(
            name=self.name,
            transport=self.location.kind,
            state=self._state.value,
            pid=link.process.pid if link is not None and link.process is not None else None,
            connects=self._connects,
            restarts=max(0, self._connects - 1),
            tools=tuple(self._registered),
            refused=self._refused,
            schema_issues=sum(len(tool.issues) for tool in self._registered.values()),
            calls=self._calls,
            in_flight=self._in_flight,
            max_concurrent_calls=self.options.max_concurrent_calls,
            pings=self._pings,
            list_changes=self._list_changes,
            protocol_errors=self._protocol_errors,
            blob_bytes=self._blobs.size,
            last_error=self._last_error,
        )
