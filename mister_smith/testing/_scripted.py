"""``ScriptedActor``: an actor whose replies come from a script."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs
import trio

from ..actors import Actor, ActorContext
from ._failures import InjectedCrash


def echo(message: Any) -> Any:
    """The default step: reply with the message itself."""
    return message


def _as_predicate(crash_on: Callable[[Any], bool] | Collection[Any]) -> Callable[[Any], bool]:
    if callable(crash_on):
        return crash_on
    poison = list(crash_on)
    return lambda message: any(message == item for item in poison)


@attrs.define(eq=False)
class Script:
    """A tape of steps, shared by every incarnation of the actors that play it.

    Each handled message consumes the next step; once the steps run out,
    ``otherwise`` answers every message. A step is:

    * an exception instance or ``Exception`` subclass — raised (the actor crashes);
    * a callable — called with the message; its result (awaited if awaitable) is the
      reply;
    * anything else — the reply itself.

    Messages for which ``crash_on`` matches (a predicate, or a collection of messages
    compared with ``==``) crash the actor with :class:`InjectedCrash` without
    consuming a step.

    Because the tape lives outside the actor, a restarted actor carries on where its
    predecessor stopped; :attr:`received` records every message any of them got.
    """

    steps: Sequence[Any] = ()
    crash_on: Callable[[Any], bool] | Collection[Any] = ()
    otherwise: Any = echo
    received: list[Any] = attrs.field(factory=list, init=False)
    position: int = attrs.field(default=0, init=False)
    _should_crash: Callable[[Any], bool] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._should_crash = _as_predicate(self.crash_on)

    def next_step(self, message: Any) -> Any:
        """Record ``message`` and return the step that answers it."""
        self.received.append(message)
        if self._should_crash(message):
            return InjectedCrash(f"scripted crash on {message!r}")
        if self.position < len(self.steps):
            step = self.steps[self.position]
            self.position += 1
            return step
        return self.otherwise

    @property
    def exhausted(self) -> bool:
        """Whether every step has been played."""
        return self.position >= len(self.steps)


async def play(step: Any, message: Any) -> Any:
    """Carry out one script ``step`` for ``message`` and return the reply."""
    if isinstance(step, BaseException):
        raise step
    if isinstance(step, type) and issubclass(step, Exception):
        raise step(f"scripted {step.__name__} on {message!r}")
    if callable(step):
        result = step(message)
        if inspect.isawaitable(result):
            result = await result
        else:
            await trio.lowlevel.checkpoint()
        return result
    await trio.lowlevel.checkpoint()
    return step


class ScriptedActor(Actor):
    """An actor that answers from a :class:`Script` (or a plain list of steps).

    ``await system.spawn(ScriptedActor, script)``: with a shared :class:`Script` the
    tape survives restarts; with a plain sequence every incarnation starts the list
    afresh (actor state resets on restart, as in OTP). ``crash_on`` (only with a plain
    sequence) lists messages, or gives a predicate, that crash the actor.
    """

    def __init__(
        self,
        script: Script | Sequence[Any] = (),
        crash_on: Callable[[Any], bool] | Collection[Any] = (),
    ) -> None:
        if isinstance(script, Script):
            if crash_on:
                raise ValueError("give crash_on to the Script, not to ScriptedActor")
            self.script = script
        else:
            self.script = Script(steps=tuple(script), crash_on=crash_on)

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        """Answer ``message`` with the script's next step."""
        return await play(self.script.next_step(message), message)
