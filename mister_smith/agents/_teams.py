"""Dynamic teams: spawn only the roles a task needs, under their own domain supervisor,
and coordinate them as a pipeline, a fan-out with a merge step, or a lead with delegates."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

import attrs
import trio

from ..actors import ActorDomain, ActorRef, MessageMiddleware, SpawnController
from ..errors import ActorCrashed, ActorStopped, AskTimeout, TaskTimeout
from ..supervision import SupervisionTree, Supervisor, TreeSnapshot, snapshot
from ..tools import AgentTool, ToolBus
from ..types import Restart, Role
from ._agent import Agent
from ._delegate import AgentEndpoint
from ._errors import TeamError
from ._handoffs import Handoff
from ._messages import Message
from ._model import Model, Usage
from ._roles import (
    DEFAULT_CATALOG,
    AgentRole,
    CoordinationMode,
    RoleCatalog,
    analyze_requirements,
    choose_coordination,
    replicas_for,
)
from ._spec import AgentSpec
from ._task import AgentResult, AgentTask
from ._tool_calls import ToolInvoker
from ._usage import UsageBudget, UsageLimits

logger = logging.getLogger("mister_smith.agents.teams")

_team_numbers = itertools.count(1)

Merge = Callable[[str, Sequence[AgentResult]], str]
"""Combines the answers of a fan-out when no member has the ``merge`` capability."""

Split = Callable[[str], Sequence[str]]
"""Splits a fan-out task into parts (default: every worker gets the whole task)."""


@attrs.frozen
class TeamMember:
    """One spawned member of a team."""

    role: AgentRole
    ref: ActorRef

    @property
    def name(self) -> str:
        """The member's actor name."""
        return self.ref.name


@attrs.frozen
class TeamResult:
    """What a team produced for a task.

    Attributes:
        task: The task.
        answer: The team's answer.
        mode: How the members worked together.
        results: Every member answer, in the order they were used.
        usage: Tokens used by all members (delegated work included once).
        duration: Seconds on the Trio clock.
    """

    task: str
    answer: str
    mode: CoordinationMode
    results: tuple[AgentResult, ...]
    usage: Usage
    duration: float


def join_answers(task: str, results: Sequence[AgentResult]) -> str:
    """The default merge: each answer under a heading naming who wrote it."""
    return "\n\n".join(f"## {r.agent} ({r.role})\n{r.answer}" for r in results)


def tool_name_for(member: str) -> str:
    """The delegate tool name for a member: ``ask_<name>`` with only ``[A-Za-z0-9_-]``."""
    return "ask_" + re.sub(r"[^A-Za-z0-9_-]", "_", member.rsplit(".", 1)[-1])


