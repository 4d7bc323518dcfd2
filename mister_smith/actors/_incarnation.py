"""One incarnation of an actor: the state of a single run, from ``on_start`` to ``on_stop``.

An :class:`~._cell.ActorCell` outlives restarts; an :class:`Incarnation` does not. The
cell points at its latest one (:meth:`~._cell.ActorCell.begin`), and the message loop
(:mod:`._loop`), which runs it, is the only writer of its fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actor import Actor, ActorContext


class _Idle:
    """The type of :data:`IDLE`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "IDLE"


IDLE: Any = _Idle()
"""What an incarnation's ``current`` holds between messages (``None`` is a message)."""


class Incarnation:
    """One run of an actor: its number, the :class:`Actor` built for it, the context it
    is handed, the envelope being handled and the error that ended it.

    Attributes:
        number: 1 for the first run, 2 after the first restart, ...
        instance: The actor object this run handles messages with.
        ctx: The context this run's hooks and handler receive.
        current: The envelope being handled (``None`` while idle).
        error: What ended this run with a crash (``None`` otherwise); the next run's
            ``on_restart`` is told it.
    """

    __slots__ = ("ctx", "current", "error", "instance", "number")

    def __init__(self, number: int, instance: Actor, ctx: ActorContext) -> None:
        self.number = number
        self.instance = instance
        self.ctx = ctx
        self.current: Any = IDLE
        """The message being handled now, or :data:`IDLE` (a message may be ``None``)."""
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        """Whether a message is being handled now."""
        return self.current is not IDLE

    def __repr__(self) -> str:
        state = "busy" if self.current is not IDLE else "idle"
        return f"<Incarnation {self.number} of {type(self.instance).__name__} {state}>"
