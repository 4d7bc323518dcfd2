"""How failures cross the wire: an error reply carries a code, the caller raises the
matching local type (so code written against a local ``ActorRef`` handles a remote one
the same way)."""

from __future__ import annotations

from typing import Any

from ..errors import (
    ActorCrashed,
    ActorNotFound,
    ActorStopped,
    AskTimeout,
    HandlingInterrupted,
    MailboxFull,
    MessageRejected,
)
from ._errors import EnvelopeError, PayloadTooLarge, RemoteError, UnknownMessageType

_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (ActorCrashed, "crashed"),
    (ActorStopped, "stopped"),
    (AskTimeout, "timeout"),
    (ActorNotFound, "not_found"),
    (MailboxFull, "mailbox_full"),
    (HandlingInterrupted, "interrupted"),
    (MessageRejected, "rejected"),
    (UnknownMessageType, "unknown_type"),
    (PayloadTooLarge, "too_large"),
    (EnvelopeError, "bad_envelope"),
)
_ERRORS: dict[str, type[Exception]] = {
    "crashed": ActorCrashed,
    "stopped": ActorStopped,
    "timeout": AskTimeout,
    "not_found": ActorNotFound,
    "mailbox_full": MailboxFull,
    "interrupted": HandlingInterrupted,
    "rejected": MessageRejected,
    "unknown_type": UnknownMessageType,
    "too_large": PayloadTooLarge,
    "bad_envelope": EnvelopeError,
}


def failure_body(error: BaseException) -> dict[str, str]:
    """The body of an error reply for ``error`` (a code and a one-line text; the cause's
    text is appended, never its traceback)."""
    code = "remote"
    for cls, name in _CODES:
        if isinstance(error, cls):
            code = name
            break
    text = str(error)
    cause = error.__cause__
    if cause is not None:
        text = f"{text}: {type(cause).__name__}: {cause}"
    return {"code": code, "message": text[:2000]}


def failure_error(body: Any, target: str) -> Exception:
    """The local exception an error reply from ``target`` stands for."""
    if not isinstance(body, dict):
        return RemoteError(f"actor {target!r} answered with a malformed error")
    code, text = body.get("code"), body.get("message")
    if not isinstance(code, str) or not isinstance(text, str):
        return RemoteError(f"actor {target!r} answered with a malformed error")
    cls = _ERRORS.get(code)
    if cls is None:
        return RemoteError(f"remote actor {target!r} failed: {text}")
    return cls(f"remote: {text}")
