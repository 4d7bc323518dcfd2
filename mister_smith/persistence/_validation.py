"""Argument checks shared by every store: bad input is refused before anything queues.

Each check raises :class:`~mister_smith.errors.InvalidStoreRequest` naming the argument,
or :class:`~mister_smith.errors.RecordTooLarge`, and returns the value when it is fine.
"""

from __future__ import annotations

import math
import re
from typing import Final

from ..errors import InvalidStoreRequest, RecordTooLarge
from ._store import MAX_READ_LIMIT

MAX_NAME_LENGTH: Final = 256
"""Longest mailbox name, checkpoint key, journal stream or message id, in characters."""

MAX_REASON_LENGTH: Final = 4096
"""Characters of a dead letter's reason kept; a longer reason is cut (and marked)."""

MAX_SEQ: Final = (1 << 63) - 1
"""Largest sequence number (SQLite's integer range)."""

_NAME: Final = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_NAME_LENGTH}}}")


def check_name(value: object, what: str) -> str:
    """A mailbox name, checkpoint key, journal stream or message id."""
    if type(value) is not str:
        raise InvalidStoreRequest(f"{what} must be a string, got {type(value).__name__}")
    if _NAME.fullmatch(value) is None:
        raise InvalidStoreRequest(
            f"{what} must be 1-{MAX_NAME_LENGTH} characters without control characters,"
            f" got {value[:40]!r}{'...' if len(value) > 40 else ''}"
        )
    return value


def check_prefix(value: object) -> str:
    """A key prefix: like a name, but may be empty."""
    if value == "":
        return ""
    return check_name(value, "prefix")


def check_payload(value: object, what: str, max_bytes: int) -> bytes:
    """Bytes of at most ``max_bytes``."""
    if type(value) is not bytes:
        raise InvalidStoreRequest(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) > max_bytes:
        raise RecordTooLarge(f"{what} is {len(value)} bytes; at most {max_bytes} are accepted")
    return value


def check_seq(value: object, what: str = "seq") -> int:
    """A sequence number: an ``int`` (not a ``bool``) in [1, 2**63 - 1]."""
    if type(value) is not int or not 1 <= value <= MAX_SEQ:
        raise InvalidStoreRequest(f"{what} must be an integer in [1, {MAX_SEQ}], got {value!r}")
    return value


def check_after(value: object) -> int:
    """A read cursor: an ``int`` in [0, 2**63 - 1]."""
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise InvalidStoreRequest(f"after must be an integer in [0, {MAX_SEQ}], got {value!r}")
    return value


def check_limit(value: object) -> int:
    """How many records one read returns: an ``int`` in [1, MAX_READ_LIMIT]."""
    if type(value) is not int or not 1 <= value <= MAX_READ_LIMIT:
        raise InvalidStoreRequest(
            f"limit must be an integer in [1, {MAX_READ_LIMIT}], got {value!r}"
        )
    return value


def check_version(value: object) -> int | None:
    """An expected checkpoint version: ``None`` or an ``int`` >= 0."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise InvalidStoreRequest(
            f"expected_version must be None or an integer in [0, {MAX_SEQ}], got {value!r}"
        )
    return value


def check_since(value: object) -> float | None:
    """A point in store time: ``None`` or a finite number of seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidStoreRequest(f"since must be None or a number, got {value!r}")
    try:
        since = float(value)
    except OverflowError:
        since = math.inf
    if not math.isfinite(since):
        raise InvalidStoreRequest(f"since must be a finite number, got {value!r}")
    return since


def check_reason(value: object) -> str:
    """A dead letter's reason: a string, cut to :data:`MAX_REASON_LENGTH` characters."""
    if type(value) is not str:
        raise InvalidStoreRequest(f"reason must be a string, got {type(value).__name__}")
    if len(value) > MAX_REASON_LENGTH:
        return value[: MAX_REASON_LENGTH - 14] + " ...(cut)"
    return value


def check_entries(value: object, max_bytes: int, *, what: str = "entries") -> list[bytes]:
    """Journal entries or payloads: a list of at most MAX_READ_LIMIT byte strings."""
    if not isinstance(value, list | tuple):
        raise InvalidStoreRequest(f"{what} must be a list of bytes, got {type(value).__name__}")
    if len(value) > MAX_READ_LIMIT:
        raise InvalidStoreRequest(f"at most {MAX_READ_LIMIT} {what} per call, got {len(value)}")
    return [check_payload(entry, f"{what}[{i}]", max_bytes) for i, entry in enumerate(value)]


def check_ids(value: object, count: int) -> list[str | None]:
    """Message ids for ``count`` payloads: ``None`` (no ids) or a list of that length."""
    if value is None:
        return [None] * count
    if not isinstance(value, list | tuple):
        raise InvalidStoreRequest(f"message_ids must be None or a list, got {type(value).__name__}")
    if len(value) != count:
        raise InvalidStoreRequest(
            f"message_ids has {len(value)} ids for {count} payloads; give one per payload"
        )
    return [
        None if item is None else check_name(item, f"message_ids[{i}]")
        for i, item in enumerate(value)
    ]
