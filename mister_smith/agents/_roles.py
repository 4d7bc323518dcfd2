"""Roles and the rule-based requirements analysis that picks them for a task."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence

import attrs

from ._messages import Message
from ._model import Model, ModelLimits, ModelRequest
from ._spec import AgentSpec, ContextSettings


def _strings(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


def _keywords(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class AgentRole:
    """A kind of team member: what it is for, when it is needed, what it may use.

    Attributes:
        name: Short name (``"researcher"``); members are named after it.
        description: One line on what the role does (shown to models).
        keywords: Regular expressions; a task matching any needs this role.
        capabilities: Declared capabilities (``"coordinate"`` marks a lead,
            ``"merge"`` a merge step).
        tools: Tools a member may call (``None``: whatever the tool bus grants).
        system_prompt: The member's instructions.
        max_turns: The member's turn limit per task.
    """

    name: str
    description: str
    keywords: tuple[str, ...] = attrs.field(default=(), converter=_keywords)
    capabilities: frozenset[str] = attrs.field(default=frozenset(), converter=_strings)
    tools: frozenset[str] | None = attrs.field(default=None, converter=_names)
    system_prompt: str = ""
    max_turns: int = 10

    def matches(self, task: str) -> bool:
        """Whether ``task`` mentions anything this role is for."""
        return any(re.search(rf"\b{k}", task, re.IGNORECASE) for k in self.keywords)

    def spec(self, **overrides: object) -> AgentSpec:
        """An :class:`AgentSpec` for a member in this role (fields may be overridden)."""
        values: dict[str, object] = {
            "role": self.name,
            "system_prompt": self.system_prompt
            or f"You are the team's {self.name}: {self.description}",
            "capabilities": self.capabilities,
            "allowed_tools": self.tools,
            "max_turns": self.max_turns,
            "limits": ModelLimits(),
            "context": ContextSettings(),
        }
        values.update(overrides)
        return AgentSpec(**values)  # type: ignore[arg-type]


def _roles(value: Iterable[AgentRole]) -> tuple[AgentRole, ...]:
    return tuple(value)


@attrs.frozen
class RoleCatalog:
    """The roles a team may draw from, in pipeline order, and the fallback role."""

    roles: tuple[AgentRole, ...] = attrs.field(converter=_roles)
    fallback: AgentRole

    def __attrs_post_init__(self) -> None:
        names = [role.name for role in (*self.roles, self.fallback)]
        if len(set(names)) != len(names):
            raise ValueError(f"role names must be unique, got {names}")

    def get(self, name: str) -> AgentRole:
        """The role called ``name``.

        Raises:
            KeyError: no such role.
        """
        for role in (*self.roles, self.fallback):
            if role.name == name:
                return role
        raise KeyError(name)

    def names(self) -> list[str]:
        """Every role name, fallback last."""
        return [role.name for role in (*self.roles, self.fallback)]

    def with_roles(self, *roles: AgentRole) -> RoleCatalog:
        """A catalog with ``roles`` replacing same-named ones (or added at the end)."""
        replaced = {role.name: role for role in roles}
        kept = [replaced.pop(role.name, role) for role in self.roles]
        fallback = replaced.pop(self.fallback.name, self.fallback)
        return RoleCatalog((*kept, *replaced.values()), fallback)


DEFAULT_CATALOG = RoleCatalog(
    (
        AgentRole(
            "coordinator",
            "plans the work, delegates parts of it to the other members and assembles "
            "their answers",
            (r"coordinat", r"delegat", r"orchestrat", r"organi[sz]e", r"plan\b"),
            {"coordinate", "plan"},
        ),
        AgentRole(
            "researcher",
            "finds and gathers information from the sources it is given",
            (r"research", r"search", r"find\b", r"investigat", r"look up", r"gather"),
            {"research"},
        ),
        AgentRole(
            "surveyor",
            "walks a file tree, reads the files and records facts about each",
            (r"survey", r"inventor", r"source tree", r"scan", r"explor", r"catalog", r"count"),
            {"read_files", "survey"},
        ),
        AgentRole(
            "analyst",
            "computes statistics and compares figures",
            (r"analy[sz]", r"statistic", r"metric", r"compar", r"measur", r"trend"),
            {"analyze"},
        ),
        AgentRole(
            "engineer",
            "writes and changes code",
            (r"implement", r"refactor", r"fix\b", r"build\b", r"code\b", r"program"),
            {"write_code"},
        ),
        AgentRole(
            "reviewer",
            "checks work for mistakes and gaps",
            (r"review", r"verif", r"audit", r"validat", r"check\b", r"proofread"),
            {"review"},
        ),
        AgentRole(
            "writer",
            "writes the final text: reports, summaries, documentation; merges parts",
            (r"report", r"summar", r"document", r"write[- ]?up", r"explain", r"draft", r"essay"),
            {"write", "merge"},
        ),
    ),
    AgentRole("generalist", "does whatever the task needs", (), {"general"}),
)
"""The built-in roles. No team is fixed: each task gets only the roles it mentions."""


def analyze_requirements(task: str, *, catalog: RoleCatalog = DEFAULT_CATALOG) -> list[AgentRole]:
    """The roles ``task`` needs, by rule: every catalog role whose keywords it mentions,
    in catalog (pipeline) order; the fallback role alone when none matches."""
    roles = [role for role in catalog.roles if role.matches(task)]
    return roles or [catalog.fallback]


async def analyze_requirements_with_model(
    task: str, model: Model, *, catalog: RoleCatalog = DEFAULT_CATALOG
) -> list[AgentRole]:
    """Ask ``model`` which catalog roles ``task`` needs (a JSON list of names).

    Unknown names are ignored; an unusable answer or a model failure falls back to
    :func:`analyze_requirements`. The result keeps catalog order.
    """
    menu = "\n".join(f"- {role.name}: {role.description}" for role in catalog.roles)
    request = ModelRequest(
        (
            Message.system(
                "You compose agent teams. Choose the fewest roles that can do the task. "
                'Answer with a JSON list of role names only, e.g. ["researcher", "writer"].'
                f"\nRoles:\n{menu}"
            ),
            Message.user(task),
        ),
        limits=ModelLimits(max_output_tokens=100),
    )
    try:
        response = await model.complete(request)
        match = re.search(r"\[.*?\]", response.text, re.DOTALL)
        names = json.loads(match.group(0)) if match else []
    except (Exception, json.JSONDecodeError):
        return analyze_requirements(task, catalog=catalog)
    wanted = {str(name).strip().lower() for name in names if isinstance(name, str)}
    roles = [role for role in catalog.roles if role.name in wanted]
    return roles or analyze_requirements(task, catalog=catalog)


class CoordinationMode(enum.Enum):
    """How a team's members work together on a task."""

    PIPELINE = "pipeline"
    """Each member in turn; each gets the previous member's answer as input."""

    PARALLEL = "parallel"
    """Workers take the task (or its parts) at once; a merge step combines the answers."""

    LEAD = "lead"
    """A lead works on the task and calls the other members as tools when it wants."""

    TRIAGE = "triage"
    """A triage member reads the task and hands the whole conversation to the member
    fit for it (a :class:`~mister_smith.agents.Handoff` to each), who answers."""


_FAN_OUT = re.compile(
    r"\b(for each|for every|per (file|package|item|module|part|section)|in parallel|each of)\b",
    re.IGNORECASE,
)


def choose_coordination(task: str, roles: Sequence[AgentRole]) -> CoordinationMode:
    """A triage role means triage and handoffs; a coordinating role means
    lead-and-delegates; a task over many parts means fan-out; otherwise a pipeline in
    role order."""
    if len(roles) > 1 and any("triage" in role.capabilities for role in roles):
        return CoordinationMode.TRIAGE
    if len(roles) > 1 and any("coordinate" in role.capabilities for role in roles):
        return CoordinationMode.LEAD
    if _FAN_OUT.search(task) and len(roles) > 1:
        return CoordinationMode.PARALLEL
    return CoordinationMode.PIPELINE


def replicas_for(roles: Sequence[AgentRole], replicas: Mapping[str, int] | None) -> list[int]:
    """How many members each role gets (1 unless ``replicas`` says otherwise)."""
    counts = []
    for role in roles:
        count = 1 if replicas is None else replicas.get(role.name, 1)
        if count < 1:
            raise ValueError(f"replicas of {role.name!r} must be >= 1, got {count!r}")
        counts.append(count)
    return counts
