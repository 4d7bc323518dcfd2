"""Errors of the resources layer (kinds from :mod:`mister_smith.errors`)."""

from __future__ import annotations

from ..errors import ErrorSeverity, RecoveryStrategy, ResourceError, RuntimeFault


class PoolClosed(ResourceError):
    """The pool has closed (you closed it, or its owner stopped): nothing is handed out."""


class UnknownResource(ResourceError, LookupError):
    """A :class:`~mister_smith.resources.ResourceManager` holds nothing by that name."""


class ComponentUnhealthy(RuntimeFault):
    """A component failed its health check too many times in a row.

    Raised inside the component's supervised task by
    :meth:`~mister_smith.resources.HealthMonitor.guard`, so the component's own
    supervisor handles it like a crash (``Restart`` by default, as a
    :class:`~mister_smith.errors.RuntimeFault`).

    Attributes:
        component: The health check's name.
        failures: Consecutive unhealthy results that led to this.
        reason: The last report's reason.
    """

    def __init__(
        self,
        *args: object,
        component: str = "",
        failures: int = 0,
        reason: str = "",
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.component = component
        self.failures = failures
        self.reason = reason
