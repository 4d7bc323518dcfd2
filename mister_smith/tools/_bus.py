"""``ToolBus``: the registry, permission gate, validator, deadline and meter of tool calls."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import attrs
import trio
from trio import CancelScope
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled, current_clock

from ..actors import ActorRef
from ..async_patterns import HistogramSnapshot, LatencyHistogram
from ..errors import (
    InvalidGrant,
    InvalidToolInput,
    InvalidToolName,
    ToolApprovalDenied,
    ToolError,
    ToolExecutionFailed,
    ToolNotFound,
    ToolPermissionDenied,
    ToolTimeout,
)
from ..events import EventBus, ToolCalled, ToolOutcome
from ..types import Caller, CallerIdentity, IdentityAuthority, Role, ToolId
from ._approvals import ApprovalPolicy, Approvals
from ._context import CURRENT_TOOL_CALL, STEP_STATE, ToolCallContext
from ._permissions import (
    Grantee,
    PolicyName,
    ToolGrants,
    ToolPolicy,
    caller_label,
    check_policy,
    resolve_grantees,
    resolve_roles,
)
from ._schema import ToolSchema
from ._tool import Tool

if TYPE_CHECKING:
    from ..supervision import Supervisor
    from .mcp import McpServerConnection

logger = logging.getLogger("mister_smith.tools")


TOOL_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
"""Names a tool may be registered under: what model APIs accept as a tool name
(``^[a-zA-Z0-9_-]{1,64}$``), plus ``.``, which the model adapters send as ``_``."""


class DuplicateTool(ToolError, ValueError):
    """A tool with that name is already registered."""


def _check_retries(max_retries: int) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")


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
        policy: ``"deny"`` (granted callers and roles only) or ``"open"``.
        timeout: Its deadline in seconds when not overridden per call.
        idempotent: Running it twice has the effect of running it once (its
            ``idempotent`` attribute, or as registered): retried on transient errors,
            and re-run by a durable agent resuming a call its process died in.
    """

    name: str
    description: str
    input_schema: ToolSchema
    tool_id: ToolId
    policy: ToolPolicy
    timeout: float
    idempotent: bool = False

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
    retries: int = 0
    """Failed attempts run again (idempotent tools, transient errors)."""


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


TRANSIENT_TOOL_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
"""Errors worth retrying a call of an idempotent tool for, unless the tool says
otherwise with a ``retry_on`` attribute (e.g. its HTTP client's transport errors)."""

RETRY_BASE_DELAY = 0.1
"""Seconds before the first retry of a tool call; each further retry waits twice as
long (the wider design's light retry: 100 ms, x2)."""


@attrs.define(eq=False)
class _Registration:
    tool: Tool
    tool_id: ToolId
    grants: ToolGrants
    timeout: float
    idempotent: bool = False
    approval: bool = False
    """Every call waits for a person's approval (``register_tool(approval=True)``)."""
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_TOOL_ERRORS
    default_timeout: bool = False
    """Its deadline is the bus's ``default_timeout`` (and follows it when it changes)."""
    default_policy: bool = False
    """Its policy is the bus's default (and follows it when it changes)."""
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)
    retries: int = 0
    calls: int = 0
    succeeded: int = 0
    failures: int = 0
    timeouts: int = 0
    denied: int = 0
    invalid: int = 0
    cancelled: int = 0
    in_flight: int = 0
    last_context: ToolCallContext | None = None
    """The context of the last call, reused by the next call of the same caller for the
    same chain (a frozen record: sharing it is safe)."""

    def spec(self) -> ToolSpec:
        return ToolSpec(
            self.tool.name,
            self.tool.description,
            self.tool.input_schema,
            self.tool_id,
            self.grants.policy,
            self.timeout,
            self.idempotent,
        )

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
            self.retries,
        )


