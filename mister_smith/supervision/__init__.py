"""Supervision trees: supervisors own nurseries and carry out recovery strategies.

The decision logic (:class:`SupervisorPolicy`, :class:`RestartIntensity`,
:class:`Backoff`, :class:`BreakerCore`, :class:`FailureDetector`, strategies) is pure
and synchronous, with time passed in; :func:`open_supervisor` feeds it the Trio clock.
"""

from ..types import Restart as Restart
from ..types import StrategyKind as StrategyKind
from ._breaker import BreakerCore as BreakerCore
from ._breaker import BreakerState as BreakerState
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import CircuitBreaker as CircuitBreaker
from ._child import Child as Child
from ._child import ChildEnd as ChildEnd
from ._child import ChildSpec as ChildSpec
from ._child import ChildState as ChildState
from ._child import ChildStatistics as ChildStatistics
from ._child import RecoveryPolicy as RecoveryPolicy
from ._child import current_child as current_child
from ._child import heartbeat as heartbeat
from ._child import shutdown_grace as shutdown_grace
from ._config import INHERIT as INHERIT
from ._config import Inherit as Inherit
from ._config import SupervisorConfig as SupervisorConfig
from ._core import ChildExit as ChildExit
from ._core import GiveUp as GiveUp
from ._core import Outcome as Outcome
from ._core import RemoveChild as RemoveChild
from ._core import RunAgain as RunAgain
from ._core import Settle as Settle
from ._core import SupervisorCore as SupervisorCore
from ._core import SupervisorState as SupervisorState
from ._decision import Decision as Decision
from ._decision import EscalateFailure as EscalateFailure
from ._decision import LeaveChild as LeaveChild
from ._decision import RestartChild as RestartChild
from ._decision import RetryChild as RetryChild
from ._decision import StopChild as StopChild
from ._decision import SupervisorPolicy as SupervisorPolicy
from ._decision import effective_action as effective_action
from ._detector import FailureDetector as FailureDetector
from ._intensity import Backoff as Backoff
from ._intensity import BackoffState as BackoffState
from ._intensity import RestartIntensity as RestartIntensity
from ._intensity import RestartLimit as RestartLimit
from ._open import open_supervisor as open_supervisor
from ._strategy import OneForAll as OneForAll
from ._strategy import OneForOne as OneForOne
from ._strategy import RestForOne as RestForOne
from ._strategy import SupervisionStrategyBase as SupervisionStrategyBase
from ._supervisor import Supervisor as Supervisor
from ._tree import SupervisionTree as SupervisionTree
from ._tree import TreeSnapshot as TreeSnapshot
from ._tree import open_supervision_tree as open_supervision_tree
from ._tree import snapshot as snapshot
from ._view import SupervisorStatistics as SupervisorStatistics

__all__ = [
    "Backoff",
    "BackoffState",
    "BreakerCore",
    "BreakerState",
    "BreakerStatistics",
    "Child",
    "ChildEnd",
    "ChildSpec",
    "ChildState",
    "ChildStatistics",
    "CircuitBreaker",
    "Decision",
    "EscalateFailure",
    "LeaveChild",
    "RestartChild",
    "RetryChild",
    "StopChild",
    "INHERIT",
    "Inherit",
    "FailureDetector",
    "OneForAll",
    "OneForOne",
    "RecoveryPolicy",
    "RestForOne",
    "Restart",
    "RestartIntensity",
    "RestartLimit",
    "StrategyKind",
    "SupervisionStrategyBase",
    "ChildExit",
    "GiveUp",
    "Outcome",
    "RemoveChild",
    "RunAgain",
    "Settle",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorCore",
    "SupervisorState",
    "SupervisorPolicy",
    "SupervisorStatistics",
    "SupervisionTree",
    "TreeSnapshot",
    "current_child",
    "effective_action",
    "heartbeat",
    "open_supervision_tree",
    "open_supervisor",
    "shutdown_grace",
    "snapshot",
]
