"""Event and actor ids: random version-4 UUIDs from a private generator."""

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


def test_event_ids_behave_like_uuids_built_the_usual_way() -> None:
    import pickle

    for _ in range(200):
        event_id = new_event_id()
        usual = uuid.UUID(str(event_id))
        assert event_id == usual
        assert hash(event_id) == hash(usual)
        assert event_id.int == usual.int
        assert event_id.bytes == usual.bytes
        assert event_id.is_safe is uuid.SafeUUID.unknown
        assert pickle.loads(pickle.dumps(event_id)) == event_id
        assert 0 <= event_id.int < 1 << 128


def test_actor_ids_are_version_4_label_uuids_that_compare_and_hash_as_usual() -> None:
    import pickle

    from mister_smith.types import ActorId

    ids = [ActorId.new() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for actor_id in ids[:200]:
        assert actor_id.uuid.version == 4
        usual = ActorId(uuid.UUID(str(actor_id.uuid)))
        assert actor_id == usual
        assert hash(actor_id) == hash(usual)
        assert ActorId.parse(str(actor_id.uuid)) == actor_id
        assert pickle.loads(pickle.dumps(actor_id)) == actor_id
    random.seed(7)
    first = ActorId.new()
    random.seed(7)
    assert ActorId.new() != first
