"""``McpServerOptions``: the bounds and recovery settings of one MCP server connection."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import attrs

from ...supervision import Backoff, RestartLimit

SchemaMode = Literal["relax", "refuse"]
"""What to do with a tool whose input schema uses keywords our validator does not
enforce: ``"relax"`` registers it without them (the server still validates its own
input) and reports each one; ``"refuse"`` does not register it (and reports why)."""


def _positive_number(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be a number > 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


def _optional_positive(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if value is not None:
        _positive_number(instance, attribute, value)  # type: ignore[arg-type]


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _names(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"allow_tools must be a collection of tool names, got the string {value!r}")
    if not isinstance(value, Iterable):
        raise TypeError(f"allow_tools must be a collection of tool names, got {value!r}")
    names: set[str] = set()
    for name in value:
        if not isinstance(name, str) or not name:
            raise TypeError(f"allow_tools must hold non-empty tool names, got {name!r}")
        names.add(name)
    return frozenset(names)


def _mode(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("relax", "refuse"):
        raise ValueError(f"schema_mode must be 'relax' or 'refuse', got {value!r}")


@attrs.frozen(kw_only=True)
class McpServerOptions:
    """How one MCP server is used: deadlines, bounds, heartbeat and restart budget.

    The defaults follow the wider design's: a worker restarted at most 3 times in 60 s
    with 100 ms first backoff doubling each time, a heartbeat every 5 s and a peer
    declared failed after 15 s of silence.

    Attributes:
        prefix: Put before each tool's name on the bus (default ``"<server>."``; ``""``
            keeps the server's names, e.g. to stand in for in-process tools).
        timeout: Deadline in seconds of each tool's calls (default: the bus's).
        max_concurrent_calls: Calls in flight to this server at once; more wait for a
            slot within their deadline.
        connect_timeout: Seconds to start (spawn or reach), handshake and list tools.
        ping_interval: Seconds between heartbeat pings.
        ping_timeout: A ping unanswered this long means the server hung: it is
            restarted (:class:`~mister_smith.tools.mcp.McpServerHung`).
        backoff: Delay before each restart (grows on consecutive failures).
        restart_limit: Restarts allowed within a window; one more stops the server for
            good (its tools answer :class:`McpServerUnavailable`), nothing else is hurt.
        wait_for_restart: A call made while the server (re)starts waits for it, within
            the call's deadline, instead of failing at once. Calls fail at once when the
            server is stopped for good or closed either way.
        max_message_bytes: Longest single message read from a stdio server (a server
            writing an endless line is cut off and restarted, not buffered).
        max_result_bytes: Largest tool result (text, JSON and embedded data together).
        max_tools: Most tools registered from this server (the rest are reported).
        max_description_chars: Longer tool descriptions are cut to this (and reported).
        max_list_pages: Most ``tools/list`` pages read in one listing.
        allow_tools: Only these tools (by the server's names) are registered; ``None``
            registers every tool the server lists, including ones it adds later.
        schema_mode: ``"relax"`` or ``"refuse"`` (see :data:`SchemaMode`).
        max_blob_bytes: Bytes of images, audio and binary resources kept for
            :meth:`McpServerConnection.blob` (oldest dropped first).
        stderr_lines: Lines of a stdio server's stderr kept to explain its failures.
    """

    prefix: str | None = None
    timeout: float | None = attrs.field(default=None, validator=_optional_positive)
    max_concurrent_calls: int = attrs.field(default=8, validator=_positive_int)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive_number)
    ping_interval: float = attrs.field(default=5.0, validator=_positive_number)
    ping_timeout: float = attrs.field(default=10.0, validator=_positive_number)
    backoff: Backoff = attrs.field(factory=lambda: Backoff(initial=0.1, maximum=30.0, factor=2.0))
    restart_limit: RestartLimit = attrs.field(factory=lambda: RestartLimit(3, 60.0))
    wait_for_restart: bool = True
    max_message_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=_positive_int)
    max_result_bytes: int = attrs.field(default=1024 * 1024, validator=_positive_int)
    max_tools: int = attrs.field(default=256, validator=_positive_int)
    max_description_chars: int = attrs.field(default=4096, validator=_positive_int)
    max_list_pages: int = attrs.field(default=16, validator=_positive_int)
    allow_tools: frozenset[str] | None = attrs.field(default=None, converter=_names)
    schema_mode: SchemaMode = attrs.field(default="relax", validator=_mode)
    max_blob_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_positive_int)
    stderr_lines: int = attrs.field(default=50, validator=_positive_int)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {self.backoff!r}")
        if not isinstance(self.restart_limit, RestartLimit):
            raise TypeError(f"restart_limit must be a RestartLimit, got {self.restart_limit!r}")
        if self.prefix is not None and not isinstance(self.prefix, str):
            raise TypeError(f"prefix must be a string, got {self.prefix!r}")

    def tool_name(self, server: str, tool: str) -> str:
        """The bus name of ``tool`` of ``server``: the prefix, then the server's name."""
        prefix = f"{server}." if self.prefix is None else self.prefix
        return prefix + tool
