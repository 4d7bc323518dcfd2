"""Configuration: frozen settings sections, TOML + environment loading, one converter.

``AgentConfig()`` holds every default. :func:`load_config` layers a TOML file and then
``MISTER_SMITH__<SECTION>__<FIELD>`` environment variables over them and reports every
problem at once as :class:`ConfigValidationError` (a
:class:`~mister_smith.errors.ConfigError`); :func:`dump_config` writes TOML that loads
back to an equal config. Durations are ``float`` seconds and may be written as
``"500ms"``, ``"30s"``, ``"2m"`` or ``"1h"``.

:data:`config_converter` is the project's cattrs converter; other layers reuse it to
(un)structure their attrs messages.
"""

from ._agent import AgentConfig as AgentConfig
from ._agent import RuntimeConfig as RuntimeConfig
from ._agents import AgentSettings as AgentSettings
from ._converter import config_converter as config_converter
from ._distributed import DistributedSettings as DistributedSettings
from ._duration import Seconds as Seconds
from ._duration import parse_duration as parse_duration
from ._env import ENV_PREFIX as ENV_PREFIX
from ._errors import ConfigValidationError as ConfigValidationError
from ._loading import dump_config as dump_config
from ._loading import load_config as load_config
from ._loading import loads_config as loads_config
from ._loading import save_config as save_config
from ._orchestration import AutoscalingSettings as AutoscalingSettings
from ._orchestration import OrchestrationConfig as OrchestrationConfig
from ._orchestration import ProbeConfig as ProbeConfig
from ._orchestration import ProbeSettings as ProbeSettings
from ._orchestration import ReplicaSettings as ReplicaSettings
from ._orchestration import ResourceAllocation as ResourceAllocation
from ._orchestration import ResourceSettings as ResourceSettings
from ._orchestration import UpdateStrategy as UpdateStrategy
from ._persistence import SYNCHRONOUS_MODES as SYNCHRONOUS_MODES
from ._persistence import PersistenceSettings as PersistenceSettings
from ._sections import LOG_LEVELS as LOG_LEVELS
from ._sections import TOOL_POLICIES as TOOL_POLICIES
from ._sections import ActorSettings as ActorSettings
from ._sections import EventSettings as EventSettings
from ._sections import MonitoringSettings as MonitoringSettings
from ._sections import PoolSettings as PoolSettings
from ._sections import RuntimeSettings as RuntimeSettings
from ._sections import SupervisionSettings as SupervisionSettings
from ._sections import SupervisionStrategy as SupervisionStrategy
from ._sections import TaskSettings as TaskSettings
from ._sections import ToolSettings as ToolSettings

__all__ = [
    "ENV_PREFIX",
    "LOG_LEVELS",
    "SYNCHRONOUS_MODES",
    "TOOL_POLICIES",
    "ActorSettings",
    "AgentConfig",
    "AgentSettings",
    "AutoscalingSettings",
    "ConfigValidationError",
    "DistributedSettings",
    "EventSettings",
    "MonitoringSettings",
    "OrchestrationConfig",
    "PersistenceSettings",
    "PoolSettings",
    "ProbeConfig",
    "ProbeSettings",
    "ReplicaSettings",
    "ResourceAllocation",
    "ResourceSettings",
    "RuntimeConfig",
    "RuntimeSettings",
    "Seconds",
    "SupervisionSettings",
    "SupervisionStrategy",
    "TaskSettings",
    "ToolSettings",
    "UpdateStrategy",
    "config_converter",
    "dump_config",
    "load_config",
    "loads_config",
    "parse_duration",
    "save_config",
]
