"""Agent checkpoints: a durable agent's running task, saved after every turn.

A durable agent (``spawn_agent(..., durable=True)``) keeps the state of the task it works
on in its store under ``agent/<name>/task``: the prompt, the turn, the context window
(messages, which are pinned, and the running summary), the tool calls in flight, the
usage and the counters. It is written with compare-and-set (a second writer gets
``CheckpointConflict``, never a torn or interleaved state) before the turn's tool calls
run and after their results are in the context, and deleted when the task ends (answered
or failed). The task's message stays pending in the durable mailbox until then, so after
the process dies the message is replayed and the agent picks the task up where the
checkpoint left it instead of starting over.

A tool call in flight at the crash is re-run if its tool is declared ``idempotent``;
otherwise the model is told its outcome is unknown (:data:`OUTCOME_UNKNOWN`): it may or
may not have taken effect, and it was not run again.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs

from ..errors import CheckpointUnreadable
from ..persistence import Store
from ._messages import Message, ToolCall
from ._model import Usage

OUTCOME_UNKNOWN = (
    "outcome unknown: the process running this tool call ended before it returned, so "
    "it may or may not have taken effect; it was not run again (the tool is not declared "
    "idempotent). Check before repeating it."
)
"""The tool result a resumed agent reports for a non-idempotent call that was in flight."""


@attrs.frozen
class TaskCheckpoint:
    """A durable agent's task as of its last completed step.

    Attributes:
        prompt: The task's prompt (a replayed task resumes only the checkpoint of the same
            prompt; another one is stale and replaced).
        turn: The last turn whose model answer is in ``messages``.
        messages: The context window's messages, oldest first.
        pinned: Indexes of the pinned messages in ``messages`` (the prompt).
        summary: The context window's running summary.
        pending_tool_calls: Tool calls started in ``turn`` whose results are not in
            ``messages`` yet (empty after the turn finished).
        usage: Tokens used so far.
        tool_calls: Tool calls made so far.
        tool_errors: Of those, the failed ones.
        refused: Tool calls refused for being past the limits.
    """

    prompt: str
    turn: int
    messages: tuple[Message, ...]
    pinned: tuple[int, ...]
    summary: str
    pending_tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = attrs.field(factory=Usage)
    tool_calls: int = 0
    tool_errors: int = 0
    refused: int = 0


_CONVERTER = cattrs.Converter(forbid_extra_keys=True)


def encode_checkpoint(checkpoint: TaskCheckpoint) -> bytes:
    """The bytes a checkpoint is stored as (JSON)."""
    return json.dumps(_CONVERTER.unstructure(checkpoint), separators=(",", ":")).encode()


def decode_checkpoint(key: str, data: bytes) -> TaskCheckpoint:
    """The checkpoint ``data`` holds.

    Raises:
        CheckpointUnreadable: the bytes are not a task checkpoint this version reads.
    """
    try:
        value: Any = json.loads(data)
        return _CONVERTER.structure(value, TaskCheckpoint)
    except Exception as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else f"{type(exc).__name__}: {exc}"
        )
        raise CheckpointUnreadable(
            f"checkpoint {key!r} is not a task checkpoint: {detail}"
        ) from exc


class AgentCheckpoints:
    """Saves, loads and deletes one agent's task checkpoint (compare-and-set).

    Args:
        store: The store (the runtime's, for durable agents).
        agent: The agent's name: the key is ``agent/<name>/task``.
    """

    def __init__(self, store: Store, agent: str) -> None:
        self.store = store
        self.key = f"agent/{agent}/task"
        self._version = 0
        self.saved = 0
        """Checkpoints written by this object."""

    async def load(self) -> TaskCheckpoint | None:
        """The saved task, or ``None``; later saves compare-and-set against it.

        Raises:
            CheckpointUnreadable: what is stored is not a task checkpoint.
        """
        stored = await self.store.get_checkpoint(self.key)
        if stored is None:
            self._version = 0
            return None
        self._version = stored.version
        return decode_checkpoint(self.key, stored.data)

    async def save(self, checkpoint: TaskCheckpoint) -> None:
        """Replace the saved task with ``checkpoint``, whole.

        Raises:
            CheckpointConflict: someone else wrote it since this object last did.
        """
        written = await self.store.put_checkpoint(
            self.key, encode_checkpoint(checkpoint), expected_version=self._version
        )
        self._version = written.version
        self.saved += 1

    async def clear(self) -> None:
        """Delete the saved task (the task ended)."""
        if self._version:
            await self.store.delete_checkpoint(self.key, expected_version=self._version)
        self._version = 0
