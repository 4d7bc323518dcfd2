"""A base for tools that wrap another tool (fault injection, caching, auditing...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._schema import ToolSchema
from ._tool import Tool


class WrappedTool:
    """A tool with the wrapped tool's name, description, schema and deadline.

    Subclasses override :meth:`execute` and call ``await self.inner.execute(args)``
    where they want the wrapped behaviour.

    Attributes:
        inner: The wrapped tool.
        timeout: Per-tool deadline in seconds (default: the wrapped tool's, if any).
    """

    def __init__(self, inner: Tool, *, timeout: float | None = None) -> None:
        self.inner = inner
        self.timeout: float | None = getattr(inner, "timeout", None) if timeout is None else timeout

    @property
    def name(self) -> str:
        """The wrapped tool's name."""
        return self.inner.name

    @property
    def description(self) -> str:
        """The wrapped tool's description."""
        return self.inner.description

    @property
    def input_schema(self) -> ToolSchema:
        """The wrapped tool's schema."""
        return self.inner.input_schema

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Run the wrapped tool."""
        return await self.inner.execute(args)
