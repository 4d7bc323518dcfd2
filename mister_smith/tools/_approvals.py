"""Human approval of tool calls: a call of a tool that needs it waits, bounded, until a
person approves or denies it (through the API, a CLI prompt or the monitoring HTTP
endpoint); no decision in time counts as a denial.

:class:`Approvals` keeps the pending requests (listed by :meth:`Approvals.pending`),
wakes the waiting call when a decision arrives, and announces both on the event bus
(:class:`ApprovalRequested`, :class:`ApprovalDecided`).
"""

from __future__ import annotations

import enum
import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from ..errors import ToolError
from ..events import Event, EventBus

DEFAULT_APPROVAL_TIMEOUT = 300.0
"""Seconds a call waits for a decision by default before it is denied."""

MAX_PENDING = 1000
"""Most approvals pending at once; further requests are denied at once."""

MAX_SHOWN_ARGUMENTS = 2000
"""Characters of a call's arguments kept in a request (what a person is shown)."""


class ApprovalNotFound(ToolError, LookupError):
    """No pending approval has that id (never requested, or already decided)."""


class Verdict(enum.Enum):
    """How an approval request ended."""

    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"


@attrs.frozen
class ApprovalRequest:
    """A tool call waiting for a person's decision.

    Attributes:
        id: Names it in :meth:`Approvals.approve` / :meth:`Approvals.deny`.
        tool: The tool.
        caller: Who calls it (and for whom).
        arguments: Its arguments as JSON text (cut at ``MAX_SHOWN_ARGUMENTS``).
        requested_at: Trio clock time of the request.
        deadline: When it is denied if nobody decides.
    """

    id: str
    tool: str
    caller: str
    arguments: str
    requested_at: float
    deadline: float

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-ready data (for the HTTP endpoint)."""
        return attrs.asdict(self)


@attrs.frozen
class ApprovalOutcome:
    """What came of a request: the verdict, who decided and why."""

    verdict: Verdict
    by: str = ""
    reason: str = ""

    @property
    def approved(self) -> bool:
        """Whether the call may run."""
        return self.verdict is Verdict.APPROVED


@attrs.frozen(kw_only=True)
class ApprovalRequested(Event):
    """A tool call is waiting for approval."""

    request: ApprovalRequest


@attrs.frozen(kw_only=True)
class ApprovalDecided(Event):
    """An approval request was decided (or timed out)."""

    request: ApprovalRequest
    outcome: ApprovalOutcome


@attrs.define(eq=False)
class _Pending:
    request: ApprovalRequest
    decided: trio.Event = attrs.field(factory=trio.Event)
    outcome: ApprovalOutcome | None = None


ApprovalPolicy = Callable[[str, str, Mapping[str, Any]], bool]
"""Decides whether a call needs approval: ``(tool, caller, arguments) -> bool``."""


class Approvals:
    """The pending approvals of one tool bus (``runtime.approvals``).

    Args:
        timeout: Seconds a call waits for a decision before it is denied.
        events: Where requests and decisions are announced.
        token: The bearer token the HTTP endpoint requires (default: a random one,
            see the ``token`` attribute).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_APPROVAL_TIMEOUT,
        events: EventBus | None = None,
        token: str | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"approval timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = timeout
        self.events = events
        self.token = token or secrets.token_urlsafe(24)
        self._pending: dict[str, _Pending] = {}
        self._numbers = itertools.count(1)
        self._arrived = trio.Event()

    def pending(self) -> list[ApprovalRequest]:
        """The requests waiting for a decision, oldest first."""
        return [entry.request for entry in self._pending.values()]

    async def request(
        self, tool: str, caller: str, arguments: Mapping[str, Any], *, timeout: float | None = None
    ) -> ApprovalOutcome:
        """Wait for a decision on a call of ``tool`` by ``caller``; deny it when none
        comes within ``timeout`` (default: the ``timeout`` attribute) or too many are pending.
        Cancelling the wait withdraws the request."""
        now = trio.current_time()
        limit = self.timeout if timeout is None else timeout
        shown = json.dumps(arguments, sort_keys=True, default=str)[:MAX_SHOWN_ARGUMENTS]
        request = ApprovalRequest(
            f"approval-{next(self._numbers)}", tool, caller, shown, now, now + limit
        )
        if len(self._pending) >= MAX_PENDING:
            await trio.lowlevel.checkpoint()
            outcome = ApprovalOutcome(Verdict.DENIED, "approvals", "too many pending approvals")
            self._announce_decision(request, outcome)
            return outcome
        entry = self._pending[request.id] = _Pending(request)
        if self.events is not None:
            self.events.emit(ApprovalRequested(source="approvals", request=request))
        self._arrived.set()
        self._arrived = trio.Event()
        try:
            with trio.move_on_at(request.deadline):
                await entry.decided.wait()
        finally:
            self._pending.pop(request.id, None)
        if entry.outcome is None:
            entry.outcome = ApprovalOutcome(
                Verdict.TIMED_OUT, "approvals", f"no decision within {limit:g} s"
            )
            self._announce_decision(request, entry.outcome)
        return entry.outcome

    def approve(self, request_id: str, *, by: str = "", reason: str = "") -> ApprovalRequest:
        """Let the call ``request_id`` run.

        Raises:
            ApprovalNotFound: no pending request has that id.
        """
        return self._decide(request_id, ApprovalOutcome(Verdict.APPROVED, by, reason))

    def deny(self, request_id: str, *, by: str = "", reason: str = "") -> ApprovalRequest:
        """Refuse the call ``request_id`` (the caller gets ``ToolApprovalDenied``).

        Raises:
            ApprovalNotFound: no pending request has that id.
        """
        return self._decide(request_id, ApprovalOutcome(Verdict.DENIED, by, reason))

    def _decide(self, request_id: str, outcome: ApprovalOutcome) -> ApprovalRequest:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            raise ApprovalNotFound(f"no pending approval {request_id!r:.80}")
        entry.outcome = outcome
        entry.decided.set()
        self._announce_decision(entry.request, outcome)
        return entry.request

    def _announce_decision(self, request: ApprovalRequest, outcome: ApprovalOutcome) -> None:
        if self.events is not None:
            self.events.emit(ApprovalDecided(source="approvals", request=request, outcome=outcome))

    async def wait_for_request(self) -> ApprovalRequest:
        """The oldest pending request, waiting for one if there is none (for prompts)."""
        while not self._pending:
            await self._arrived.wait()
        await trio.lowlevel.checkpoint()
        return next(iter(self._pending.values())).request
