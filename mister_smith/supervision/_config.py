"""``SupervisorConfig``: a supervisor's options, written once."""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs

from ..types import Restart
from ._intensity import Backoff, RestartLimit
from ._strategy import OneForOne, SupervisionStrategyBase, SupervisionStrategyLike, as_strategy


class Inherit(enum.Enum):
    """The type of :data:`INHERIT`."""

    INHERIT = "inherit"


INHERIT = Inherit.INHERIT
"""Default of :meth:`Supervisor.start_supervisor` options: take the parent's value
(``None`` is a value there: it turns the bound off)."""


def _non_negative_count(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0 or None, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None and attribute.name == "escalation_timeout":
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _optional_instance(kind: type) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{attribute.name} must be a {kind.__name__}, got {value!r}")

    return check


@attrs.frozen
class SupervisorConfig:
    """Everything a supervisor is configured with (the events bus and hooks aside).

    Attributes:
        name: Shown in events, logs and snapshots.
        strategy: ``OneForOne()`` (default), ``OneForAll()`` or ``RestForOne()`` (a
            :class:`~mister_smith.types.StrategyKind` is accepted too).
        max_restarts: Restarts allowed within ``restart_window`` counted across all
            children (OTP's intensity); one more makes the supervisor give up. ``None``:
            no supervisor-wide bound.
        restart_window: Seconds of the intensity window.
        backoff: Delay between restarts (``None``: restart at once).
        child_limit: Each child's own restart budget (Akka's ``OneForOneStrategy``): a
            child that spends it is stopped for good. A child's ``restart_limit``
            overrides it. ``None``: only ``max_restarts`` applies.
        escalation_timeout: When the supervisor gives up, the longest its children get
            to stop before they are cancelled (``None``: their shutdown timeouts).
        default_restart: Restart type of children that do not set one.
        shutdown_timeout: Default grace seconds per child when stopping.
        keep_alive: Keep running with no children until stopped (for dynamic
            children); otherwise leaving the ``async with`` body waits for the children
            to end, like a nursery.
    """

    name: str = "supervisor"
    strategy: SupervisionStrategyBase = attrs.field(factory=OneForOne, converter=as_strategy)
    max_restarts: int | None = attrs.field(default=3, validator=_non_negative_count)
    restart_window: float = attrs.field(default=60.0, validator=_positive)
    backoff: Backoff | None = attrs.field(default=None, validator=_optional_instance(Backoff))
    child_limit: RestartLimit | None = attrs.field(
        default=None, validator=_optional_instance(RestartLimit)
    )
    escalation_timeout: float | None = attrs.field(default=None, validator=_positive)
    default_restart: Restart = attrs.field(
        default=Restart.TRANSIENT, validator=attrs.validators.instance_of(Restart)
    )
    shutdown_timeout: float = attrs.field(default=5.0, validator=_non_negative)
    keep_alive: bool = False

    @property
    def intensity(self) -> RestartLimit | None:
        """``max_restarts`` within ``restart_window``, or ``None`` when off."""
        if self.max_restarts is None:
            return None
        return RestartLimit(self.max_restarts, self.restart_window)

    def nested(
        self,
        name: str,
        *,
        strategy: SupervisionStrategyLike | None = None,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        default_restart: Restart | None = None,
    ) -> SupervisorConfig:
        """The configuration of a supervisor nested under this one: this one's values
        for every option left out (:data:`INHERIT`; ``None`` turns a bound off),
        always ``keep_alive``."""
        return SupervisorConfig(
            name=name,
            strategy=self.strategy if strategy is None else strategy,
            max_restarts=self.max_restarts if max_restarts is INHERIT else max_restarts,
            restart_window=self.restart_window if restart_window is None else restart_window,
            backoff=self.backoff if backoff is INHERIT else backoff,
            child_limit=self.child_limit if child_limit is INHERIT else child_limit,
            escalation_timeout=(
                self.escalation_timeout if escalation_timeout is INHERIT else escalation_timeout
            ),
            default_restart=self.default_restart if default_restart is None else default_restart,
            shutdown_timeout=self.shutdown_timeout,
            keep_alive=True,
        )

    def reconfigured(
        self,
        *,
        max_restarts: int | Inherit | None = INHERIT,
        restart_window: float | None = None,
        backoff: Backoff | Inherit | None = INHERIT,
        child_limit: RestartLimit | Inherit | None = INHERIT,
        escalation_timeout: float | Inherit | None = INHERIT,
        shutdown_timeout: float | None = None,
    ) -> SupervisorConfig:
        """This configuration with new bounds (see :meth:`Supervisor.reconfigure`):
        options left out keep their value; ``None`` turns ``max_restarts``, ``backoff``,
        ``child_limit`` or ``escalation_timeout`` off.

        Raises:
            ValueError: a new value is out of range (nothing is changed).
            TypeError: a new value has the wrong type.
        """
        changes: dict[str, Any] = {}
        if max_restarts is not INHERIT:
            changes["max_restarts"] = max_restarts
        if restart_window is not None:
            changes["restart_window"] = restart_window
        if backoff is not INHERIT:
            changes["backoff"] = backoff
        if child_limit is not INHERIT:
            changes["child_limit"] = child_limit
        if escalation_timeout is not INHERIT:
            changes["escalation_timeout"] = escalation_timeout
        if shutdown_timeout is not None:
            changes["shutdown_timeout"] = shutdown_timeout
        return attrs.evolve(self, **changes)


SUPERVISOR_CHILD_SHUTDOWN = math.inf
"""A nested supervisor's own shutdown timeout: it is bounded by its children's."""
