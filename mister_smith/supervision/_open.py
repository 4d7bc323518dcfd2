"""``open_supervisor``: a :class:`Supervisor` from keyword options, to open with
``async with``."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

from ..events import EventBus
from ..types import Restart
from ._breaker import CircuitBreaker
from ._child import Child, ChildSpec
from ._config import SupervisorConfig
from ._intensity import Backoff, RestartLimit
from ._strategy import SupervisionStrategyLike
from ._supervisor import Supervisor


def open_supervisor(
    name: str = "supervisor",
    *,
    strategy: SupervisionStrategyLike | None = None,
    max_restarts: int | None = 3,
    restart_window: float = 60.0,
    backoff: Backoff | None = None,
    child_limit: RestartLimit | None = None,
    escalation_timeout: float | None = None,
    events: EventBus | None = None,
    children: Sequence[ChildSpec] = (),
    default_restart: Restart = Restart.TRANSIENT,
    shutdown_timeout: float = 5.0,
    reload: Callable[[], Awaitable[object]] | None = None,
    breaker_factory: Callable[[str], CircuitBreaker] | None = None,
    keep_alive: bool = False,
    rng: random.Random | None = None,
    on_child_removed: Callable[[Child], object] | None = None,
) -> Supervisor:
    """A :class:`Supervisor` to open with ``async with``: each keyword is a
    :class:`SupervisorConfig` field or a :class:`Supervisor` argument (see both).

    ``strategy`` defaults to ``OneForOne()``; ``max_restarts=None`` turns the
    supervisor-wide intensity off (use ``child_limit`` for a budget per child).
    """
    config = SupervisorConfig(
        name=name,
        strategy=strategy if strategy is not None else SupervisorConfig().strategy,
        max_restarts=max_restarts,
        restart_window=restart_window,
        backoff=backoff,
        child_limit=child_limit,
        escalation_timeout=escalation_timeout,
        default_restart=default_restart,
        shutdown_timeout=shutdown_timeout,
        keep_alive=keep_alive,
    )
    return Supervisor(
        config,
        events=events,
        children=children,
        reload=reload,
        breaker_factory=breaker_factory,
        rng=rng,
        on_child_removed=on_child_removed,
    )
