"""Health: statuses, reports, the ``HealthCheck`` protocol and the ``HealthMonitor``."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any, NoReturn, Protocol

import attrs
import trio
from trio_util import periodic

from ..config import MonitoringSettings
from ..events import EventBus, HealthChanged
from ._errors import ComponentUnhealthy

logger = logging.getLogger("mister_smith.resources.health")

DEFAULT_FAILURE_THRESHOLD = 3
"""Consecutive unhealthy results after which a component is reported as failed."""


class HealthStatus(enum.Enum):
    """How healthy a component (or the whole system) is."""

    HEALTHY = "healthy"
    """Working as intended."""
    DEGRADED = "degraded"
    """Working, but near a limit or losing something (still serving)."""
    UNHEALTHY = "unhealthy"
    """Not working; traffic should go elsewhere."""
    UNKNOWN = "unknown"
    """Not checked yet."""

    @property
    def serving(self) -> bool:
        """Whether this status still takes traffic (healthy or degraded)."""
        return self is HealthStatus.HEALTHY or self is HealthStatus.DEGRADED


def _freeze_details(details: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(details)


@attrs.frozen
class HealthReport:
    """The result of one health check.

    Attributes:
        status: The component's status.
        reason: Why, in a few words (empty when healthy).
        details: Figures behind the verdict (JSON-friendly values).
    """

    status: HealthStatus
    reason: str = ""
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_details)

    @classmethod
    def healthy(cls, reason: str = "", details: Mapping[str, Any] | None = None) -> HealthReport:
        """A ``HEALTHY`` report."""
        return cls(HealthStatus.HEALTHY, reason, details or {})

    @classmethod
    def degraded(cls, reason: str, details: Mapping[str, Any] | None = None) -> HealthReport:
        """A ``DEGRADED`` report."""
        return cls(HealthStatus.DEGRADED, reason, details or {})

    @classmethod
    def unhealthy(cls, reason: str, details: Mapping[str, Any] | None = None) -> HealthReport:
        """An ``UNHEALTHY`` report."""
        return cls(HealthStatus.UNHEALTHY, reason, details or {})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: ``status``, ``reason`` and ``details``."""
        return {"status": self.status.value, "reason": self.reason, "details": dict(self.details)}


_UNKNOWN_REPORT = HealthReport(HealthStatus.UNKNOWN, "not checked yet")


class HealthCheck(Protocol):
    """Something the :class:`HealthMonitor` can ask how healthy it is.

    ``check`` should be quick; the monitor bounds it by its timeout anyway (a check
    that runs out of time counts as ``UNHEALTHY``, "timed out") and treats an
    exception as ``UNHEALTHY`` too. A check may also have a ``timeout`` attribute
    (seconds) overriding the monitor's.
    """

    @property
    def name(self) -> str:
        """Unique name of the component checked (used in reports and events)."""
        ...

    @property
    def required(self) -> bool:
        """Whether readiness depends on it."""
        ...

    async def check(self) -> HealthReport:
        """Look at the component and report."""
        ...


@attrs.define(eq=False)
class FunctionCheck:
    """A :class:`HealthCheck` made from an async function returning a report or a bool.

    ``True`` means healthy; ``False`` unhealthy.
    """

    name: str
    fn: Callable[[], Awaitable[HealthReport | bool]]
    required: bool = True
    timeout: float | None = None

    async def check(self) -> HealthReport:
        """Call the function and turn its answer into a report."""
        result = await self.fn()
        if isinstance(result, HealthReport):
            return result
        return HealthReport.healthy() if result else HealthReport.unhealthy("check returned false")


