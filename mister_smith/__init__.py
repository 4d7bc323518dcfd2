"""mister_smith: supervised AI-agent systems on Trio's structured concurrency.

Public names are re-exported flat from here; ``mister_smith.prelude`` holds the
design doc's prelude.
"""

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .events import *  # noqa: F403
from .events import __all__ as _events_all
from .types import *  # noqa: F403
from .types import __all__ as _types_all

__version__ = "0.1.0"

__all__ = [*_errors_all, *_types_all, *_events_all]
