"""The runtime: one root supervisor over events, actors and tools; graceful shutdown."""

from ..config import RuntimeConfig as RuntimeConfig
from ._manager import RuntimeManager as RuntimeManager
from ._manager import RuntimeStatistics as RuntimeStatistics
from ._manager import open_runtime as open_runtime
from ._program import reload_on_sighup as reload_on_sighup
from ._program import run as run
from ._reconfigure import FIXED_AT_OPEN as FIXED_AT_OPEN

__all__ = [
    "FIXED_AT_OPEN",
    "RuntimeConfig",
    "RuntimeManager",
    "RuntimeStatistics",
    "open_runtime",
    "reload_on_sighup",
    "run",
]