@attrs.frozen
class ComponentHealth:
    """What the monitor knows about one component.

    Attributes:
        name: The check's name.
        required: Whether readiness depends on it.
        report: Its latest report (``UNKNOWN`` before the first check).
        consecutive_failures: ``UNHEALTHY`` results in a row since it was last
            healthy or last reported as failed.
        checked_at: Trio time of the latest check (``None`` before the first).
        duration: Seconds the latest check took.
    """

    name: str
    required: bool
    report: HealthReport
    consecutive_failures: int = 0
    checked_at: float | None = None
    duration: float = 0.0

    @property
    def status(self) -> HealthStatus:
        """The latest report's status."""
        return self.report.status

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields."""
        return {
            **self.report.to_dict(),
            "required": self.required,
            "consecutive_failures": self.consecutive_failures,
            "checked_at": self.checked_at,
            "duration": self.duration,
        }


@attrs.frozen
class HealthSnapshot:
    """An aggregate verdict (liveness or readiness) over the components.

    Attributes:
        status: The overall status.
        ok: Whether the probe passes (HTTP 200) or fails (HTTP 503).
        reason: Why, when it is not simply healthy.
        components: The components considered, by name.
    """

    status: HealthStatus
    ok: bool
    reason: str = ""
    components: Mapping[str, ComponentHealth] = attrs.field(factory=dict)
    age: float | None = None
    """Seconds since the round this verdict is based on (``None``: none yet)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON body served by ``/health/live`` and ``/health/ready``."""
        return {
            "status": self.status.value,
            "ok": self.ok,
            "reason": self.reason,
            "age_seconds": self.age,
            "checks": {name: health.to_dict() for name, health in self.components.items()},
        }


class SupervisorState(Protocol):
    """What liveness needs from the root supervisor: its ``state`` (``"running"``...)."""

    @property
    def state(self) -> str:
        """``"running"`` while it supervises."""
        ...


@attrs.frozen
class HealthMonitorStatistics:
    """Counters of a :class:`HealthMonitor`.

    Attributes:
        checks: Registered checks.
        rounds: Completed check rounds.
        failures_reported: Times a component was reported as failed (threshold hit).
        last_round_at: Trio time the latest round completed (``None`` before).
    """

    checks: int
    rounds: int
    failures_reported: int
    last_round_at: float | None


FailureCallback = Callable[[ComponentHealth], object]
"""Called with the component's health when it stays unhealthy ``failure_threshold`` times."""


DEFAULT_MAX_AGE = 1.0
"""Seconds: the oldest health round ``/health/ready`` answers from without re-checking."""


