"""mister_smith: supervised AI-agent systems on Trio's structured concurrency.

Agents are actors; actors live under supervision trees; every tool call is bounded in
time; every failure has a severity and a recovery strategy that the framework carries
out. Public names are re-exported flat from here (the sub-packages hold the same
objects); :mod:`mister_smith.prelude` holds the design doc's prelude and
:mod:`mister_smith.testing` the test harness.
"""

from .actors import *  # noqa: F403
from .actors import __all__ as _actors_all
from .agents import *  # noqa: F403
from .agents import __all__ as _agents_all
from .async_patterns import *  # noqa: F403
from .async_patterns import __all__ as _async_patterns_all
from .config import *  # noqa: F403
from .config import __all__ as _config_all
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .monitoring import *  # noqa: F403
from .monitoring import __all__ as _monitoring_all
from .persistence import *  # noqa: F403
from .persistence import __all__ as _persistence_all
from .resources import *  # noqa: F403
from .resources import __all__ as _resources_all
from .runtime import *  # noqa: F403
from .runtime import __all__ as _runtime_all
from .supervision import *  # noqa: F403
from .supervision import __all__ as _supervision_all
from .tools import *  # noqa: F403
from .tools import __all__ as _tools_all
from .transport import *  # noqa: F403
from .transport import __all__ as _transport_all
from .types import *  # noqa: F403
from .types import __all__ as _types_all

__version__ = "0.1.0"

__all__ = sorted(
    {
        *_errors_all,
        *_types_all,
        *_config_all,
        *_persistence_all,
        *_events_all,
        *_supervision_all,
        *_actors_all,
        *_async_patterns_all,
        *_tools_all,
        *_transport_all,
        *_resources_all,
        *_monitoring_all,
        *_agents_all,
        *_runtime_all,
    }
)
