"""``EchoTool``: the reference built-in that returns its input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from ._schema import ToolSchema


class EchoTool:
    """Returns its arguments unchanged (``{"message": ...}``); handy for wiring tests.

    Args:
        name: The tool's name.
        max_length: Longest accepted message, in characters.
    """

    description = "Echo the given message back unchanged."
    timeout: float | None = None
    idempotent = True
    """Running it twice does no harm: the bus may retry a transient failure."""

    def __init__(self, *, name: str = "echo", max_length: int = 100_000) -> None:
        self.name = name
        self.input_schema = ToolSchema.from_properties(
            {
                "message": {
                    "type": "string",
                    "description": "The text to echo back.",
                    "maxLength": max_length,
                }
            },
            required=["message"],
        )

    async def execute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``args`` as a new dict."""
        await trio.lowlevel.checkpoint()
        return dict(args)
