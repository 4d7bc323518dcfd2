"""``ToolBus``: the registry, permission gate, validator, deadline and meter of tool calls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal

import attrs
import trio

from ..async_patterns import HistogramSnapshot, LatencyHistogram
from ..errors import (
    InvalidToolInput,
    ToolError,
    ToolExecutionFailed,
    ToolNotFound,
    ToolPermissionDenied,
    ToolTimeout,
)
from ..events import EventBus, ToolCalled, ToolOutcome
from ..types import ToolId
from ._context import CURRENT_TOOL_CALL, STEP_STATE, ToolCallContext
from ._schema import ToolSchema
from ._tool import Tool

ToolPolicy = Literal["open", "restricted"]
"""``"open"``: every caller may call the tool. ``"restricted"``: only the callers and
roles granted it (deny by default)."""

_POLICIES: tuple[ToolPolicy, ...] = ("open", "restricted")


class DuplicateTool(ToolError, ValueError):
    """A tool with that name is already registered."""


def _check_policy(policy: str) -> ToolPolicy:
    if policy not in _POLICIES:
        raise ValueError(f"tool policy must be 'open' or 'restricted', got {policy!r}")
    return policy


def _check_timeout(timeout: float | None, what: str) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"{what} must be > 0 seconds, got {timeout!r}")


@attrs.frozen
class ToolSpec:
    """What the bus tells about a registered tool (e.g. to offer it to a model).

    Attributes:
        name: The tool's name.
        description: What it does.
        input_schema: Its arguments' schema.
        tool_id: Id given at registration.
        policy: ``"open"`` or ``"restricted"``.
        timeout: Its deadline in seconds when not overridden per call.
    """

    name: str
    description: str
    input_schema: ToolSchema
    tool_id: ToolId
    policy: ToolPolicy
    timeout: float

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "description", "input_schema"}`` as a model's tool list wants it."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema.to_dict(),
        }


@attrs.frozen
class ToolStatistics:
    """Counters of one tool.

    Attributes:
        name: The tool's name.
        calls: Calls that reached the bus for it (every outcome).
        succeeded: Calls that returned a result.
        failures: Calls whose tool raised (timeouts excluded).
        timeouts: Calls past their deadline.
        denied: Calls refused by the permission check (or by the tool itself).
        invalid: Calls refused by argument validation (or by the tool itself).
        cancelled: Calls cancelled from outside (the caller's own scope).
        in_flight: Calls running now.
        latency: Durations of calls that ran the tool (succeeded, failed, timed out).
    """

    name: str
    calls: int
    succeeded: int
    failures: int
    timeouts: int
    denied: int
    invalid: int
    cancelled: int
    in_flight: int
    latency: HistogramSnapshot


@attrs.frozen
class ToolBusStatistics:
    """A snapshot of a :class:`ToolBus`.

    Attributes:
        tools: Per-tool counters by name.
        calls: Calls over all tools, unknown names included.
        not_found: Calls naming no registered tool.
        blocking_threads_in_use: Threads running (or abandoned and still running)
            blocking tool code now.
        blocking_threads: The blocking-thread limit.
    """

    tools: dict[str, ToolStatistics]
    calls: int
    not_found: int
    blocking_threads_in_use: int
    blocking_threads: int


@attrs.define(eq=False)
class _Registration:
    tool: Tool
    tool_id: ToolId
    policy: ToolPolicy
    timeout: float
    callers: set[Hashable] = attrs.field(factory=set)
    roles: set[str] = attrs.field(factory=set)
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    calls: int = 0
    succeeded: int = 0
    failures: int = 0
    timeouts: int = 0
    denied: int = 0
    invalid: int = 0
    cancelled: int = 0
    in_flight: int = 0

    def spec(self) -> ToolSpec:
        return ToolSpec(
            self.tool.name,
            self.tool.description,
            self.tool.input_schema,
            self.tool_id,
            self.policy,
            self.timeout,
        )

    def allows(self, caller: Hashable, roles: Iterable[str]) -> bool:
        if self.policy == "open" or caller in self.callers:
            return True
        return any(role in self.roles for role in roles)

    def snapshot(self) -> ToolStatistics:
        return ToolStatistics(
            self.tool.name,
            self.calls,
            self.succeeded,
            self.failures,
            self.timeouts,
            self.denied,
            self.invalid,
            self.cancelled,
            self.in_flight,
            self.latency.snapshot(),
        )


_OUTCOME_OF_TOOL_ERROR: tuple[tuple[type[ToolError], ToolOutcome], ...] = (
    (ToolTimeout, ToolOutcome.TIMEOUT),
    (ToolPermissionDenied, ToolOutcome.DENIED),
    (InvalidToolInput, ToolOutcome.INVALID),
)
"""How a call that reached a registered tool ended, by error. A ``ToolNotFound`` the
tool raises itself (e.g. a dispatcher missing a backend) is that tool's failure;
NOT_FOUND is only for calls naming no registered tool."""


class ToolBus:
    """Registry and gatekeeper of tools: every call is checked, validated, timed and counted.

    :meth:`call` runs, in order: lookup (:class:`~mister_smith.ToolNotFound`), the
    permission check (:class:`~mister_smith.ToolPermissionDenied`), argument validation
    against the tool's schema (:class:`~mister_smith.InvalidToolInput` naming each field
    and reason; the tool is never reached), then the tool under a cancel-scope deadline
    (:class:`~mister_smith.ToolTimeout`). An exception from the tool is raised as
    :class:`~mister_smith.ToolExecutionFailed` from it, except a ``ToolError`` the tool
    raises itself (e.g. a file tool refusing a path), which passes through as is. Every
    call, whatever its outcome, is counted in :meth:`statistics` and announced as a
    ``ToolCalled`` event on ``events`` (a call cancelled from outside, which
    ``ToolOutcome`` has no member for, is announced as ``FAILED`` with the error
    ``"cancelled by the caller"`` and counted as ``cancelled``, not as a failure).
    Each successful call ends with a schedule point, so a loop of calls to tools that
    never checkpoint still lets other tasks run.

    Permissions: each tool is ``"open"`` (anyone may call it) or ``"restricted"`` (only
    callers and roles granted it). New tools get ``default_policy`` unless registered
    with their own. Deadlines: the per-call ``timeout``, else the tool's (given at
    registration or as its ``timeout`` attribute), else ``default_timeout``.

    Args:
        default_policy: Policy of newly registered tools (``ToolSettings.default_policy``).
        default_timeout: Deadline in seconds of calls (``ToolSettings.default_timeout``).
        blocking_threads: Threads blocking tools may use at once
            (``RuntimeSettings.blocking_threads``).
        events: Where ``ToolCalled`` events go (optional).
        name: Source name of the events.
        tracing: Opens a span around each call, given the tool and caller names
            (e.g. ``mister_smith.monitoring.tracer().tool_span``; the runtime wires it
            when OpenTelemetry is installed).
    """

    def __init__(
        self,
        *,
        default_policy: ToolPolicy = "open",
        default_timeout: float = 30.0,
        blocking_threads: int = 512,
        events: EventBus | None = None,
        name: str = "tool_bus",
        tracing: Callable[[str, str], AbstractContextManager[object]] | None = None,
    ) -> None:
        self._default_policy = _check_policy(default_policy)
        _check_timeout(default_timeout, "default_timeout")
        if blocking_threads < 1:
            raise ValueError(f"blocking_threads must be >= 1, got {blocking_threads!r}")
        self.default_timeout = default_timeout
        self.events = events
        self.name = name
        self.tracing = tracing
        self._limiter = trio.CapacityLimiter(blocking_threads)
        self._tools: dict[str, _Registration] = {}
        self._calls = 0
        self._not_found = 0

    @property
    def default_policy(self) -> ToolPolicy:
        """The policy newly registered tools get."""
        return self._default_policy

    @property
    def blocking_limiter(self) -> trio.CapacityLimiter:
        """The limiter blocking tools' threads run under (see :func:`run_blocking`)."""
        return self._limiter

    # -- registry -----------------------------------------------------------------------

    def register_tool(
        self,
        tool: Tool,
        *,
        policy: ToolPolicy | None = None,
        timeout: float | None = None,
        callers: Iterable[Hashable] = (),
        roles: Iterable[str] = (),
    ) -> ToolSpec:
        """Register ``tool`` under its name and return its :class:`ToolSpec`.

        Args:
            tool: The tool.
            policy: ``"open"`` or ``"restricted"`` (default: the bus's default policy).
            timeout: Its deadline in seconds (default: its ``timeout`` attribute, else
                the bus's ``default_timeout``).
            callers: Callers granted it at once.
            roles: Roles granted it at once.

        Raises:
            DuplicateTool: a tool of that name is registered (a ``ValueError``).
            TypeError: ``tool`` does not implement the :class:`Tool` protocol.
        """
        if not isinstance(tool, Tool):
            raise TypeError(f"{tool!r} does not implement the Tool protocol")
        if not isinstance(tool.input_schema, ToolSchema):
            raise TypeError(f"tool {tool.name!r}: input_schema must be a ToolSchema")
        if tool.name in self._tools:
            raise DuplicateTool(f"a tool named {tool.name!r} is already registered")
        own_timeout = getattr(tool, "timeout", None)
        _check_timeout(timeout, "timeout")
        _check_timeout(own_timeout, f"tool {tool.name!r} timeout")
        registration = _Registration(
            tool=tool,
            tool_id=ToolId.new(),
            policy=self._default_policy if policy is None else _check_policy(policy),
            timeout=timeout or own_timeout or self.default_timeout,
            callers=set(callers),
            roles=set(roles),
        )
        self._tools[tool.name] = registration
        return registration.spec()

    def unregister_tool(self, name: str) -> Tool:
        """Remove the tool ``name`` (and its grants) and return it.

        Raises:
            ToolNotFound: no such tool.
        """
        registration = self._lookup(name)
        del self._tools[name]
        return registration.tool

    def get_tool(self, name: str) -> Tool:
        """The tool registered as ``name``.

        Raises:
            ToolNotFound: no such tool.
        """
        return self._lookup(name).tool

    def list_tools(self) -> list[ToolSpec]:
        """Every registered tool, in registration order."""
        return [registration.spec() for registration in self._tools.values()]

    def list_available_tools(self, caller: Hashable, roles: Iterable[str] = ()) -> list[ToolSpec]:
        """The tools ``caller`` (with ``roles``) may call: open ones and those granted."""
        roles = tuple(roles)
        return [r.spec() for r in self._tools.values() if r.allows(caller, roles)]

    def is_allowed(self, caller: Hashable, name: str, roles: Iterable[str] = ()) -> bool:
        """Whether ``caller`` (with ``roles``) may call ``name``.

        Raises:
            ToolNotFound: no such tool.
        """
        return self._lookup(name).allows(caller, tuple(roles))

    # -- permissions --------------------------------------------------------------------

    def set_policy(self, name: str, policy: ToolPolicy) -> None:
        """Make tool ``name`` open or restricted (its grants are kept)."""
        self._lookup(name).policy = _check_policy(policy)

    def grant(
        self, name: str, *, callers: Iterable[Hashable] = (), roles: Iterable[str] = ()
    ) -> None:
        """Let ``callers`` and holders of ``roles`` call the restricted tool ``name``.

        Raises:
            ToolNotFound: no such tool.
        """
        registration = self._lookup(name)
        registration.callers.update(callers)
        registration.roles.update(roles)

    def revoke(
        self, name: str, *, callers: Iterable[Hashable] = (), roles: Iterable[str] = ()
    ) -> None:
        """Withdraw grants of tool ``name`` (unknown grants are ignored).

        Raises:
            ToolNotFound: no such tool.
        """
        registration = self._lookup(name)
        registration.callers.difference_update(callers)
        registration.roles.difference_update(roles)

    def _lookup(self, name: str) -> _Registration:
        registration = self._tools.get(name)
        if registration is None:
            raise ToolNotFound(f"no tool named {name!r} is registered")
        return registration

    # -- calling ------------------------------------------------------------------------

    async def call(
        self,
        caller: Hashable,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        roles: Iterable[str] = (),
        timeout: float | None = None,
    ) -> object:
        """Call tool ``name`` for ``caller`` with ``args`` and return its result.

        Args:
            caller: Who calls (an agent name or id); checked against the grants.
            name: The tool's name.
            args: Its arguments (JSON-like; ``None`` means ``{}``).
            roles: The caller's roles; checked against the grants.
            timeout: Deadline in seconds for this call (``math.inf``: none).

        Raises:
            ToolNotFound: no such tool.
            ToolPermissionDenied: ``caller`` may not call it.
            InvalidToolInput: ``args`` do not match its schema (names each field).
            ToolTimeout: it ran past its deadline and was cancelled (or abandoned).
            ToolExecutionFailed: it raised; the exception is ``__cause__``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        _check_timeout(timeout, "timeout")
        self._calls += 1
        started = trio.current_time()
        if args is None:
            args = {}
        registration = self._tools.get(name)
        if registration is None:
            self._not_found += 1
            error: ToolError = ToolNotFound(f"no tool named {name!r} is registered")
            self._announce(name, caller, ToolOutcome.NOT_FOUND, 0.0, error)
            raise error
        registration.calls += 1
        if not registration.allows(caller, roles if isinstance(roles, tuple) else tuple(roles)):
            registration.denied += 1
            error = ToolPermissionDenied(f"{caller!s} may not call tool {name!r}")
            self._announce(name, caller, ToolOutcome.DENIED, 0.0, error)
            raise error
        violations = registration.tool.input_schema.violations(args)
        if violations:
            registration.invalid += 1
            error = InvalidToolInput(
                f"tool {name!r}: invalid arguments: " + "; ".join(map(str, violations))
            )
            self._announce(name, caller, ToolOutcome.INVALID, 0.0, error)
            raise error
        limit = registration.timeout if timeout is None else timeout
        registration.in_flight += 1
        token = CURRENT_TOOL_CALL.set(ToolCallContext(name, str(caller), self._limiter))
        try:
            with contextlib.ExitStack() as stack:
                if self.tracing is not None:
                    stack.enter_context(self.tracing(name, str(caller)))
                with trio.move_on_after(limit) as deadline:
                    result = await registration.tool.execute(args)
                if deadline.cancelled_caught:
                    raise ToolTimeout(f"tool {name!r} ran past its {limit} s deadline")
        except ToolError as raised:
            self._finish(registration, caller, started, raised)
            raise
        except Exception as raised:
            failure = ToolExecutionFailed(
                f"tool {name!r} failed: {type(raised).__name__}: {raised}"
            )
            self._finish(registration, caller, started, failure)
            raise failure from raised
        except BaseException:
            self._finish(registration, caller, started, None)
            raise
        finally:
            CURRENT_TOOL_CALL.reset(token)
            registration.in_flight -= 1
            STEP_STATE.last_tool = name
        self._finish(registration, caller, started, result=True)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result

    def _finish(
        self,
        registration: _Registration,
        caller: Hashable,
        started: float,
        error: BaseException | None = None,
        *,
        result: bool = False,
    ) -> None:
        duration = trio.current_time() - started
        name = registration.tool.name
        if result:
            registration.succeeded += 1
            registration.latency.record(duration)
            self._announce(name, caller, ToolOutcome.OK, duration, None)
            return
        if error is None:
            registration.cancelled += 1
            self._announce(name, caller, ToolOutcome.FAILED, duration, "cancelled by the caller")
            return
        outcome = ToolOutcome.FAILED
        for kind, kind_outcome in _OUTCOME_OF_TOOL_ERROR:
            if isinstance(error, kind):
                outcome = kind_outcome
                break
        if outcome is ToolOutcome.TIMEOUT:
            registration.timeouts += 1
            registration.latency.record(duration)
        elif outcome is ToolOutcome.DENIED:
            registration.denied += 1
        elif outcome is ToolOutcome.INVALID:
            registration.invalid += 1
        else:
            registration.failures += 1
            registration.latency.record(duration)
        self._announce(name, caller, outcome, duration, error)

    def _announce(
        self,
        tool: str,
        caller: Hashable,
        outcome: ToolOutcome,
        duration: float,
        error: BaseException | str | None,
    ) -> None:
        if self.events is None:
            return
        text: str | None
        if error is None or isinstance(error, str):
            text = error
        else:
            text = f"{type(error).__name__}: {error}"
        self.events.emit(
            ToolCalled(
                source=self.name,
                tool=tool,
                caller=str(caller),
                outcome=outcome,
                duration=duration,
                error=text,
            )
        )

    def statistics(self) -> ToolBusStatistics:
        """Per-tool and bus-wide counters (see :class:`ToolBusStatistics`)."""
        limiter = self._limiter.statistics()
        return ToolBusStatistics(
            tools={name: r.snapshot() for name, r in self._tools.items()},
            calls=self._calls,
            not_found=self._not_found,
            blocking_threads_in_use=limiter.borrowed_tokens,
            blocking_threads=int(limiter.total_tokens),
        )
