"""Shared test configuration: hypothesis profiles.

``ci`` (the default) keeps property and stateful tests fast and reproducible: it is
derandomized (each test's examples are seeded from the test itself) and keeps no example
database, so two runs of the same code try the same examples — a failure in CI fails the
same way on a developer's machine, and a mutation run (``nox -s mutants``) kills the same
mutants every time. ``thorough`` stays random, keeps its database and runs many more
examples, to find what the fixed ``ci`` examples miss. ``mutants`` is ``ci`` without
shrinking, for ``nox -s mutants``: a mutation run only asks whether a test fails, and
shrinking each failure would cost more than finding it. Select one with
``MISTER_SMITH_HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "mutants",
    settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.generate],
)
settings.load_profile(os.environ.get("MISTER_SMITH_HYPOTHESIS_PROFILE", "ci"))
