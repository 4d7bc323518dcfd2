""":func:`spawn_agent`: an :class:`Agent` as a supervised actor, seen through an
:class:`AgentRef`."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import trio

from ..actors import ActorDomain, ActorSystem, MessageMiddleware, SpawnController
from ..errors import DurabilityUnavailable
from ..supervision import RecoveryPolicy, Supervisor
from ..types import Restart, Role
from ._agent import Agent
from ._agent_ref import AgentRef
from ._checkpoint import AgentCheckpoints
from ._context import Summarizer
from ._handoffs import Handoff
from ._model import Model
from ._spec import AgentSpec
from ._tool_calls import ToolInvoker
from ._usage import UsageBudget

_agent_numbers = itertools.count(1)


async def spawn_agent(
    spawner: ActorSystem | SpawnController,
    spec: AgentSpec,
    model: Model,
    tools: ToolInvoker | None = None,
    *,
    name: str | None = None,
    summarizer: Summarizer | None = None,
    supervisor: Supervisor | ActorDomain | None = None,
    middleware: Sequence[MessageMiddleware] = (),
    restart: Restart | None = None,
    recovery: RecoveryPolicy | None = None,
    handler_timeout: float | None = None,
    spawn_timeout: float | None = None,
    roles: Iterable[Role] = (),
    handoffs: Sequence[Handoff] = (),
    durable: bool = False,
) -> AgentRef:
    """Spawn an :class:`Agent` as a supervised actor and return its ref (an
    :class:`AgentRef`: an ``ActorRef`` that can also :meth:`~AgentRef.stream`).

    Args:
        spawner: An actor system, or a :class:`~mister_smith.actors.SpawnController`
            to stay within the agent bound (→ ``PoolExhausted``).
        spec: The agent's role, prompt and limits.
        model: Its model (kept across restarts; each incarnation starts with an empty
            context).
        tools: The tool bus.
        name: Unique name (default ``<role>-<n>``).
        summarizer: Folds old context (default: extractive).
        supervisor: Where it runs (default: the actor system's supervisor).
        middleware: Wrapped around its handling of each task.
        restart: Restart type (default: the system's).
        recovery: Recovery policy for its crashes (default: the error's own).
        handler_timeout: Longest a task may run before the agent counts as failed.
        spawn_timeout: With a controller, seconds to wait for a free slot.
        roles: :class:`~mister_smith.types.Role` objects (from the actor system's
            ``identities.register_role``) its identity carries: what tools granted to
            roles it may call. ``spec.role`` is a label and grants nothing.
        durable: Keep its tasks in the actor system's store: a task sent with ``tell``
            or ``ask`` is committed first (send it as a string or a mapping), the task's
            state is checkpointed after every turn, and after the process ends the
            pending task is replayed and resumes from its checkpoint (a tool call in
            flight is re-run if its tool is idempotent, else reported to the model as
            "outcome unknown"). Needs a stable ``name``.

    Raises:
        UnknownRole: a role the actor system's authority did not register.
        TypeError: a role given by name (a name is not a credential).
        DurabilityUnavailable: ``durable=True`` in an actor system without a store.
    """
    system = spawner.system if isinstance(spawner, SpawnController) else spawner
    if name is None:
        name = f"{spec.role}-{next(_agent_numbers)}"
        while system.get(name) is not None:
            name = f"{spec.role}-{next(_agent_numbers)}"
    budget = (
        None
        if spec.agent_limits is None
        else UsageBudget(spec.agent_limits, f"agent {name!r}", trio.current_time())
    )
    checkpoints = None
    if durable:
        if system.durable is None:
            raise DurabilityUnavailable(
                f"agent {name!r} cannot be durable: the system has no store"
            )
        checkpoints = AgentCheckpoints(await system.durable.store(), name)
    factory = functools.partial(
        Agent,
        summarizer=summarizer,
        budget=budget,
        handoffs=tuple(handoffs),
        checkpoints=checkpoints,
    )
    options: dict[str, Any] = {
        "name": name,
        "supervisor": supervisor,
        "role": spec.role,
        "capabilities": sorted(spec.capabilities),
        "middleware": middleware,
        "restart": restart,
        "recovery": recovery,
        "handler_timeout": handler_timeout,
        "roles": tuple(roles),
        "durable": durable,
    }
    if isinstance(spawner, SpawnController):
        ref = await spawner.spawn_bounded(
            factory, spec, model, tools, timeout=spawn_timeout, **options
        )
    else:
        ref = await spawner.spawn(factory, spec, model, tools, **options)
    return AgentRef.of(ref)
