"""The design doc's prelude: ``from mister_smith.prelude import *``.

Runtime (``RuntimeManager``, ``RuntimeConfig``), actors (``Actor``, ``ActorSystem``,
``ActorRef``), agents (``Agent``, ``AgentSpec``, ``AgentTask``, ``Model``,
``ScriptedModel``, ``create_dynamic_team``), async patterns (``AsyncTask``,
``TaskExecutor``, ``StreamProcessor``), tools (``Tool``, ``ToolBus``, ``ToolSchema``),
the typed ids and every error.
"""

from .actors import Actor as Actor
from .actors import ActorRef as ActorRef
from .actors import ActorSystem as ActorSystem
from .agents import Agent as Agent
from .agents import AgentSpec as AgentSpec
from .agents import AgentTask as AgentTask
from .agents import Model as Model
from .agents import ScriptedModel as ScriptedModel
from .agents import create_dynamic_team as create_dynamic_team
from .async_patterns import AsyncTask as AsyncTask
from .async_patterns import StreamProcessor as StreamProcessor
from .async_patterns import TaskExecutor as TaskExecutor
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .runtime import RuntimeConfig as RuntimeConfig
from .runtime import RuntimeManager as RuntimeManager
from .tools import Tool as Tool
from .tools import ToolBus as ToolBus
from .tools import ToolSchema as ToolSchema
from .types import *  # noqa: F403
from .types import __all__ as _types_all

__all__ = [
    "Actor",
    "Agent",
    "AgentSpec",
    "AgentTask",
    "Model",
    "ScriptedModel",
    "create_dynamic_team",
    "ActorRef",
    "ActorSystem",
    "AsyncTask",
    "RuntimeConfig",
    "RuntimeManager",
    "StreamProcessor",
    "TaskExecutor",
    "Tool",
    "ToolBus",
    "ToolSchema",
    *_types_all,
    *_errors_all,
]
