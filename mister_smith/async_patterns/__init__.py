"""Async patterns: tasks with timeouts and retries, stream pipelines, middleware chains.

- :class:`TaskExecutor` runs :class:`AsyncTask` s with bounded concurrency, a bounded
  queue (:class:`~mister_smith.TaskQueueFull` when full), a deadline per attempt
  (:class:`~mister_smith.TaskTimeout`) and :class:`RetryPolicy` retries carried out by
  stamina on Trio's clock.
- :class:`StreamProcessor` chains :class:`Stage` / :class:`Batch` stages with bounded
  channels, so backpressure reaches the source, with an :class:`ErrorPolicy` per stage.
- :class:`MiddlewareChain` applies :class:`AgentMiddleware` hooks around a handler
  (:class:`LoggingMiddleware`, :class:`MetricsMiddleware`); a middleware refuses a
  message by raising :class:`MiddlewareRejected`; :class:`ActorMiddleware` applies a
  chain around every actor's ``handle``.
"""

from ._actors import ActorMiddleware as ActorMiddleware
from ._executor import AsyncTask as AsyncTask
from ._executor import ExecutorStatistics as ExecutorStatistics
from ._executor import TaskCancelled as TaskCancelled
from ._executor import TaskExecutor as TaskExecutor
from ._executor import TaskHandle as TaskHandle
from ._executor import TaskResult as TaskResult
from ._executor import TaskStatus as TaskStatus
from ._histogram import HistogramSnapshot as HistogramSnapshot
from ._histogram import LatencyHistogram as LatencyHistogram
from ._middleware import AgentMiddleware as AgentMiddleware
from ._middleware import LoggingMiddleware as LoggingMiddleware
from ._middleware import MetricsMiddleware as MetricsMiddleware
from ._middleware import Middleware as Middleware
from ._middleware import MiddlewareChain as MiddlewareChain
from ._middleware import MiddlewareContext as MiddlewareContext
from ._middleware import MiddlewareRejected as MiddlewareRejected
from ._middleware import MiddlewareStatistics as MiddlewareStatistics
from ._retry import RetryPolicy as RetryPolicy
from ._retry import is_critical as is_critical
from ._retry import is_transient as is_transient
from ._stream import Batch as Batch
from ._stream import ErrorPolicy as ErrorPolicy
from ._stream import PipelineStatistics as PipelineStatistics
from ._stream import Stage as Stage
from ._stream import StageFailure as StageFailure
from ._stream import StageStatistics as StageStatistics
from ._stream import StreamProcessor as StreamProcessor

__all__ = [
    "ActorMiddleware",
    "AgentMiddleware",
    "AsyncTask",
    "Batch",
    "ErrorPolicy",
    "ExecutorStatistics",
    "HistogramSnapshot",
    "LatencyHistogram",
    "LoggingMiddleware",
    "MetricsMiddleware",
    "Middleware",
    "MiddlewareChain",
    "MiddlewareContext",
    "MiddlewareRejected",
    "MiddlewareStatistics",
    "PipelineStatistics",
    "RetryPolicy",
    "Stage",
    "StageFailure",
    "StageStatistics",
    "StreamProcessor",
    "TaskCancelled",
    "TaskExecutor",
    "TaskHandle",
    "TaskResult",
    "TaskStatus",
    "is_critical",
    "is_transient",
]
