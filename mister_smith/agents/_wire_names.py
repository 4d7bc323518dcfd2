"""Tool names on the wire: what APIs accept, and the mapping of dotted names.

Both OpenAI and Anthropic take tool names matching ``^[a-zA-Z0-9_-]{1,64}$``. A tool
registered as ``files.read`` is offered as ``files_read`` and the model's calls of
``files_read`` are mapped back, so the rest of the framework keeps the real name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ..errors import InvalidToolName

WIRE_TOOL_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What the APIs accept as a tool name."""


def wire_tool_name(name: str) -> str:
    """``name`` as sent to a model API (each ``.`` becomes ``_``).

    Raises:
        InvalidToolName: even so, not ``^[a-zA-Z0-9_-]{1,64}$``.
    """
    wire = name.replace(".", "_")
    if not WIRE_TOOL_NAME.match(wire):
        raise InvalidToolName(
            f"tool name {name!r:.80} cannot be sent to a model API: names must match "
            "^[a-zA-Z0-9_.-]{1,64}$ (a dot is sent as '_')"
        )
    return wire


class ToolNames:
    """The two-way mapping between a request's tool names and their wire names.

    Raises:
        InvalidToolName: a name that cannot be mapped, or two names mapping to the
            same wire name (``a.b`` and ``a_b``).
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._to_wire: dict[str, str] = {}
        self._from_wire: dict[str, str] = {}
        for name in names:
            wire = wire_tool_name(name)
            other = self._from_wire.get(wire)
            if other is not None and other != name:
                raise InvalidToolName(
                    f"tools {other!r} and {name!r} would both be called {wire!r} by a model"
                )
            self._to_wire[name] = wire
            self._from_wire[wire] = name

    @property
    def offered(self) -> frozenset[str]:
        """The real names this mapping was built from."""
        return frozenset(self._to_wire)

    def wire(self, name: str) -> str:
        """The wire name of ``name`` (a name not offered is mapped the same way)."""
        known = self._to_wire.get(name)
        return known if known is not None else wire_tool_name(name)

    def original(self, wire: str) -> str:
        """The tool a model's call of ``wire`` means (unknown names are kept as they are,
        so the tool bus refuses them by name)."""
        return self._from_wire.get(wire, wire)
