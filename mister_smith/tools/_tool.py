"""The ``Tool`` protocol and the ``@tool`` decorator building tools from typed functions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, overload, runtime_checkable

from ._context import run_blocking
from ._schema import ToolSchema
from ._signature import describe_function, structure_args


@runtime_checkable
class Tool(Protocol):
    """Something an agent can call through the :class:`ToolBus`.

    ``execute`` receives arguments already validated against ``input_schema`` and runs
    under the bus's deadline; it must not block the loop (use :func:`run_blocking` for
    blocking work). A tool may also have a ``timeout`` attribute (seconds), which the bus
    uses as its per-tool deadline unless one is given at registration, and an
    ``idempotent`` attribute (``True``: running it twice has the effect of running it
    once), which lets a durable agent re-run a call that was in flight when its process
    died instead of reporting its outcome as unknown.
    """

    @property
    def name(self) -> str:
        """Unique name the tool is called by."""
        ...

    @property
    def description(self) -> str:
        """What the tool does, for a model choosing tools."""
        ...

    @property
    def input_schema(self) -> ToolSchema:
        """JSON Schema of the arguments."""
        ...

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Run with validated ``args`` and return a JSON-friendly result."""
        ...


def _is_async_callable(fn: object) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callability
    )


class FunctionTool:
    """A tool made from a typed function (see :func:`tool`).

    Attributes:
        fn: The wrapped function.
        name: The tool's name.
        description: The tool's description.
        input_schema: The schema built from the signature.
        timeout: Per-tool deadline in seconds (``None``: the bus's default).
        blocking: Whether ``fn`` is sync and runs in a worker thread.
        idempotent: Whether running it twice has the effect of running it once.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        blocking: bool = False,
        idempotent: bool = False,
    ) -> None:
        label = name or getattr(fn, "__name__", None) or repr(fn)
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise TypeError(f"tool {label!r}: generator functions cannot be tools")
        is_async = _is_async_callable(fn)
        if blocking and is_async:
            raise TypeError(
                f"tool {label!r}: blocking=True is for plain (sync) functions; "
                f"{getattr(fn, '__qualname__', fn)!r} is already async"
            )
        if not blocking and not is_async:
            raise TypeError(
                f"tool {label!r}: {getattr(fn, '__qualname__', fn)!r} is a plain (sync) "
                "function. Tools must be `async def` so they cannot block the event loop; "
                "if it really blocks (file or CPU work, a sync client), declare it with "
                "@tool(blocking=True) to run it in a worker thread."
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"tool {label!r}: timeout must be > 0 seconds, got {timeout!r}")
        signature = describe_function(fn)
        self.fn = fn
        self.name = label
        self.description = description if description is not None else signature.description
        self.input_schema: ToolSchema = signature.schema
        self.timeout = timeout
        self.blocking = blocking
        self.idempotent = idempotent
        self._annotations = signature.annotations
        # The function as a coroutine function, typed once here rather than cast per call.
        self._coroutine_fn: Callable[..., Coroutine[Any, Any, object]] = fn
        # No parameter needs structuring: validated arguments are the keyword arguments
        # as they are (the schema is closed, so every key is a parameter).
        self._plain = not blocking and all(a is None for a in signature.annotations.values())

    def __repr__(self) -> str:
        kind = "blocking " if self.blocking else ""
        return f"<{kind}FunctionTool {self.name!r}>"

    def execute(self, args: Mapping[str, Any]) -> Coroutine[Any, Any, object]:
        """Call the function with ``args`` turned into its parameter types.

        Awaited like any tool's ``execute``; it hands back the function's own coroutine
        (or :func:`run_blocking`'s) instead of wrapping it in one more, which spares a
        coroutine per call on the tool bus's hot path. A structuring error is raised
        when it is called rather than when it is awaited.
        """
        if self._plain:
            return self._coroutine_fn(**args)
        kwargs = structure_args(args, self._annotations)
        if self.blocking:
            return run_blocking(functools.partial(self.fn, **kwargs), thread_name=self.name)
        return self._coroutine_fn(**kwargs)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    blocking: bool = False,
    idempotent: bool = False,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    blocking: bool = False,
    idempotent: bool = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a :class:`FunctionTool` from a typed ``async def`` function.

    Used bare (``@tool``) or with options (``@tool(name="search", timeout=5)``). The
    schema comes from the signature (see :func:`schema_for_type`); parameters without
    defaults are required; the docstring's description becomes the tool's and its
    ``Args:`` lines the parameters'. A sync function is refused with a ``TypeError``
    unless declared ``blocking=True``: it then runs through ``trio.to_thread.run_sync``
    under the bus's blocking-thread limiter and is abandoned on timeout.

    Args:
        fn: The function (when used bare).
        name: Tool name (default: the function's ``__name__``).
        description: Tool description (default: from the docstring).
        timeout: Per-tool deadline in seconds (default: the bus's).
        blocking: ``fn`` is a sync function that may block; run it in a thread.
        idempotent: Running it twice has the effect of running it once (a durable
            agent re-runs such a call if its process died while it ran).

    Raises:
        TypeError: a sync function without ``blocking=True`` (or an async one with it),
            or a signature that cannot be described as JSON Schema.
    """

    def build(function: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            function,
            name=name,
            description=description,
            timeout=timeout,
            blocking=blocking,
            idempotent=idempotent,
        )

    if fn is not None:
        return build(fn)
    return build
