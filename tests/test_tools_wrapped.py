"""WrappedTool: a wrapper keeps the wrapped tool's identity and deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from mister_smith.tools import ToolBus, WrappedTool, tool


@tool(timeout=2.0)
async def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


class Counting(WrappedTool):
    def __init__(self) -> None:
        super().__init__(shout)
        self.calls = 0

    async def execute(self, args: Mapping[str, Any]) -> object:
        self.calls += 1
        return await super().execute(args)


async def test_wrapper_has_the_inner_identity_and_runs_it(autojump_clock: trio.abc.Clock) -> None:
    wrapped = Counting()
    assert (wrapped.name, wrapped.description) == ("shout", "Upper-case the text.")
    assert wrapped.input_schema == shout.input_schema
    assert wrapped.timeout == 2.0
    assert WrappedTool(shout, timeout=5.0).timeout == 5.0
    bus = ToolBus(default_policy="open")
    bus.register_tool(wrapped)
    assert await bus.call("me", "shout", {"text": "hi"}) == "HI"
    assert wrapped.calls == 1
