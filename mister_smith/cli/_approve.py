"""The approval prompt of ``mister-smith run``: a tool call waiting for approval is
shown, and the operator's answer (``y`` approves, anything else denies) decides it."""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..tools import ApprovalNotFound, Approvals
from ._display import Display

LineReader = Callable[[str], str]
"""Shows a question and returns the answer line (``input``); it blocks, so it runs in a
worker thread."""


async def prompt_approvals(approvals: Approvals, display: Display, read_line: LineReader) -> None:
    """Ask about each pending approval in turn, until cancelled. A request that timed
    out (or was decided elsewhere) while the question was open is reported as such."""
    while True:
        request = await approvals.wait_for_request()
        display.line(
            f"approval needed: {request.tool} for {request.caller} with {request.arguments[:300]}"
        )
        answer = await trio.to_thread.run_sync(
            read_line, f"approve {request.id}? [y/N] ", abandon_on_cancel=True
        )
        approved = answer.strip().lower() in ("y", "yes")
        try:
            if approved:
                approvals.approve(request.id, by="cli")
            else:
                approvals.deny(request.id, by="cli", reason="denied at the prompt")
        except ApprovalNotFound:
            display.line(f"{request.id} was already decided (or timed out)")
            continue
        display.line(f"{request.id} {'approved' if approved else 'denied'}")
