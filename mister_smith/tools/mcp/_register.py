"""``register_mcp_server``: connect an MCP server and register its tools on a bus."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

from ...errors import InvalidGrant
from ...supervision import Supervisor
from ...types import Role
from .._bus import ToolBus
from .._permissions import Grantee, PolicyName, check_policy, resolve_grantees, resolve_roles
from ._connection import McpServerConnection
from ._options import McpServerOptions
from ._transport import (
    CustomTransport,
    HttpEndpoint,
    ServerLocation,
    StdioCommand,
    TransportFactory,
)

SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}\Z")
"""Server names: they start tool names and a supervisor's name."""


def _location(
    stdio: Sequence[str] | None,
    url: str | None,
    transport: TransportFactory | None,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
    headers: Mapping[str, str] | None,
) -> ServerLocation:
    given = [
        what
        for what, value in (("stdio", stdio), ("url", url), ("transport", transport))
        if value is not None
    ]
    if len(given) != 1:
        raise TypeError(f"give exactly one of stdio=, url= or transport= (got {given or 'none'})")
    if stdio is not None:
        if headers is not None:
            raise TypeError("headers= is for url= servers")
        return StdioCommand(stdio, env, cwd)  # type: ignore[arg-type]
    if env is not None or cwd is not None:
        raise TypeError("env= and cwd= are for stdio= servers")
    if url is not None:
        return HttpEndpoint(url, headers)
    if headers is not None:
        raise TypeError("headers= is for url= servers")
    assert transport is not None
    if not callable(transport):
        raise TypeError(f"transport must be a callable opening a connection, got {transport!r}")
    return CustomTransport(transport)


async def register_mcp_server(
    bus: ToolBus,
    name: str,
    *,
    supervisor: Supervisor,
    stdio: Sequence[str] | None = None,
    url: str | None = None,
    transport: TransportFactory | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    headers: Mapping[str, str] | None = None,
    options: McpServerOptions | None = None,
    callers: Iterable[Grantee] = (),
    roles: Iterable[Role | str] = (),
    policy: PolicyName | None = None,
) -> McpServerConnection:
    """Connect the MCP server ``name`` and register each of its tools on ``bus``.

    Each tool becomes ``<name>.<tool>`` (see ``McpServerOptions.prefix``) with the
    server's JSON schema as far as our validator enforces it (what it leaves out is
    reported: :meth:`McpServerConnection.tools`), the deadline ``options.timeout`` (else
    the bus's), and the grants given here, which also apply to tools the server adds
    later. Without grants the tools follow the bus's default policy: deny, so nobody may
    call them until granted (``bus.grant``).

    The connection runs under a supervisor of its own, ``mcp:<name>``, started as a
    child of ``supervisor`` (e.g. ``runtime.supervision``): a stdio server is a child
    process restarted with ``options.backoff`` when it dies or hangs, within
    ``options.restart_limit``. This returns once the server is connected and its tools
    are registered.

    Args:
        bus: Where the tools are registered.
        name: The server's name (letters, digits, ``_`` and ``-``).
        supervisor: Whose child the connection's supervisor is.
        stdio: The command running the server (program and arguments, no shell).
        url: The streamable-HTTP endpoint of the server.
        transport: Opens a connection (for other transports, and in-process servers).
        env: Environment variables added for a stdio server.
        cwd: Working directory of a stdio server.
        headers: HTTP headers for a URL server (e.g. authorization).
        options: Bounds, deadlines, heartbeat and restart budget.
        callers: Identities (or live actors) granted every tool of the server.
        roles: Roles granted every tool of the server.
        policy: ``"deny"`` or ``"open"`` for its tools (default: the bus's, or
            ``"deny"`` with grants).

    Raises:
        McpConnectFailed: the first connection failed (command missing, no answer,
            handshake or listing failed or took longer than ``connect_timeout``).
        InvalidGrant: a grant that could never apply (or grants with ``"open"``).
        UnknownRole: a role the bus's authority never registered.
        ValueError: a bad name, or a server of that name already runs there.
        TypeError: not exactly one of ``stdio``, ``url`` and ``transport``.
    """
    if not isinstance(name, str) or not SERVER_NAME.match(name):
        raise ValueError(
            f"an MCP server name is 1-64 letters, digits, '_' or '-' (starting with a letter "
            f"or digit), got {name!r}"
        )
    location = _location(stdio, url, transport, env, cwd, headers)
    options = McpServerOptions() if options is None else options
    if not isinstance(options, McpServerOptions):
        raise TypeError(f"options must be McpServerOptions, got {options!r}")
    label = options.tool_name(name, "*")
    granted = resolve_grantees(bus.identities, callers, label)
    granted_roles = resolve_roles(bus.identities, roles, label)
    chosen = None if policy is None else check_policy(policy)
    if chosen == "open" and (granted or granted_roles):
        raise InvalidGrant(f"tools {label!r}: grants cannot apply to open tools")
    try:
        supervisor.child(f"mcp:{name}")
    except LookupError:
        pass
    else:
        raise ValueError(f"an MCP server named {name!r} already runs under {supervisor.name!r}")
    connection = McpServerConnection(
        name,
        bus,
        location,
        options,
        callers=frozenset(granted),
        roles=frozenset(granted_roles),
        policy=chosen,
    )
    await connection.start(supervisor)
    return connection
