"""Which of a server's tools we register, and how the registry follows its changes.

Pure and synchronous: :func:`build_catalog` turns a ``tools/list`` answer into the tools
we accept (with what was left out of their schemas) and those we refuse (with why);
:func:`plan_sync` says what to add, replace and remove on the bus to go from what is
registered to the new catalog. The connection carries the plan out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs
import mcp_types

from .._schema import ToolSchema
from ._options import McpServerOptions
from ._schema_import import SchemaIssue, import_schema

TOOL_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,128}\Z")
"""Tool names we accept from a server (MCP's advice: 1-128 of letters, digits, ``_-./``)."""


@attrs.frozen(eq=False)
class RemoteTool:
    """A tool of the server, as we register it.

    Attributes:
        remote_name: Its name on the server.
        bus_name: Its name on our bus (the prefix, then ``remote_name``).
        description: Its description (cut to ``max_description_chars``).
        schema: Our schema for its arguments.
        issues: What its schema holds that we do not enforce.
        description_cut: Whether its description was cut.
    """

    remote_name: str
    bus_name: str
    description: str
    schema: ToolSchema
    issues: tuple[SchemaIssue, ...] = ()
    description_cut: bool = False

    def same_as(self, other: RemoteTool) -> bool:
        """Whether registering ``other`` instead would change nothing a caller sees."""
        return (
            self.remote_name == other.remote_name
            and self.description == other.description
            and self.schema == other.schema
        )


@attrs.frozen
class RefusedTool:
    """A tool of the server we did not register.

    Attributes:
        remote_name: Its name on the server (cut to 200 characters).
        reason: Why.
        issues: Its schema's issues, when the schema was the reason.
    """

    remote_name: str
    reason: str
    issues: tuple[SchemaIssue, ...] = ()


@attrs.frozen
class Catalog:
    """The tools accepted from one listing, in the server's order, and those refused."""

    tools: tuple[RemoteTool, ...]
    refused: tuple[RefusedTool, ...]

    def by_bus_name(self) -> dict[str, RemoteTool]:
        """The accepted tools by their bus names."""
        return {tool.bus_name: tool for tool in self.tools}


def build_catalog(
    listed: Sequence[mcp_types.Tool], *, server: str, options: McpServerOptions
) -> Catalog:
    """Accept or refuse each listed tool (names, allow-list, count, schema, description)."""
    accepted: list[RemoteTool] = []
    refused: list[RefusedTool] = []
    seen: set[str] = set()
    for listed_tool in listed:
        name = listed_tool.name
        if not TOOL_NAME.match(name):
            refused.append(RefusedTool(name[:200], "its name is not 1-128 of [A-Za-z0-9_.-/]"))
            continue
        if name in seen:
            refused.append(RefusedTool(name, "listed twice (the first one is kept)"))
            continue
        seen.add(name)
        if options.allow_tools is not None and name not in options.allow_tools:
            refused.append(RefusedTool(name, "not in allow_tools"))
            continue
        imported = import_schema(listed_tool.input_schema, mode=options.schema_mode)
        if imported.schema is None:
            reason = "its input schema cannot be enforced: " + "; ".join(
                str(issue) for issue in imported.issues[-3:]
            )
            refused.append(RefusedTool(name, reason, imported.issues))
            continue
        if len(accepted) >= options.max_tools:
            refused.append(RefusedTool(name, f"more than max_tools={options.max_tools} tools"))
            continue
        description = listed_tool.description or listed_tool.title or ""
        cut = len(description) > options.max_description_chars
        if cut:
            description = description[: options.max_description_chars]
        accepted.append(
            RemoteTool(
                remote_name=name,
                bus_name=options.tool_name(server, name),
                description=description,
                schema=imported.schema,
                issues=imported.issues,
                description_cut=cut,
            )
        )
    return Catalog(tuple(accepted), tuple(refused))


@attrs.frozen
class SyncPlan:
    """What to do on the bus to register exactly a new catalog.

    Attributes:
        add: Tools not registered yet.
        replace: Registered tools whose description or schema changed.
        remove: Bus names of registered tools the server no longer offers.
        keep: Bus names of registered tools that did not change.
    """

    add: tuple[RemoteTool, ...]
    replace: tuple[RemoteTool, ...]
    remove: tuple[str, ...]
    keep: tuple[str, ...]


def plan_sync(current: Mapping[str, RemoteTool], catalog: Catalog) -> SyncPlan:
    """The changes taking the registered tools ``current`` (by bus name) to ``catalog``."""
    wanted = catalog.by_bus_name()
    add = tuple(tool for name, tool in wanted.items() if name not in current)
    replace = tuple(
        tool for name, tool in wanted.items() if name in current and not current[name].same_as(tool)
    )
    keep = tuple(
        name for name, tool in wanted.items() if name in current and current[name].same_as(tool)
    )
    remove = tuple(name for name in current if name not in wanted)
    return SyncPlan(add, replace, remove, keep)
