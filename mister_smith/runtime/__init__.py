"""The runtime: one root supervisor over events, actors and tools; graceful shutdown."""

from ..config import RuntimeConfig as RuntimeConfig
from ._manager import RuntimeManager as RuntimeManager
from ._manager import run as run

__all__ = ["RuntimeConfig", "RuntimeManager", "run"]
