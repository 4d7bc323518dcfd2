"""Event ids: random version-4 UUIDs from a private generator."""

from __future__ import annotations

import random
import uuid

from mister_smith.events import ChildStarted
from mister_smith.events._records import new_event_id


def test_event_ids_are_rfc4122_version_4() -> None:
    for _ in range(1000):
        event_id = new_event_id()
        assert event_id.version == 4
        assert event_id.variant == uuid.RFC_4122


def test_event_ids_do_not_repeat_when_user_code_seeds_random() -> None:
    random.seed(7)
    first = ChildStarted(source="s", supervisor="s", child="c").event_id
    random.seed(7)
    second = ChildStarted(source="s", supervisor="s", child="c").event_id
    assert first != second
    assert len({new_event_id() for _ in range(10_000)}) == 10_000
