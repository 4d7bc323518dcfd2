"""How an agent meets its tools: the :class:`ToolInvoker` protocol, the tool listing
offered to the model, and tool results and errors as text for it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import ToolExecutionFailed
from ..types import Caller
from ._model import ToolDefinition
from ._task import ToolCaller


@runtime_checkable
class ToolInvoker(Protocol):
    """What an agent needs from a tool bus (:class:`mister_smith.tools.ToolBus` is one)."""

    async def call(
        self,
        caller: Caller,
        name: str,
        args: Mapping[str, Any],
        *,
        on_behalf_of: Sequence[Caller] = (),
        timeout: float | None = None,
    ) -> Any:
        """Call tool ``name`` as ``caller`` (acting for ``on_behalf_of``) under the
        deadline ``timeout``."""
        ...

    def list_available_tools(
        self, caller: Caller, *, on_behalf_of: Sequence[Caller] = ()
    ) -> Sequence[Any]:
        """The schemas of the tools ``caller`` (acting for ``on_behalf_of``) may call."""
        ...


def bounded(waited_on: object) -> bool:
    """Whether awaiting ``waited_on`` ends by a deadline of its own."""
    if waited_on is None:
        return False
    if callable(getattr(waited_on, "call", None)) and hasattr(waited_on, "default_timeout"):
        return True  # a ToolBus: every call runs under a deadline
    timeout = getattr(waited_on, "timeout", None)
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return math.isfinite(timeout)
    model = getattr(waited_on, "model", None)
    return model is not None and model is not waited_on and bounded(model)


def format_tool_result(value: Any) -> str:
    """A tool's return value as text for the model (strings as they are, else JSON)."""
    if isinstance(value, str):
        return value
    if attrs.has(type(value)):
        value = attrs.asdict(value)
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def format_tool_error(error: BaseException) -> str:
    """A tool failure as text for the model: error type, message and cause."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if isinstance(error, ToolExecutionFailed) and cause is not None:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


def available_tool_definitions(
    tools: ToolInvoker | None, caller: ToolCaller, allowed: frozenset[str] | None
) -> tuple[ToolDefinition, ...]:
    """The tools ``caller`` may call, as model :class:`ToolDefinition` s, sorted by name."""
    return tool_listing(tools, caller, allowed)[0]


def tool_listing(
    tools: ToolInvoker | None, caller: ToolCaller, allowed: frozenset[str] | None
) -> tuple[tuple[ToolDefinition, ...], dict[str, float]]:
    """The definitions offered to the model, and each tool's own deadline (if listed)."""
    if tools is None:
        return (), {}
    listed = [
        entry
        for entry in tools.list_available_tools(caller.who, on_behalf_of=caller.on_behalf_of)
        if allowed is None or str(entry.name) in allowed
    ]
    timeouts: dict[str, float] = {}
    for entry in listed:
        own = getattr(entry, "timeout", None)
        if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
            timeouts[str(entry.name)] = float(own)
    definitions = sorted((ToolDefinition.from_schema(e) for e in listed), key=lambda d: d.name)
    return tuple(definitions), timeouts
