"""``runtime.thread_stack_size``: checked by starting a thread, not just by range.

``threading.stack_size(n)`` only refuses sizes below 32 KiB or beyond a C ``ssize_t``
(``ValueError`` / ``OverflowError``; macOS also wants a multiple of the page size).
A size it accepts may still make every later thread fail to start (``RuntimeError:
can't start new thread`` for 1 TiB on Linux), and that would surface far from the
configuration, inside a blocking tool call. So a size is accepted only if it lies in
``[MIN_THREAD_STACK, MAX_THREAD_STACK]`` *and* a probe thread really starts with it;
the previous process-wide size is restored right after (under a lock, and cached per
size so loading a config twice probes once).
"""

from __future__ import annotations

import functools
import threading
from typing import Final

from ._checks import Check, integer

MIN_THREAD_STACK: Final = 32 * 1024
"""The smallest size ``threading.stack_size`` accepts (bytes)."""

MAX_THREAD_STACK: Final = 1024**3
"""The largest size accepted (1 GiB): far above any real need (the default is 2 MiB);
larger sizes are address-space exhaustion waiting for ``blocking_threads`` threads."""

_PROBE_LOCK: Final = threading.Lock()
_IN_RANGE: Final = integer(minimum=MIN_THREAD_STACK, maximum=MAX_THREAD_STACK)


def _idle() -> None:
    """The probe thread's body: nothing."""


@functools.lru_cache(maxsize=64)
def thread_stack_problem(size: int) -> str | None:
    """Why this platform cannot start threads with ``size`` bytes of stack, or ``None``.

    Sets the process-wide stack size, starts and joins one thread, and restores the
    previous size whatever happened. Threads started by other code during that moment
    get ``size`` too, the size being validated, for their whole life.
    """
    with _PROBE_LOCK:
        try:
            previous = threading.stack_size(size)
        except (ValueError, OverflowError) as exc:
            return f"not accepted by threading.stack_size on this platform ({exc})"
        try:
            probe = threading.Thread(target=_idle, name="mister-smith-stack-probe", daemon=True)
            try:
                probe.start()
            except RuntimeError as exc:
                return f"a thread with that stack cannot start on this platform ({exc})"
            probe.join()
        finally:
            threading.stack_size(previous)
    return None


def _rule(value: object) -> str | None:
    reason = _IN_RANGE.reason(value)
    if reason is not None:
        return reason
    assert isinstance(value, int)
    return thread_stack_problem(value)


def thread_stack_size(*, optional: bool = False) -> Check:
    """A thread stack size in bytes that this platform can really start threads with."""
    if not optional:
        return Check(_rule)

    def rule(value: object) -> str | None:
        if value is None:
            return None
        reason = _rule(value)
        return None if reason is None else f"{reason} (or none)"

    return Check(rule)