class HealthMonitor:
    """Runs health checks every ``interval`` and keeps liveness and readiness verdicts.

    Run it as a supervised child (``await supervisor.start_child(monitor.run)``), or
    call :meth:`check_now` yourself. Each round runs every check concurrently, each
    bounded by ``timeout`` (a check that runs out of time is ``UNHEALTHY``, "timed
    out"). A status change is announced as :class:`~mister_smith.events.HealthChanged`.

    **Failures reach supervisors.** When a component is ``UNHEALTHY`` in
    ``failure_threshold`` consecutive rounds, the monitor reports it (then counts
    afresh): every task waiting in :meth:`guard` for that component raises
    :class:`~mister_smith.resources.ComponentUnhealthy`, and ``on_failure`` is called.
    Awaiting ``guard(name)`` inside the component's own supervised task (as
    :class:`~mister_smith.resources.ResourceManager` does for its pools) makes the
    component's *own* supervisor see the failure and carry out its recovery (a
    ``Restart`` by default); a failure with no guard and no callback is logged.

    **Freshness.** :meth:`fresh_readiness` (what ``/health/ready`` serves) re-runs the
    checks when the last round is older than ``max_age`` seconds (concurrent callers
    share one round), so a probe never sees a verdict from a round up to ``interval``
    old; every verdict carries its age.

    **Liveness** passes while the root supervisor (if given) is running and, when
    :meth:`run` is running, its loop keeps completing rounds. **Readiness** fails
    (``UNKNOWN``, "starting") until the first round completes, then passes while
    liveness passes and no *required* check is ``UNHEALTHY`` or ``UNKNOWN``; a
    ``DEGRADED`` component keeps the system ready, with the overall status
    ``DEGRADED``. Optional checks only ever degrade the status.

    Args:
        checks: Initial checks (names must be unique).
        interval: Seconds between round starts (default: ``health_check_interval``).
        timeout: Seconds each check may take (default: ``health_check_timeout``).
        failure_threshold: Consecutive ``UNHEALTHY`` results that make a failure.
        events: Bus for ``HealthChanged`` events.
        root: The root supervisor, for liveness.
        on_failure: Called (synchronously, errors logged) when a component fails.
        settings: Where ``interval`` and ``timeout`` default from.
        name: Source name on the events it emits.
        max_age: Oldest round (seconds) :meth:`fresh_readiness` answers from.
    """

    def __init__(
        self,
        checks: Iterable[HealthCheck] = (),
        *,
        interval: float | None = None,
        timeout: float | None = None,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        events: EventBus | None = None,
        root: SupervisorState | None = None,
        on_failure: FailureCallback | None = None,
        settings: MonitoringSettings | None = None,
        name: str = "health",
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        base = MonitoringSettings() if settings is None else settings
        self.interval = base.health_check_interval if interval is None else interval
        self.timeout = base.health_check_timeout if timeout is None else timeout
        if not self.interval > 0:
            raise ValueError(f"interval must be > 0, got {self.interval!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout!r}")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        self.failure_threshold = failure_threshold
        self.events = events
        self.root = root
        self.name = name
        self._on_failure = on_failure
        self._checks: dict[str, HealthCheck] = {}
        self._health: dict[str, ComponentHealth] = {}
        self._failure_events: dict[str, trio.Event] = {}
        self._last_failure: dict[str, ComponentHealth] = {}
        self._rounds = 0
        self._failures_reported = 0
        self._last_round_at: float | None = None
        self._running = False
        if not max_age >= 0:
            raise ValueError(f"max_age must be >= 0, got {max_age!r}")
        self.max_age = max_age
        self._round_lock = trio.Lock()
        for check in checks:
            self.add_check(check)

    # -- registry -------------------------------------------------------------------------

    def add_check(self, check: HealthCheck) -> None:
        """Register a check; it is first run in the next round.

        Raises:
            ValueError: a check by that name is already registered.
        """
        if check.name in self._checks:
            raise ValueError(f"health check {check.name!r} is already registered")
        self._checks[check.name] = check
        self._health[check.name] = ComponentHealth(check.name, check.required, _UNKNOWN_REPORT)

    def remove_check(self, name: str) -> None:
        """Unregister a check (no-op when absent)."""
        self._checks.pop(name, None)
        self._health.pop(name, None)

    def components(self) -> dict[str, ComponentHealth]:
        """The latest health of every registered component, by name."""
        return dict(self._health)

    def component(self, name: str) -> ComponentHealth:
        """The latest health of one component.

        Raises:
            KeyError: no check by that name.
        """
        return self._health[name]

    # -- running --------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Run a round every ``interval`` seconds, for ever.

        Signals ``task_status.started()`` at once, so endpoints can serve (readiness
        says "starting") while the first round runs. Rounds start ``interval`` apart,
        measured from one round's start to the next (trio-util's ``periodic``); a round
        that overruns is followed by the next one at once, never by a burst.
        """
        self._running = True
        try:
            task_status.started()
            async with aclosing(periodic(self.interval)) as rounds:
                async for _ in rounds:
                    await self.check_now()
            raise AssertionError("trio_util.periodic ended")  # pragma: no cover
        finally:
            self._running = False

    async def fresh_readiness(self, max_age: float | None = None) -> HealthSnapshot:
        """Readiness from a round at most ``max_age`` seconds old (default: the
        monitor's): a staler verdict triggers a round now, shared by concurrent callers
        (each round is bounded by the checks' timeouts)."""
        limit = self.max_age if max_age is None else max_age
        last = self._last_round_at
        if last is None or trio.current_time() - last > limit:
            if self._round_lock.locked():
                async with self._round_lock:  # a round is under way: take its verdict
                    pass
            else:
                await self.check_now()
        else:
            await trio.lowlevel.checkpoint()
        return self.readiness()

    async def check_now(self) -> HealthSnapshot:
        """Run one round of every check now; return the readiness verdict after it."""
        async with self._round_lock:
            return await self._round()

    async def _round(self) -> HealthSnapshot:
        checks = list(self._checks.values())
        results: dict[str, tuple[HealthReport, float, float]] = {}
        async with trio.open_nursery() as nursery:
            for check in checks:
                nursery.start_soon(self._run_one, check, results)
        for check in checks:
            if check.name in results and self._checks.get(check.name) is check:
                report, checked_at, duration = results[check.name]
                self._record(check, report, checked_at, duration)
        self._rounds += 1
        self._last_round_at = trio.current_time()
        return self.readiness()

    async def _run_one(
        self, check: HealthCheck, results: dict[str, tuple[HealthReport, float, float]]
    ) -> None:
        timeout = getattr(check, "timeout", None)
        timeout = self.timeout if timeout is None else timeout
        started = trio.current_time()
        report: HealthReport
        with trio.move_on_after(timeout) as scope:
            try:
                result: object = await check.check()
            except Exception as exc:
                logger.debug("health check %s raised", check.name, exc_info=True)
                report = HealthReport.unhealthy(f"check raised {type(exc).__name__}: {exc}")
            else:
                if isinstance(result, HealthReport):
                    report = result
                else:
                    report = HealthReport.unhealthy(f"check returned {result!r}, not a report")
        if scope.cancelled_caught:
            report = HealthReport.unhealthy(f"timed out after {timeout:g} s")
        now = trio.current_time()
        results[check.name] = (report, now, now - started)

    def _record(
        self, check: HealthCheck, report: HealthReport, checked_at: float, duration: float
    ) -> None:
        previous = self._health[check.name]
        failures = (
            previous.consecutive_failures + 1 if report.status is HealthStatus.UNHEALTHY else 0
        )
        health = ComponentHealth(check.name, check.required, report, failures, checked_at, duration)
        self._health[check.name] = health
        if report.status is not previous.status and self.events is not None:
            self.events.emit(
                HealthChanged(
                    source=self.name,
                    component=check.name,
                    status=report.status.value,
                    reason=report.reason,
                )
            )
        if failures >= self.failure_threshold:
            self._report_failure(health)
            self._health[check.name] = attrs.evolve(health, consecutive_failures=0)

    def _report_failure(self, health: ComponentHealth) -> None:
        self._failures_reported += 1
        self._last_failure[health.name] = health
        event = self._failure_events.pop(health.name, None)
        if event is not None:
            event.set()
        if self._on_failure is not None:
            try:
                self._on_failure(health)
            except Exception:
                logger.exception("health monitor: on_failure callback raised for %s", health.name)
        elif event is None:
            logger.error(
                "component %s unhealthy %d times in a row (%s); nothing guards it",
                health.name,
                health.consecutive_failures,
                health.report.reason,
            )

    async def guard(self, name: str) -> NoReturn:
        """Wait until component ``name`` is reported failed, then raise.

        Await it inside the component's supervised task (next to its work, e.g. in
        the task's nursery) so the component's supervisor handles the failure. It
        waits for ever when no check by that name is (or gets) registered.

        Raises:
            ComponentUnhealthy: the component was ``UNHEALTHY`` in
                ``failure_threshold`` consecutive rounds.
        """
        event = self._failure_events.get(name)
        if event is None:
            event = self._failure_events[name] = trio.Event()
        await event.wait()
        health = self._last_failure[name]
        raise ComponentUnhealthy(
            f"{name} was unhealthy in {health.consecutive_failures} consecutive health "
            f"checks: {health.report.reason}",
            component=name,
            failures=health.consecutive_failures,
            reason=health.report.reason,
        )

    # -- verdicts ---------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether a first round has completed."""
        return self._rounds > 0

    def liveness(self) -> HealthSnapshot:
        """Whether the process should be left running (see the class docs)."""
        if self.root is not None and self.root.state != "running":
            return HealthSnapshot(
                HealthStatus.UNHEALTHY, False, f"root supervisor is {self.root.state}"
            )
        if self._running and self._last_round_at is not None:
            stale_after = self.interval + 2 * self._longest_timeout()
            silent = trio.current_time() - self._last_round_at
            if silent > stale_after:
                return HealthSnapshot(
                    HealthStatus.UNHEALTHY,
                    False,
                    f"health loop silent for {silent:.3g} s (expected within {stale_after:g} s)",
                )
        return HealthSnapshot(HealthStatus.HEALTHY, True)

    def readiness(self) -> HealthSnapshot:
        """Whether the process should receive traffic (see the class docs), from the
        latest round (its age is part of the verdict; see :meth:`fresh_readiness`)."""
        snapshot = self._readiness()
        last = self._last_round_at
        age = None if last is None else trio.current_time() - last
        return attrs.evolve(snapshot, age=age)

    def _readiness(self) -> HealthSnapshot:
        components = dict(self._health)
        live = self.liveness()
        if not live.ok:
            return HealthSnapshot(live.status, False, live.reason, components)
        if not self.started:
            return HealthSnapshot(HealthStatus.UNKNOWN, False, "starting", components)
        failing = sorted(
            name
            for name, health in components.items()
            if health.required and not health.status.serving
        )
        if failing:
            return HealthSnapshot(
                HealthStatus.UNHEALTHY,
                False,
                "required checks failing: " + ", ".join(failing),
                components,
            )
        degraded = sorted(
            name for name, health in components.items() if health.status is not HealthStatus.HEALTHY
        )
        if degraded:
            return HealthSnapshot(
                HealthStatus.DEGRADED, True, "degraded: " + ", ".join(degraded), components
            )
        return HealthSnapshot(HealthStatus.HEALTHY, True, "", components)

    def _longest_timeout(self) -> float:
        longest = self.timeout
        for check in self._checks.values():
            own = getattr(check, "timeout", None)
            if own is not None:
                longest = max(longest, own)
        return longest

    def statistics(self) -> HealthMonitorStatistics:
        """Counters of the monitor."""
        return HealthMonitorStatistics(
            checks=len(self._checks),
            rounds=self._rounds,
            failures_reported=self._failures_reported,
            last_round_at=self._last_round_at,
        )