def _timed_out(tool: Tool, limit: float) -> ToolTimeout:
    return ToolTimeout(f"tool {tool.name!r} ran past its {limit} s deadline")


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

    Permissions deny by default. A caller presents a
    :class:`~mister_smith.types.CallerIdentity` minted by the bus's
    :attr:`identities` (actors get theirs as ``ctx.identity``); a tool with policy
    ``"deny"`` admits it only while it is live (not revoked, not a copy, not from
    another authority) and it, or one of the roles it was minted with, is granted the
    tool. A plain string caller is unauthenticated: only ``"open"`` tools admit it.
    Roles come from the identity alone, never from the call. A call made on behalf of
    others (``on_behalf_of``, e.g. an agent working on a task delegated through
    :class:`AgentTool`) is admitted only if every one of them may call the tool too, so
    delegation never widens what the original caller could do. Every refusal is a
    :class:`~mister_smith.ToolPermissionDenied` saying why, counted as ``denied`` and
    announced with outcome ``DENIED``.

    A tool registered with grants is ``"deny"`` whatever the bus's default, so grants
    apply under every policy; a grant that could never apply (to an open tool, to a
    plain name, to a revoked or foreign identity, to an unregistered role) is refused
    when it is made (:class:`~mister_smith.InvalidGrant`,
    :class:`~mister_smith.UnknownRole`). Grants to an identity are dropped when the
    authority revokes it. Deadlines: the per-call ``timeout``, else the tool's (given at
    registration or as its ``timeout`` attribute), else ``default_timeout``.

    Args:
        default_policy: Policy of tools registered without grants or their own policy
            (``ToolSettings.default_policy``): ``"deny"`` (default) or ``"open"``, which
            is logged as a warning when the bus is made; ``"restricted"`` is an alias of
            ``"deny"``.
        default_timeout: Deadline in seconds of calls (``ToolSettings.default_timeout``).
        blocking_threads: Threads blocking tools may use at once
            (``RuntimeSettings.blocking_threads``).
        events: Where ``ToolCalled`` events go (optional).
        name: Source name of the events.
        tracing: Opens a span around each call, given the tool and caller names
            (e.g. ``mister_smith.monitoring.tracer().tool_span``; the runtime wires it
            when OpenTelemetry is installed).
        identities: The authority whose identities the bus accepts (default: a new
            one; share the actor system's so its actors can call:
            ``ToolBus(identities=system.identities)``).
        max_retries: Times a failed call of an *idempotent* tool is tried again
            (``ToolSettings.max_retries``): only for a transient error (a
            ``ConnectionError`` or ``TimeoutError``, or the tool's own ``retry_on``
            classes), after 0.1 s, 0.2 s, ..., and only within the call's deadline,
            which covers every attempt. A tool is idempotent when it says so (an
            ``idempotent = True`` attribute, as the read-only built-ins do) or is
            registered with ``idempotent=True``; anything else (a write, a command) is
            never run twice by the bus.
        approvals: Where calls needing a person's approval wait (default: a new
            :class:`Approvals`; ``runtime.approvals`` is the runtime bus's).
        approval_policy: Decides, per call, whether a call needs approval besides the
            tools registered with ``approval=True`` (``(tool, caller, args) -> bool``).
            A call needing approval waits, after the permission and argument checks
            and before its deadline starts, until approved; a denial (or no decision
            within ``approvals.timeout``) is a
            :class:`~mister_smith.errors.ToolApprovalDenied` (counted as denied).
    """

    def __init__(
        self,
        *,
        default_policy: PolicyName = "deny",
        default_timeout: float = 30.0,
        blocking_threads: int = 512,
        events: EventBus | None = None,
        name: str = "tool_bus",
        tracing: Callable[[str, str], AbstractContextManager[object]] | None = None,
        identities: IdentityAuthority | None = None,
        max_retries: int = 0,
        approvals: Approvals | None = None,
        approval_policy: ApprovalPolicy | None = None,
    ) -> None:
        self._default_policy = check_policy(default_policy)
        _check_timeout(default_timeout, "default_timeout")
        if blocking_threads < 1:
            raise ValueError(f"blocking_threads must be >= 1, got {blocking_threads!r}")
        _check_retries(max_retries)
        self.default_timeout = default_timeout
        self.max_retries = max_retries
        self.events = events
        self.name = name
        self.tracing = tracing
        self.identities = IdentityAuthority() if identities is None else identities
        self.identities.add_revocation_listener(self._forget_identity)
        self.approvals = Approvals(events=events) if approvals is None else approvals
        self.approval_policy = approval_policy
        self._limiter = trio.CapacityLimiter(blocking_threads)
        self._tools: dict[str, _Registration] = {}
        # Calls over all tools are counted per tool; these hold the calls that no
        # registered tool counts: to tools since unregistered or replaced, and to none.
        self._retired_calls = 0
        self._not_found = 0
        if self._default_policy == "open":
            logger.warning(
                "tool bus %r: default_policy is 'open': every caller, an unauthenticated "
                "plain name included, may call every tool registered without grants; "
                "use 'deny' (the default) and grant tools to identities and roles",
                name,
            )

    @property
    def default_policy(self) -> ToolPolicy:
        """The policy tools registered without grants or a policy of their own get."""
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
        policy: PolicyName | None = None,
        timeout: float | None = None,
        callers: Iterable[Grantee] = (),
        roles: Iterable[Role | str] = (),
        idempotent: bool | None = None,
        approval: bool | None = None,
    ) -> ToolSpec:
        """Register ``tool`` under its name and return its :class:`ToolSpec`.

        Args:
            tool: The tool.
            policy: ``"deny"`` or ``"open"`` (default: ``"deny"`` when grants are given,
                else the bus's default policy).
            timeout: Its deadline in seconds (default: its ``timeout`` attribute, else
                the bus's ``default_timeout``).
            callers: Identities (or live actors, by ref) granted it at once.
            roles: Roles (registered names or :class:`~mister_smith.types.Role` s)
                granted it at once.
            idempotent: Whether running it twice does no harm, so a transient failure
                may be retried (default: its ``idempotent`` attribute, else ``False``).
            approval: Whether each call waits for a person's approval (default: its
                ``approval`` attribute, else ``False``).

        Raises:
            DuplicateTool: a tool of that name is registered (a ``ValueError``).
            InvalidToolName: a name models cannot call (``^[a-zA-Z0-9_.-]{1,64}$``).
            InvalidGrant: grants with ``policy="open"``, or a grant that cannot apply.
            UnknownRole: a role the bus's authority never registered.
            TypeError: ``tool`` does not implement the :class:`Tool` protocol.
        """
        if not isinstance(tool, Tool):
            raise TypeError(f"{tool!r} does not implement the Tool protocol")
        if not isinstance(tool.input_schema, ToolSchema):
            raise TypeError(f"tool {tool.name!r}: input_schema must be a ToolSchema")
        if not isinstance(tool.name, str) or not TOOL_NAME.match(tool.name):
            raise InvalidToolName(
                f"tool name {tool.name!r:.80} must match {TOOL_NAME.pattern}: model APIs "
                "take only letters, digits, '_' and '-' (a '.' is sent as '_')"
            )
        if tool.name in self._tools:
            raise DuplicateTool(f"a tool named {tool.name!r} is already registered")
        own_timeout = getattr(tool, "timeout", None)
        _check_timeout(timeout, "timeout")
        _check_timeout(own_timeout, f"tool {tool.name!r} timeout")
        granted = resolve_grantees(self.identities, callers, tool.name)
        granted_roles = resolve_roles(self.identities, roles, tool.name)
        if policy is not None:
            chosen = check_policy(policy)
        else:
            chosen = "deny" if granted or granted_roles else self._default_policy
        if chosen == "open" and (granted or granted_roles):
            raise InvalidGrant(
                f"tool {tool.name!r}: grants cannot apply to an open tool (every caller may "
                "call it); register it with policy 'deny' (the default when granting)"
            )
        retry_on = getattr(tool, "retry_on", None)
        registration = _Registration(
            tool=tool,
            tool_id=ToolId.new(),
            grants=ToolGrants(chosen, granted, granted_roles),
            timeout=timeout or own_timeout or self.default_timeout,
            idempotent=bool(
                getattr(tool, "idempotent", False) if idempotent is None else idempotent
            ),
            retry_on=TRANSIENT_TOOL_ERRORS if retry_on is None else tuple(retry_on),
            approval=bool(getattr(tool, "approval", False) if approval is None else approval),
            default_timeout=not timeout and not own_timeout,
            default_policy=policy is None and not granted and not granted_roles,
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
        self._retired_calls += registration.calls
        return registration.tool

    def replace_tool(self, tool: Tool) -> Tool:
        """Put ``tool`` in place of the tool registered under its name; return the old one.

        How it was registered is kept: the policy, the grants, the deadline, whether it
        is idempotent (so retried on a transient failure) and on which errors, and
        whether calls need approval (e.g. to wrap a tool in a fault-injecting gate
        without registering it anew); as a different tool it gets a new id and counters
        that start at zero.

        Raises:
            ToolNotFound: no tool of that name is registered.
            TypeError: ``tool`` does not implement the :class:`Tool` protocol.
        """
        if not isinstance(tool, Tool) or not isinstance(tool.input_schema, ToolSchema):
            raise TypeError(f"{tool!r} does not implement the Tool protocol")
        old = self._lookup(tool.name)
        self._retired_calls += old.calls
        self._tools[tool.name] = _Registration(
            tool=tool,
            tool_id=ToolId.new(),
            grants=old.grants,
            timeout=old.timeout,
            idempotent=old.idempotent,
            approval=old.approval,
            retry_on=old.retry_on,
            default_timeout=old.default_timeout,
            default_policy=old.default_policy,
        )
        return old.tool

    async def register_mcp_server(
        self, name: str, *, supervisor: Supervisor, **options: Any
    ) -> McpServerConnection:
        """Connect the MCP server ``name`` and register its tools here as ``<name>.<tool>``.

        The same as :func:`mister_smith.tools.mcp.register_mcp_server` with this bus (see
        there for ``stdio=``, ``url=``, grants and options); needs the ``mcp`` extra.

        Raises:
            ImportError: the ``mcp`` extra is not installed.
        """
        try:
            from .mcp import register_mcp_server
        except ImportError as error:
            raise ImportError(
                "MCP support needs the mcp extra: pip install 'mister-smith[mcp]'"
            ) from error
        return await register_mcp_server(self, name, supervisor=supervisor, **options)

    def get_tool(self, name: str) -> Tool:
        """The tool registered as ``name``.

        Raises:
            ToolNotFound: no such tool.
        """
        return self._lookup(name).tool

    def list_tools(self) -> list[ToolSpec]:
        """Every registered tool, in registration order."""
        return [registration.spec() for registration in self._tools.values()]

    def list_available_tools(
        self, caller: Caller, *, on_behalf_of: Sequence[Caller] = ()
    ) -> list[ToolSpec]:
        """The tools ``caller`` (acting for ``on_behalf_of``) may call."""
        chain = tuple(on_behalf_of)
        return [r.spec() for r in self._tools.values() if self._refusal(r, caller, chain) is None]

    def is_allowed(self, caller: Caller, name: str, *, on_behalf_of: Sequence[Caller] = ()) -> bool:
        """Whether ``caller`` (acting for ``on_behalf_of``) may call ``name``.

        Raises:
            ToolNotFound: no such tool.
        """
        return self._refusal(self._lookup(name), caller, tuple(on_behalf_of)) is None

    def _refusal(
        self, registration: _Registration, caller: object, on_behalf_of: tuple[object, ...]
    ) -> str | None:
        grants = registration.grants
        if grants.policy == "open":
            return None
        reason = grants.refusal(caller, self.identities)
        if reason is not None:
            return reason
        for principal in on_behalf_of:
            reason = grants.refusal(principal, self.identities)
            if reason is not None:
                return f"acting for {principal}: {reason}"
        return None

    # -- permissions --------------------------------------------------------------------

    def set_policy(self, name: str, policy: PolicyName) -> None:
        """Make tool ``name`` ``"deny"`` or ``"open"``.

        Raises:
            ToolNotFound: no such tool.
            InvalidGrant: opening a tool that has grants (revoke them first: an open
                tool would make them meaningless).
        """
        grants = self._lookup(name).grants
        chosen = check_policy(policy)
        if chosen == "open" and not grants.empty:
            raise InvalidGrant(
                f"tool {name!r} has grants; revoke them before opening it to every caller"
            )
        grants.policy = chosen

    def grant(
        self, name: str, *, callers: Iterable[Grantee] = (), roles: Iterable[Role | str] = ()
    ) -> None:
        """Let ``callers`` and holders of ``roles`` call the deny-policy tool ``name``.

        Args:
            name: The tool.
            callers: Live identities, or live actors by ref (granted their identity, so
                a later actor of the same name gets nothing).
            roles: Registered role names or :class:`~mister_smith.types.Role` s.

        Raises:
            ToolNotFound: no such tool.
            InvalidGrant: the tool is open, or a caller is a plain name, a revoked,
                forged or foreign identity, or a stopped actor.
            UnknownRole: a role the bus's authority never registered.
        """
        registration = self._lookup(name)
        granted = resolve_grantees(self.identities, callers, name)
        granted_roles = resolve_roles(self.identities, roles, name)
        if registration.grants.policy == "open" and (granted or granted_roles):
            raise InvalidGrant(
                f"tool {name!r} is open: every caller may already call it, so a grant "
                f"could never apply; set_policy({name!r}, 'deny') first"
            )
        registration.grants.callers.update(granted)
        registration.grants.roles.update(granted_roles)

    def revoke(
        self, name: str, *, callers: Iterable[Grantee] = (), roles: Iterable[Role | str] = ()
    ) -> None:
        """Withdraw grants of tool ``name`` (grants it does not have are ignored).

        Raises:
            ToolNotFound: no such tool.
            InvalidGrant: a caller is a plain name (names are never granted).
        """
        grants = self._lookup(name).grants
        for caller in callers:
            if isinstance(caller, ActorRef):
                identity = self.identities.identity_of_actor(caller.actor_id)
                if identity is not None:
                    grants.callers.discard(identity)
            elif isinstance(caller, CallerIdentity):
                grants.callers.discard(caller)
            else:
                raise InvalidGrant(
                    f"tool {name!r}: grants are by identity, not by name; {caller!r} "
                    "was never granted"
                )
        grants.roles.difference_update(str(role) for role in roles)

    def _forget_identity(self, identity: CallerIdentity) -> None:
        """Drop the grants of an identity its authority revoked (told by the authority)."""
        for registration in self._tools.values():
            registration.grants.callers.discard(identity)

    def _lookup(self, name: str) -> _Registration:
        registration = self._tools.get(name)
        if registration is None:
            raise ToolNotFound(f"no tool named {name!r} is registered")
        return registration

    # -- calling ------------------------------------------------------------------------

    async def call(
        self,
        caller: Caller,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        on_behalf_of: Sequence[Caller] = (),
        timeout: float | None = None,
    ) -> object:
        """Call tool ``name`` for ``caller`` with ``args`` and return its result.

        Args:
            caller: Who calls: a :class:`~mister_smith.types.CallerIdentity` (its own
                grants and the roles it was minted with count), or a plain name
                (unauthenticated: admitted by open tools only).
            name: The tool's name.
            args: Its arguments (JSON-like; ``None`` means ``{}``).
            on_behalf_of: Who ``caller`` acts for, outermost first (e.g. the agent that
                delegated the task); each must be admitted too.
            timeout: Deadline in seconds for this call (``math.inf``: none).

        Raises:
            ToolNotFound: no such tool.
            ToolPermissionDenied: ``caller`` (or someone it acts for) may not call it.
            InvalidToolInput: ``args`` do not match its schema (names each field).
            ToolTimeout: it ran past its deadline and was cancelled (or abandoned).
            ToolExecutionFailed: it raised; the exception is ``__cause__``.
        """
        # The fast path below is the whole cost of a call beyond the tool itself, so it
        # is written out flat: no helper coroutines (each is a frame and an await), one
        # cancel scope (the deadline), the call's context reused from the last call by
        # the same caller, and the ToolCalled record only built when an event bus is
        # attached. The closing schedule point is the one cost the raw baseline does
        # not pay (see the class docstring).
        await checkpoint_if_cancelled()
        if timeout is not None:
            _check_timeout(timeout, "timeout")
        # trio.current_time() is three calls deep; the clock's own method is one.
        clock = current_clock()
        started = clock.current_time()
        if args is None:
            args = {}
        chain = on_behalf_of if type(on_behalf_of) is tuple else tuple(on_behalf_of)
        registration = self._tools.get(name)
        if registration is None:
            self._not_found += 1
            error: ToolError = ToolNotFound(f"no tool named {name!r} is registered")
            self._announce(name, caller_label(caller, chain), ToolOutcome.NOT_FOUND, 0.0, error)
            raise error
        registration.calls += 1
        context = registration.last_context
        if context is None or context.principal is not caller or context.on_behalf_of != chain:
            # A frozen record: calls by the same caller (acting for the same chain) can
            # share it, which spares building it and the caller's label every call.
            context = registration.last_context = ToolCallContext(
                name,
                caller_label(caller, chain),
                self._limiter,
                principal=caller,
                on_behalf_of=chain,
            )
        who = context.caller
        grants = registration.grants
        # The common admission, an open tool or a live identity granted it by name and
        # acting for no one, is decided here; roles, chains and refusals take _refusal.
        if grants.policy == "open" or (
            not chain
            and isinstance(caller, CallerIdentity)  # anything else may not even hash
            and caller in grants.callers
            and self.identities.live_roles(caller) is not None
        ):
            refusal = None
        else:
            refusal = self._refusal(registration, caller, chain)
        if refusal is not None:
            registration.denied += 1
            error = ToolPermissionDenied(f"{who} may not call tool {name!r}: {refusal}")
            self._announce(name, who, ToolOutcome.DENIED, 0.0, error)
            raise error
        tool = registration.tool
        schema = tool.input_schema
        if not schema.accepts(args):
            registration.invalid += 1
            error = InvalidToolInput(
                f"tool {name!r}: invalid arguments: " + "; ".join(map(str, schema.violations(args)))
            )
            self._announce(name, who, ToolOutcome.INVALID, 0.0, error)
            raise error
        # The deadline runs from the call's start (no schedule point lies between, so
        # no time passes on a virtual clock), or from the approval when one was awaited.
        opened = started
        if registration.approval or (
            self.approval_policy is not None and self.approval_policy(name, who, args)
        ):
            outcome = await self.approvals.request(name, who, args)
            if not outcome.approved:
                registration.denied += 1
                error = ToolApprovalDenied(
                    f"{who} may not call tool {name!r}: approval {outcome.verdict.value}"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
                self._announce(name, who, ToolOutcome.DENIED, 0.0, error)
                raise error
            opened = clock.current_time()
        limit = registration.timeout if timeout is None else timeout
        registration.in_flight += 1
        token = CURRENT_TOOL_CALL.set(context)
        try:
            if self.tracing is None:
                # _run written out for the untraced call, by far the usual one: it spares
                # a coroutine per call (a traced call keeps _run, its span around it).
                retrying: Exception | None = None
                # An absolute deadline from the time already read: a relative one makes
                # the scope read the clock twice more on entry.
                with CancelScope(deadline=opened + limit) as deadline:
                    try:
                        result = await tool.execute(args)
                    except Exception as exc:
                        if not self._retryable(registration, exc, 0):
                            raise
                        retrying = exc
                    if retrying is not None:
                        result = await self._retry(registration, tool, args, retrying)
                if deadline.cancelled_caught:
                    raise _timed_out(tool, limit)
            else:
                with self.tracing(name, who):
                    result = await self._run(registration, tool, args, limit)
        except ToolError as raised:
            self._finish(registration, who, started, raised)
            raise
        except Exception as raised:
            failure = ToolExecutionFailed(
                f"tool {name!r} failed: {type(raised).__name__}: {raised}"
            )
            self._finish(registration, who, started, failure)
            raise failure from raised
        except BaseException:
            self._finish(registration, who, started, None)
            raise
        finally:
            CURRENT_TOOL_CALL.reset(token)
            registration.in_flight -= 1
            STEP_STATE.last_tool = name
        registration.succeeded += 1
        duration = clock.current_time() - started
        registration.latency.record(duration)
        if self.events is not None:
            self._announce(name, who, ToolOutcome.OK, duration, None)
        await cancel_shielded_checkpoint()
        return result

    async def _run(
        self, registration: _Registration, tool: Tool, args: Mapping[str, Any], limit: float
    ) -> object:
        """Run the tool within its deadline of ``limit`` seconds (``math.inf``: none).

        A transient failure of an idempotent tool is retried inside the same deadline
        (see :meth:`_retry`). A traced call runs this inside its span; an untraced call
        runs the same steps written out in :meth:`call` (keep the two in step; the
        tests run both).
        """
        # A bare CancelScope is what move_on_after builds, less its argument checks
        # (``limit`` was checked when it was set: > 0, not NaN).
        with trio.CancelScope(relative_deadline=limit):
            try:
                return await tool.execute(args)
            except Exception as exc:
                if not self._retryable(registration, exc, 0):
                    raise
                failed = exc
            # Outside the handler, so a later attempt's error does not chain to this one.
            return await self._retry(registration, tool, args, failed)
        raise _timed_out(tool, limit)

    def _retryable(self, registration: _Registration, exc: Exception, attempt: int) -> bool:
        """Whether the failed attempt number ``attempt`` (from 0) may be run again."""
        return (
            attempt < self.max_retries
            and registration.idempotent
            and not isinstance(exc, ToolError)
            and isinstance(exc, registration.retry_on)
        )

    async def _retry(
        self, registration: _Registration, tool: Tool, args: Mapping[str, Any], exc: Exception
    ) -> object:
        """Run a transiently failed idempotent tool again, up to ``max_retries`` times
        after 0.1 s, 0.2 s, ... (the caller's deadline scope covers every attempt)."""
        attempt = 0
        while True:
            attempt += 1
            registration.retries += 1
            logger.info(
                "tool %s: transient %s, retry %d of %d",
                tool.name,
                type(exc).__name__,
                attempt,
                self.max_retries,
            )
            await trio.sleep(RETRY_BASE_DELAY * 2 ** (attempt - 1))
            try:
                return await tool.execute(args)
            except Exception as again:
                if not self._retryable(registration, again, attempt):
                    raise
                failed = again
            exc = failed

    def reconfigure(
        self,
        *,
        default_timeout: float | None = None,
        default_policy: PolicyName | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Change the bus's defaults while it runs.

        Tools registered without a deadline of their own follow the new
        ``default_timeout``; tools registered without a policy or grants follow the new
        ``default_policy`` (switching to ``"open"`` is logged loudly); ``max_retries``
        applies to calls from now on.
        """
        if default_timeout is not None:
            _check_timeout(default_timeout, "default_timeout")
        policy = None if default_policy is None else check_policy(default_policy)
        if max_retries is not None:
            _check_retries(max_retries)
        if default_timeout is not None:
            self.default_timeout = default_timeout
            for registration in self._tools.values():
                if registration.default_timeout:
                    registration.timeout = default_timeout
        if policy is not None and policy != self._default_policy:
            self._default_policy = policy
            if policy == "open":
                logger.warning(
                    "tool bus %r: default_policy is now 'open': tools registered without "
                    "grants may be called by anyone",
                    self.name,
                )
            for registration in self._tools.values():
                if registration.default_policy and registration.grants.empty:
                    registration.grants.policy = policy
        if max_retries is not None:
            self.max_retries = max_retries

    def _finish(
        self,
        registration: _Registration,
        caller: str,
        started: float,
        error: BaseException | None,
    ) -> None:
        """Count and announce a call that ran the tool and did not return (``error``
        ``None``: cancelled from outside); the success path is written out in
        :meth:`call`."""
        duration = trio.current_time() - started
        name = registration.tool.name
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
        caller: str,
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
        registrations = self._tools.values()
        return ToolBusStatistics(
            tools={name: r.snapshot() for name, r in self._tools.items()},
            calls=self._retired_calls + self._not_found + sum(r.calls for r in registrations),
            not_found=self._not_found,
            blocking_threads_in_use=limiter.borrowed_tokens,
            blocking_threads=int(limiter.total_tokens),
        )
