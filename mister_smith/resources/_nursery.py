"""A nursery for context managers that own background tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


@asynccontextmanager
async def open_owned_nursery() -> AsyncIterator[trio.Nursery]:
    """Like :func:`trio.open_nursery`, but an error from the body comes out as itself.

    Trio wraps every error leaving a nursery in an :class:`ExceptionGroup`. For an
    ``async with open_pool(...)`` whose background tasks are an implementation detail,
    the caller should see its own ``ValueError`` (or ``Cancelled``) unwrapped. When a
    background task failed too, the group is raised as is.
    """
    body_error: BaseException | None = None
    unwrapped: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                body_error = exc
                raise
    except BaseExceptionGroup as group:
        if (
            body_error is None
            or len(group.exceptions) != 1
            or group.exceptions[0] is not body_error
        ):
            raise
        unwrapped = body_error
    if unwrapped is not None:
        # Raised outside the ``except`` so the group does not become its context.
        raise unwrapped
