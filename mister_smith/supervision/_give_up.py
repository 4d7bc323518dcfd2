"""How a supervisor that gave up surfaces: its failure, not its nursery's group."""

from __future__ import annotations

import trio

from ..errors import SupervisionError


def raise_give_up(
    failure: SupervisionError | None, group: BaseExceptionGroup[BaseException], name: str
) -> None:
    """If supervisor ``name`` gave up with ``failure``, raise that (with its cause)
    instead of ``group``, the errors its nursery ended with; otherwise return.

    Whatever else is in ``group`` (typically the body's calls failing because the
    children were stopped) is a consequence, kept as notes on the failure. A
    ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``, ...) wins:
    the group is then left to propagate.
    """
    if failure is None:
        return
    matched, rest = group.split(lambda exc: exc is failure)
    others = _leaves(rest)
    if matched is not None and all(isinstance(e, Exception) for e in others):
        for other in others:
            failure.add_note(f"also raised while {name!r} gave up: {_describe(other)}")
        raise failure from failure.__cause__


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _leaves(group: BaseExceptionGroup[BaseException] | None) -> list[BaseException]:
    if group is None:
        return []
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves
