"""Shared test configuration: hypothesis profiles.

``ci`` (the default) keeps property and stateful tests fast; ``thorough`` runs many more
examples. Select one with ``MISTER_SMITH_HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("MISTER_SMITH_HYPOTHESIS_PROFILE", "ci"))
