"""Resources: connection pools, the resource manager, and health monitoring.

:func:`open_pool` opens a bounded :class:`ConnectionPool` whose background work lives
in its own nursery; :class:`ResourceManager` runs named pools and resources as
supervised children; :class:`HealthMonitor` runs :class:`HealthCheck` s on an interval,
keeps liveness and readiness verdicts, and reports components that stay unhealthy to
their supervisors (see :meth:`HealthMonitor.guard`). The pool's bookkeeping,
:class:`PoolCore`, is pure and synchronous.
"""

from ._accounting import Grant as Grant
from ._accounting import GrantKind as GrantKind
from ._accounting import PoolCore as PoolCore
from ._accounting import PoolStatistics as PoolStatistics
from ._accounting import Waiter as Waiter
from ._checks import BlockedStatistics as BlockedStatistics
from ._checks import BlockingHealthCheck as BlockingHealthCheck
from ._checks import EventBusHealthCheck as EventBusHealthCheck
from ._checks import HasBlockedStatistics as HasBlockedStatistics
from ._checks import HasEventBusStatistics as HasEventBusStatistics
from ._checks import HasPoolStatistics as HasPoolStatistics
from ._checks import HasQueueStatistics as HasQueueStatistics
from ._checks import MailboxHealthCheck as MailboxHealthCheck
from ._checks import PoolHealthCheck as PoolHealthCheck
from ._checks import QueueStatistics as QueueStatistics
from ._checks import SupervisorHealthCheck as SupervisorHealthCheck
from ._errors import ComponentUnhealthy as ComponentUnhealthy
from ._errors import PoolClosed as PoolClosed
from ._errors import UnknownResource as UnknownResource
from ._health import ComponentHealth as ComponentHealth
from ._health import FunctionCheck as FunctionCheck
from ._health import HealthCheck as HealthCheck
from ._health import HealthMonitor as HealthMonitor
from ._health import HealthMonitorStatistics as HealthMonitorStatistics
from ._health import HealthReport as HealthReport
from ._health import HealthSnapshot as HealthSnapshot
from ._health import HealthStatus as HealthStatus
from ._manager import ResourceManager as ResourceManager
from ._manager import open_resource_manager as open_resource_manager
from ._pool import ConnectionPool as ConnectionPool
from ._pool import Lease as Lease
from ._pool import open_pool as open_pool

__all__ = [
    "BlockedStatistics",
    "BlockingHealthCheck",
    "ComponentHealth",
    "ComponentUnhealthy",
    "ConnectionPool",
    "EventBusHealthCheck",
    "FunctionCheck",
    "Grant",
    "GrantKind",
    "HasBlockedStatistics",
    "HasEventBusStatistics",
    "HasPoolStatistics",
    "HasQueueStatistics",
    "HealthCheck",
    "HealthMonitor",
    "HealthMonitorStatistics",
    "HealthReport",
    "HealthSnapshot",
    "HealthStatus",
    "Lease",
    "MailboxHealthCheck",
    "PoolClosed",
    "PoolCore",
    "PoolHealthCheck",
    "PoolStatistics",
    "QueueStatistics",
    "ResourceManager",
    "SupervisorHealthCheck",
    "UnknownResource",
    "Waiter",
    "open_pool",
    "open_resource_manager",
]