class Team:
    """Agents spawned for one task under their own domain supervisor.

    Build one with :func:`create_dynamic_team`; run tasks with :meth:`run`; stop it with
    :meth:`stop` (or use it as an async context manager). A member that crashes is
    restarted by the team's supervisor and, when it was working on a team task, asked
    again up to ``retries`` times. When members crash faster than the team's intensity
    allows, the team's supervisor gives up and its parent restarts the whole team (an
    :class:`~mister_smith.actors.ActorDomain`: same members, fresh incarnations), counted
    in the team's own restart budget there; once that is spent the team is stopped for
    good. Other teams are never touched.
    """

    def __init__(
        self,
        name: str,
        mode: CoordinationMode,
        members: Sequence[TeamMember],
        *,
        supervisor: ActorDomain | Supervisor,
        parent: Supervisor,
        controller: SpawnController,
        tools: ToolInvoker | None = None,
        delegate_tools: Sequence[str] = (),
        retries: int = 1,
        split: Split | None = None,
        merge: Merge | None = None,
        budget: UsageBudget | None = None,
    ) -> None:
        if not members:
            raise TeamError(f"team {name!r} has no members")
        self.name = name
        self.mode = mode
        self.members = tuple(members)
        self.domain = supervisor
        self.parent = parent
        self.controller = controller
        self.tools = tools
        self.delegate_tools = tuple(delegate_tools)
        self.retries = retries
        self.split = split
        self.merge = merge or join_answers
        self.budget = budget
        self._budgets: tuple[UsageBudget, ...] = () if budget is None else (budget,)
        self._stopped = False

    _run_budgets: ClassVar[contextvars.ContextVar[tuple[UsageBudget, ...]]] = (
        contextvars.ContextVar("mister_smith_team_budgets", default=())
    )
    """The budgets of the run in progress (a context variable: runs of one team may
    overlap, each in its own task)."""

    # -- structure ----------------------------------------------------------------------

    @property
    def supervisor(self) -> Supervisor:
        """The team's supervisor now (a new one after the team was restarted)."""
        domain = self.domain
        return domain.supervisor if isinstance(domain, ActorDomain) else domain

    @property
    def roles(self) -> list[str]:
        """The members' roles, in member order."""
        return [member.role.name for member in self.members]

    @property
    def lead(self) -> TeamMember:
        """The member with the ``coordinate`` capability (else the first)."""
        for member in self.members:
            if "coordinate" in member.role.capabilities:
                return member
        return self.members[0]

    @property
    def triage(self) -> TeamMember:
        """The member that hands tasks on in triage mode (the ``triage`` capability,
        else the first)."""
        for member in self.members:
            if "triage" in member.role.capabilities:
                return member
        return self.members[0]

    @property
    def merger(self) -> TeamMember | None:
        """The member that merges a fan-out (the last with the ``merge`` capability)."""
        mergers = [m for m in self.members if "merge" in m.role.capabilities]
        workers = [m for m in self.members if "merge" not in m.role.capabilities]
        return mergers[-1] if mergers and workers else None

    @property
    def workers(self) -> list[TeamMember]:
        """The members a fan-out gives the task to."""
        merger = self.merger
        return [m for m in self.members if m is not merger]

    def snapshot(self) -> TreeSnapshot:
        """The team's supervision subtree."""
        return snapshot(self.supervisor)

    # -- running ------------------------------------------------------------------------

    async def run(
        self, task: str, *, timeout: float | None = None, usage_limits: UsageLimits | None = None
    ) -> TeamResult:
        """Work on ``task`` in the team's coordination mode.

        Every member task counts against the team's budget (``usage_limits`` given to
        :func:`create_dynamic_team`) and, when given, against ``usage_limits`` for this
        run alone.

        Raises:
            TaskTimeout: not done within ``timeout`` seconds.
            TeamError: a member failed for good (crashed beyond its retries, stopped),
                or a usage limit was reached (the :class:`UsageLimitExceeded` is its
                ``__cause__``'s cause).
        """
        if self._stopped:
            raise TeamError(f"team {self.name!r} is stopped")
        started = trio.current_time()
        budgets = self._budgets
        if usage_limits is not None:
            budgets = (*budgets, UsageBudget(usage_limits, f"team {self.name!r} run", started))
        token = self._run_budgets.set(budgets)
        deadline = math.inf if timeout is None else started + timeout
        results: list[AgentResult] = []
        try:
            with trio.move_on_at(deadline) as scope:
                if self.mode is CoordinationMode.PIPELINE:
                    answer = await self._pipeline(task, deadline, results)
                elif self.mode is CoordinationMode.PARALLEL:
                    answer = await self._fan_out(task, deadline, results)
                elif self.mode is CoordinationMode.TRIAGE:
                    answer = await self._triage(task, deadline, results)
                else:
                    answer = await self._lead(task, deadline, results)
        finally:
            self._run_budgets.reset(token)
        if scope.cancelled_caught:
            raise TaskTimeout(f"team {self.name!r} did not finish within {timeout} s")
        usage = sum((r.usage for r in results), Usage())
        return TeamResult(
            task, answer, self.mode, tuple(results), usage, trio.current_time() - started
        )

    async def _ask(self, member: TeamMember, task: AgentTask) -> AgentResult:
        endpoint = AgentEndpoint(member.ref, retries=self.retries, full_result=True)
        try:
            result: AgentResult = await endpoint.ask(task)
        except (ActorCrashed, ActorStopped, AskTimeout) as exc:
            cause = exc.__cause__ if isinstance(exc, ActorCrashed) else exc
            raise TeamError(
                f"team {self.name!r}: member {member.name!r} failed: "
                f"{type(cause).__name__}: {cause}"
            ) from exc
        return result

    def _task(self, prompt: str, deadline: float, context: Sequence[Message] = ()) -> AgentTask:
        return AgentTask(
            prompt,
            deadline=None if math.isinf(deadline) else deadline,
            context=tuple(context),
            correlation_id=self.name,
            budgets=self._run_budgets.get(),
        )

    async def _pipeline(self, task: str, deadline: float, results: list[AgentResult]) -> str:
        context: list[Message] = []
        answer = ""
        for member in self.members:
            result = await self._ask(member, self._task(task, deadline, context))
            results.append(result)
            answer = result.answer
            context = [
                Message.user(f"Input from the {member.role.name} ({member.name}):\n{answer}")
            ]
        return answer

    async def _fan_out(self, task: str, deadline: float, results: list[AgentResult]) -> str:
        workers = self.workers
        parts = list(self.split(task)) if self.split is not None else [task] * len(workers)
        answers: list[AgentResult | None] = [None] * len(parts)

        async def work(index: int) -> None:
            member = workers[index % len(workers)]
            answers[index] = await self._ask(member, self._task(parts[index], deadline))

        async with trio.open_nursery() as nursery:
            for index in range(len(parts)):
                nursery.start_soon(work, index)
        done = [a for a in answers if a is not None]
        results.extend(done)
        merger = self.merger
        if merger is None:
            return self.merge(task, done)
        inputs = [Message.user(f"Input from the {r.role} ({r.agent}):\n{r.answer}") for r in done]
        merged = await self._ask(merger, self._task(task, deadline, inputs))
        results.append(merged)
        return merged.answer

    async def _triage(self, task: str, deadline: float, results: list[AgentResult]) -> str:
        result = await self._ask(self.triage, self._task(task, deadline))
        results.append(result)
        return result.answer

    async def _lead(self, task: str, deadline: float, results: list[AgentResult]) -> str:
        result = await self._ask(self.lead, self._task(task, deadline))
        results.append(result)
        return result.answer

    # -- stopping -----------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every member and the team's supervisor; unregister delegate tools."""
        if self._stopped:
            await trio.lowlevel.checkpoint()
            return
        self._stopped = True
        await _dismantle(
            self.tools,
            self.delegate_tools,
            self.controller,
            self.members,
            self.parent,
            self.domain,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self.stop()


ModelChoice = Model | Callable[[AgentRole], Model]
"""One model for every member, or a function choosing each role's model."""


async def create_dynamic_team(
    task: str,
    *,
    controller: SpawnController,
    model: ModelChoice,
    tools: ToolInvoker | None = None,
    supervisor: Supervisor | SupervisionTree | None = None,
    roles: Sequence[AgentRole] | None = None,
    catalog: RoleCatalog = DEFAULT_CATALOG,
    mode: CoordinationMode | None = None,
    replicas: Mapping[str, int] | None = None,
    name: str | None = None,
    customize: Callable[[AgentRole, AgentSpec], AgentSpec] | None = None,
    middleware: Sequence[MessageMiddleware] = (),
    retries: int = 1,
    max_restarts: int = 3,
    restart_window: float = 60.0,
    spawn_timeout: float | None = None,
    split: Split | None = None,
    merge: Merge | None = None,
    bind_roles: Iterable[Role] = (),
    usage_limits: UsageLimits | None = None,
) -> Team:
    """Compose a team for ``task``: only the roles it needs, spawned within bounds.

    The roles come from :func:`analyze_requirements` unless given; the coordination
    mode from :func:`choose_coordination` unless given. The team gets a domain
    supervisor of its own (``team-<name>``) under ``supervisor`` (default: the actor
    system's), and every member is spawned through ``controller`` so the system-wide
    agent bound holds (→ :class:`~mister_smith.errors.PoolExhausted`, after which the
    members already spawned are stopped again). In lead mode every other member is
    registered on ``tools`` as a delegate tool (``ask_<member>``) granted to the lead's
    identity, and each delegate works on the lead's behalf (it may only call tools the
    lead may call too).

    Permissions: a member's identity carries a role only if ``bind_roles`` holds the
    :class:`~mister_smith.types.Role` object named like its :class:`AgentRole`. Role
    names chosen while composing the team (by the requirements analysis, a model, a
    catalog, ``customize``) are labels and grant nothing by themselves; ``bind_roles``
    is the ceiling the application sets.

    Args:
        task: What the team is for.
        controller: Bounded spawning (its actor system hosts the members).
        model: The members' model, or a function of the role choosing it.
        tools: The tool bus the members call tools through.
        supervisor: Parent of the team's domain supervisor (a supervisor or a
            :class:`~mister_smith.supervision.SupervisionTree`).
        roles: The roles (default: analysed from ``task`` with ``catalog``).
        catalog: Where roles come from.
        mode: Coordination mode (default: chosen from the task and roles).
        replicas: Members per role name (default 1 each).
        name: Team name (default ``team-<n>``).
        customize: Adjusts each member's :class:`AgentSpec`.
        middleware: Wrapped around every member's message handling.
        retries: Times a member that crashed on a team task is asked again.
        max_restarts: Restart intensity of the team's supervisor...
        restart_window: ...within this many seconds.
        spawn_timeout: Seconds to wait for a free agent slot (``None``: refuse at once).
        split: Splits a fan-out task into parts.
        merge: Merges fan-out answers when no member merges.
        bind_roles: Role objects (from the actor system's ``identities``) members may
            carry, each given to the members of the same-named role.
        usage_limits: The team's usage budget over all its runs, shared by every
            member (delegated work included): a member task past it stops with
            :class:`UsageLimitExceeded`.
    """
    chosen = list(roles) if roles is not None else analyze_requirements(task, catalog=catalog)
    if not chosen:
        raise TeamError("a team needs at least one role")
    team_mode = mode if mode is not None else choose_coordination(task, chosen)
    team_name = name or f"team-{next(_team_numbers)}"
    bindable: dict[str, Role] = {}
    for bound in bind_roles:
        if not isinstance(bound, Role):
            raise TypeError(
                f"bind_roles takes Role objects from identities.register_role(), got "
                f"{bound!r} (a name is not a credential)"
            )
        bindable[bound.name] = bound
    counts = replicas_for(chosen, replicas)  # checked before anything is started
    budget = (
        None
        if usage_limits is None
        else UsageBudget(usage_limits, f"team {team_name!r}", trio.current_time())
    )
    system = controller.system
    if isinstance(supervisor, SupervisionTree):
        domain = await supervisor.domain_supervisor(f"team-{team_name}")
        parent = supervisor.root
        team_domain: ActorDomain | Supervisor = domain
    else:
        # A domain of its own: OTP intensity for the team (its members depend on each
        # other); when it gives up, the parent restarts the team with its members,
        # counted in the team's budget under the parent (the parent's per-child limit).
        team_domain = await system.start_domain(
            f"team-{team_name}",
            parent=supervisor,
            max_restarts=max_restarts,
            restart_window=restart_window,
            child_limit=None,
            restart=Restart.TRANSIENT,
        )
        domain = team_domain.supervisor
        parent = team_domain.parent_supervisor() or system.supervisor
    names: list[tuple[AgentRole, str]] = []
    for role, count in zip(chosen, counts, strict=True):
        for index in range(1, count + 1):
            suffix = f"-{index}" if count > 1 else ""
            names.append((role, f"{team_name}.{role.name}{suffix}"))
    lead_name = next((n for r, n in names if "coordinate" in r.capabilities), names[0][1])
    triage_name = next((n for r, n in names if "triage" in r.capabilities), names[0][1])
    if team_mode is CoordinationMode.TRIAGE:  # its handoffs need the others spawned first
        names.sort(key=lambda entry: entry[1] == triage_name)
    delegate_names = (
        [n for _, n in names if n != lead_name] if team_mode is CoordinationMode.LEAD else []
    )
    members: list[TeamMember] = []
    registered: list[str] = []
    try:
        for role, member_name in names:
            spec = role.spec()
            if member_name == lead_name and delegate_names and spec.allowed_tools is not None:
                spec = attrs.evolve(
                    spec,
                    allowed_tools=spec.allowed_tools | {tool_name_for(n) for n in delegate_names},
                )
            if customize is not None:
                spec = customize(role, spec)
            member_model = model(role) if callable(model) and not _is_model(model) else model
            factory: Any = Agent
            if team_mode is CoordinationMode.TRIAGE and member_name == triage_name:
                factory = functools.partial(
                    Agent,
                    handoffs=[
                        Handoff(m.ref, f"Hand over to {m.name}, the team's {m.role.name}, "
                                f"who {m.role.description}.")
                        for m in members
                    ],
                )  # fmt: skip
            ref = await controller.spawn_bounded(
                factory,
                spec,
                member_model,
                tools,
                name=member_name,
                supervisor=team_domain,
                role=role.name,
                capabilities=sorted(role.capabilities),
                middleware=middleware,
                timeout=spawn_timeout,
                roles=(bindable[role.name],) if role.name in bindable else (),
            )
            members.append(TeamMember(role, ref))
        if delegate_names:
            _register_delegates(tools, members, lead_name, retries, registered, budget)
    except BaseException:
        with trio.CancelScope(shield=True):
            await _dismantle(tools, registered, controller, members, parent, team_domain)
        raise
    logger.info(
        "team %s: %s mode, members %s", team_name, team_mode.value, [m.name for m in members]
    )
    return Team(
        team_name,
        team_mode,
        members,
        supervisor=team_domain,
        parent=parent,
        controller=controller,
        tools=tools,
        delegate_tools=registered,
        retries=retries,
        split=split,
        merge=merge,
        budget=budget,
    )


def _is_model(candidate: Any) -> bool:
    return callable(getattr(candidate, "complete", None))


async def _dismantle(
    tools: ToolInvoker | None,
    delegate_tools: Sequence[str],
    controller: SpawnController,
    members: Sequence[TeamMember],
    parent: Supervisor,
    domain: ActorDomain | Supervisor,
) -> None:
    """Unregister the delegate tools, stop the members, then their supervisor."""
    unregister = getattr(tools, "unregister_tool", None)
    if callable(unregister):
        for tool in delegate_tools:
            with contextlib.suppress(LookupError):
                unregister(tool)
    for member in reversed(members):
        await controller.system.stop(member.ref)
    with contextlib.suppress(LookupError):
        if isinstance(domain, ActorDomain):
            parent = domain.parent_supervisor() or parent
        await parent.stop_child(domain.name)


def _register_delegates(
    tools: ToolInvoker | None,
    members: Sequence[TeamMember],
    lead: str,
    retries: int,
    registered: list[str],
    budget: UsageBudget | None = None,
) -> None:
    """Register every member but the lead as an agent tool granted to the lead's identity
    (only), asked on the lead's behalf."""
    if not isinstance(tools, ToolBus):
        raise TeamError("lead-and-delegates mode needs a ToolBus for the delegate tools")
    lead_member = next(m for m in members if m.name == lead)
    for member in members:
        if member.name == lead:
            continue
        tool_name = tool_name_for(member.name)
        agent_tool = AgentTool(
            AgentEndpoint(member.ref, retries=retries, budgets=() if budget is None else (budget,)),
            name=tool_name,
            description=f"Delegate a task to {member.name}, the team's {member.role.name}, "
            f"who {member.role.description}. Put the whole task in 'message'.",
        )
        tools.register_tool(agent_tool, policy="deny", callers=[lead_member.ref])
        registered.append(tool_name)
