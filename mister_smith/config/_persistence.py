"""``PersistenceSettings``: where durable state lives and how long it is kept."""

import attrs

from ._checks import duration, integer, one_of, text, to_lower
from ._duration import Seconds, to_optional_seconds, to_seconds

SYNCHRONOUS_MODES = ("normal", "full")
"""The accepted values of :attr:`PersistenceSettings.synchronous`."""

DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024
"""Largest payload, checkpoint or journal entry by default: 8 MiB (twice the default
model answer cap, so an agent's context fits a checkpoint)."""


@attrs.frozen
class PersistenceSettings:
    """The embedded store (SQLite, one file) that keeps durable mailboxes, checkpoints
    and the event journal across process restarts.

    Attributes:
        path: File of the embedded SQLite store. A relative path is taken from the
            working directory; missing parent directories are created. One process
            opens a store at a time (a second one gets ``StoreLocked``). Non-empty,
            no NUL character.
        synchronous: ``"normal"`` (default): a commit survives the process being
            killed (``kill -9``, the OOM killer); a power cut may lose the last
            commits, never the file. ``"full"``: each commit is also flushed to disk
            (``fsync``) before it returns, so it survives a power cut too, at several
            times the cost per commit. Any case; stored in lower case.
        batch_max: Most operations committed together in one transaction. Operations
            that arrive while a commit runs wait for the next one, which takes up to
            this many: a larger batch amortises the commit over more callers. In
            [1, 100000].
        max_record_bytes: Largest payload, checkpoint or journal entry accepted, in
            bytes; a larger one fails with ``RecordTooLarge`` before anything is
            written. In [1, 1 GiB].
        dedupe_window: Seconds a handled (or dead-lettered) message's id is remembered
            after it was settled, so that the same id appended again within this time
            is recognised as a duplicate and not delivered twice. > 0.
        dedupe_capacity: Most message ids remembered at once over the whole store;
            past it the oldest settled ids are forgotten first (before their window
            ends). >= 1.
        dead_letter_capacity: Most dead letters kept over the whole store; past it the
            oldest are deleted. >= 1.
        dead_letter_max_age: Seconds a dead letter is kept; ``None`` keeps it until
            ``dead_letter_capacity`` pushes it out. ``None`` or > 0.
        journal_max_entries: Most journal entries kept over the whole store; past it
            the oldest are deleted. >= 1.
        journal_max_age: Seconds a journal entry is kept; ``None`` keeps it until
            ``journal_max_entries`` pushes it out. ``None`` or > 0.
    """

    path: str = attrs.field(
        default="mister_smith.db", validator=text(r"[^\x00]+", "a file path without NUL")
    )
    synchronous: str = attrs.field(
        default="normal", converter=to_lower, validator=one_of(SYNCHRONOUS_MODES)
    )
    batch_max: int = attrs.field(default=256, validator=integer(minimum=1, maximum=100_000))
    max_record_bytes: int = attrs.field(
        default=DEFAULT_MAX_RECORD_BYTES, validator=integer(minimum=1, maximum=1 << 30)
    )
    dedupe_window: Seconds = attrs.field(
        default=120.0, converter=to_seconds, validator=duration(positive=True)
    )
    dedupe_capacity: int = attrs.field(default=100_000, validator=integer(minimum=1))
    dead_letter_capacity: int = attrs.field(default=10_000, validator=integer(minimum=1))
    dead_letter_max_age: Seconds | None = attrs.field(
        default=7 * 24 * 3600.0,
        converter=to_optional_seconds,
        validator=duration(positive=True, optional=True),
    )
    journal_max_entries: int = attrs.field(default=100_000, validator=integer(minimum=1))
    journal_max_age: Seconds | None = attrs.field(
        default=24 * 3600.0,
        converter=to_optional_seconds,
        validator=duration(positive=True, optional=True),
    )
