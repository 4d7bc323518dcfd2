"""The survey task's embedded reasoning: deterministic models for its three roles.

A *coordinator* lists the source tree and delegates one package to a *surveyor* per
tool call; each surveyor lists its package and reads the files (several at once),
counting lines and public names; a *writer* turns the collected figures into the
report. Every figure comes from the tool results in the conversation — nothing is
known in advance.

Each model keeps its working state in the text of its latest assistant message
(``STATE {json}``), the way a real model keeps notes in its answers, so the work
survives the context window folding older messages into its summary. Failed tool calls
(a crash, a timeout, a flaky read) are retried a bounded number of times, then reported.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..agents import (
    DEFAULT_CATALOG,
    AgentRole,
    Message,
    ModelRequest,
    ModelResponse,
    ScriptedModel,
    ToolCall,
)
from ..agents.script import always, rule

SURVEY_TASK = (
    "Coordinate a survey of the mister_smith package source tree: for each package "
    "count files, lines and public names, and write a report."
)
"""The demo's built-in task (its wording is what the requirements analysis reads)."""

PACKAGE_SUBJECT = "the mister_smith package"
"""What the report is titled after when the survey is of this package."""


def survey_task(subject: str) -> str:
    """The survey task naming what it surveys (``SURVEY_TASK`` for this package)."""
    if subject == PACKAGE_SUBJECT:
        return SURVEY_TASK
    return (
        f"Coordinate a survey of the source tree {subject}: for each package "
        "count files, lines and public names, and write a report."
    )


LIST_TOOL = "list_directory"
READ_TOOL = "read_file"
STATE = "STATE "
READ_BATCH = 3
"""Files a surveyor reads at once (parallel tool calls)."""

MAX_ATTEMPTS = 3
"""Tries per file or package before it is reported as failed."""

ROOT_PACKAGE = "(top level)"

_PACKAGE = re.compile(r"package '([^']+)' at '([^']+)'( \(files directly in it only\))?")


# --- shared helpers -------------------------------------------------------------------


def state_of(request: ModelRequest) -> dict[str, Any] | None:
    """The working state noted in the latest assistant message, if any."""
    last = request.last_assistant_message()
    if last is None or not last.content.startswith(STATE):
        return None
    try:
        state = json.loads(last.content[len(STATE) :])
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def answered_calls(request: ModelRequest) -> list[tuple[ToolCall, Message]]:
    """The latest tool calls paired with their results."""
    last = request.last_assistant_message()
    calls = {call.id: call for call in (last.tool_calls if last is not None else ())}
    pairs = []
    for result in request.tool_results_since_last_assistant():
        call = calls.get(result.tool_call_id or "")
        if call is not None:
            pairs.append((call, result))
    return pairs


def tool_payload(result: Message) -> dict[str, Any] | None:
    """A successful tool result's JSON object (``None`` for errors or clipped text)."""
    if result.is_error:
        return None
    try:
        payload = json.loads(result.content)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def noted(state: Mapping[str, Any], calls: Iterable[ToolCall], progress: float) -> ModelResponse:
    """A response carrying the state note and the next tool calls."""
    return ModelResponse(
        text=STATE + json.dumps(state, sort_keys=True, separators=(",", ":")),
        tool_calls=tuple(calls),
        progress=progress,
    )


def public_names(source: str) -> tuple[list[str], bool]:
    """A module's public names: its ``__all__`` when it declares one (``True``), else
    the top-level classes, functions and assignments not starting with ``_``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], False
    defined: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            defined.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        exported = [
                            element.value
                            for element in node.value.elts
                            if isinstance(element, ast.Constant) and isinstance(element.value, str)
                        ]
                        return sorted(set(exported)), True
                    defined.append(target.id)
    return sorted({name for name in defined if not name.startswith("_")}), False


# --- the surveyor ---------------------------------------------------------------------


def surveyor_turn(request: ModelRequest) -> ModelResponse:
    """One turn of a surveyor: list, read in batches, count, retry, then report."""
    state = state_of(request)
    if state is None:
        task = request.last_user_message()
        match = _PACKAGE.search(task.content if task is not None else "")
        if match is None:
            return ModelResponse(
                text="I survey packages: give me \"package '<name>' at '<path>'\"."
            )
        state = {
            "package": match.group(1),
            "dirs": [match.group(2)],
            "recursive": match.group(3) is None,
            "files": [],
            "pending": [],
            "attempts": {},
            "failed": [],
            "lines": 0,
            "names": [],
            "exported": False,
        }
        return _survey_next(state)
    for call, result in answered_calls(request):
        path = str(call.arguments.get("path", "."))
        payload = tool_payload(result)
        if payload is None:
            _retry(state, path, is_dir=call.name == LIST_TOOL)
        elif call.name == LIST_TOOL:
            for entry in payload.get("entries", ()):
                name, kind = str(entry.get("name", "")), entry.get("type")
                full = name if path in ("", ".") else f"{path}/{name}"
                if kind == "file" and name.endswith(".py"):
                    state["pending"].append(full)
                elif kind == "directory" and state["recursive"] and not name.startswith(("_", ".")):
                    state["dirs"].append(full)
        else:
            _count(state, path, str(payload.get("content", "")))
    return _survey_next(state)


def _retry(state: dict[str, Any], path: str, *, is_dir: bool) -> None:
    attempts = state["attempts"]
    attempts[path] = attempts.get(path, 0) + 1
    if attempts[path] >= MAX_ATTEMPTS:
        state["failed"].append(path)
    else:
        (state["dirs"] if is_dir else state["pending"]).append(path)


def _count(state: dict[str, Any], path: str, content: str) -> None:
    names, exported = public_names(content)
    state["files"].append(path)
    state["lines"] += len(content.splitlines())
    if path.endswith("__init__.py") and exported:
        state["names"], state["exported"] = names, True
    elif not state["exported"]:
        state["names"] = sorted(set(state["names"]) | set(names))


def _survey_next(state: dict[str, Any]) -> ModelResponse:
    calls = [ToolCall("", LIST_TOOL, {"path": path}) for path in state["dirs"]]
    state["dirs"] = []
    batch, state["pending"] = state["pending"][:READ_BATCH], state["pending"][READ_BATCH:]
    calls += [ToolCall("", READ_TOOL, {"path": path}) for path in batch]
    done = len(state["files"]) + len(state["failed"])
    if calls:
        total = done + len(batch) + len(state["pending"])
        return noted(state, calls, done / total if total else 0.0)
    report = {
        "package": state["package"],
        "files": len(state["files"]),
        "lines": state["lines"],
        "public_names": state["names"],
        "names_from": "__all__" if state["exported"] else "definitions",
        "failed": sorted(state["failed"]),
    }
    return ModelResponse(text=json.dumps(report, sort_keys=True), progress=1.0)


# --- the coordinator ------------------------------------------------------------------


def survey_prompt(package: str, path: str) -> str:
    """The task a coordinator gives a surveyor."""
    only_here = " (files directly in it only)" if package == ROOT_PACKAGE else ""
    return (
        f"Survey package '{package}' at '{path}'{only_here}: count its Python files, "
        "their lines and its public names. Answer with a JSON object."
    )


def coordinator_turn(request: ModelRequest, subject: str = PACKAGE_SUBJECT) -> ModelResponse:
    """One turn of the coordinator: list, delegate, retry failures elsewhere, merge.

    ``subject`` (what is surveyed) titles the report.
    """
    surveyors = sorted(t.name for t in request.tools if t.name.startswith("ask_surveyor"))
    writers = sorted(t.name for t in request.tools if t.name.startswith("ask_writer"))
    state = state_of(request)
    if state is None:
        state = {"stage": "listing", "reports": {}, "attempts": {}, "failed": {}}
        return noted(state, [ToolCall("", LIST_TOOL, {"path": "."})], 0.0)
    pairs = answered_calls(request)
    if state["stage"] == "writing":
        for call, result in pairs:
            if call.name in writers and not result.is_error:
                return ModelResponse(text=result.content, progress=1.0)
        text = render_report(state["reports"], state["failed"], subject=subject)
        return ModelResponse(text=text, progress=1.0)
    retry: list[str] = []
    for call, result in pairs:
        if call.name == LIST_TOOL:
            payload = tool_payload(result) or {}
            entries = payload.get("entries", ())
            packages = sorted(
                str(e["name"])
                for e in entries
                if e.get("type") == "directory" and not str(e["name"]).startswith(("_", "."))
            )
            if any(e.get("type") == "file" and str(e["name"]).endswith(".py") for e in entries):
                packages.insert(0, ROOT_PACKAGE)
            state["packages"] = packages
            retry = list(packages)
            continue
        match = _PACKAGE.search(str(call.arguments.get("message", "")))
        if match is None:
            continue
        package = match.group(1)
        report = tool_payload(result)
        if report is not None and "lines" in report:
            state["reports"][package] = report
        else:
            attempts = state["attempts"][package] = state["attempts"].get(package, 0) + 1
            if attempts >= MAX_ATTEMPTS or not surveyors:
                state["failed"][package] = result.content[:200]
            else:
                retry.append(package)
    total = len(state.get("packages", ())) or 1
    done = len(state["reports"]) + len(state["failed"])
    if retry and surveyors:
        state["stage"] = "delegating"
        calls = []
        for index, package in enumerate(retry):
            # a retried package goes to another surveyor than last time
            pick = surveyors[(index + state["attempts"].get(package, 0)) % len(surveyors)]
            path = "." if package == ROOT_PACKAGE else package
            calls.append(ToolCall("", pick, {"message": survey_prompt(package, path)}))
        return noted(state, calls, done / total)
    state["stage"] = "writing"
    data = json.dumps(
        {"subject": subject, "reports": state["reports"], "failed": state["failed"]},
        sort_keys=True,
    )
    if writers:
        message = f"Write the survey report of {subject} from this data. DATA: {data}"
        return noted(state, [ToolCall("", writers[0], {"message": message})], 0.95)
    text = render_report(state["reports"], state["failed"], subject=subject)
    return ModelResponse(text=text, progress=1.0)


# --- the writer -----------------------------------------------------------------------


def writer_turn(request: ModelRequest) -> ModelResponse:
    """The writer formats the data it is given into the report."""
    task = request.last_user_message()
    text = task.content if task is not None else ""
    marker = text.find("DATA:")
    try:
        data = json.loads(text[marker + len("DATA:") :]) if marker >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ModelResponse(text="I need the survey data after 'DATA:' to write the report.")
    subject = data.get("subject")
    report = render_report(
        data.get("reports", {}),
        data.get("failed", {}),
        subject=subject if isinstance(subject, str) and subject else PACKAGE_SUBJECT,
    )
    return ModelResponse(text=report, progress=1.0)


def render_report(
    reports: Mapping[str, Any], failed: Mapping[str, str], *, subject: str = PACKAGE_SUBJECT
) -> str:
    """The survey report of ``subject``: a row per package, totals, what was not surveyed."""
    rows = sorted(reports.values(), key=lambda r: str(r["package"]))
    width = max([len("package"), *(len(str(r["package"])) for r in rows)])
    lines = [
        f"Survey of {subject}",
        "",
        f"{'package':<{width}}  {'files':>5}  {'lines':>6}  {'public':>6}  examples",
        f"{'-' * width}  {'-' * 5}  {'-' * 6}  {'-' * 6}  {'-' * 30}",
    ]
    total_files = total_lines = total_names = 0
    for r in rows:
        names = list(r.get("public_names", ()))
        examples = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        figures = f"{r['files']:>5}  {r['lines']:>6}  {len(names):>6}"
        lines.append(f"{r['package']:<{width}}  {figures}  {examples}")
        total_files += int(r["files"])
        total_lines += int(r["lines"])
        total_names += len(names)
        if r.get("failed"):
            lines.append(f"{'':<{width}}  unreadable: {', '.join(r['failed'])}")
    lines.append(f"{'-' * width}  {'-' * 5}  {'-' * 6}  {'-' * 6}")
    lines.append(f"{'total':<{width}}  {total_files:>5}  {total_lines:>6}  {total_names:>6}")
    for package, reason in sorted(failed.items()):
        lines.append(f"not surveyed: {package} ({reason})")
    return "\n".join(lines)


# --- roles and models ---------------------------------------------------------------------

SURVEY_PROMPTS = {
    "coordinator": (
        "You coordinate a survey of a Python source tree. First list the workspace root "
        f"with {LIST_TOOL}. Then delegate every package directory to the surveyors "
        "(the tools whose names start with ask_surveyor), one call per package, all at "
        "once, with the message "
        "\"Survey package '<name>' at '<name>': count its Python files, their lines and "
        'its public names. Answer with a JSON object." If a delegation fails, give the '
        "package to another surveyor (at most 3 tries). When every package is done, "
        "call ask_writer with all the JSON answers after 'DATA:' and answer with the "
        "writer's report unchanged."
    ),
    "surveyor": (
        f"You survey one package. List its directory with {LIST_TOOL}, read every .py "
        f"file with {READ_TOOL} (several at once), retry a failed read up to 3 times, "
        "count lines and public names (a module's __all__, else its public top-level "
        'definitions), and answer only with JSON: {"package", "files", "lines", '
        '"public_names", "failed"}.'
    ),
    "writer": (
        "You write the survey report: a table with one row per package (files, lines, "
        "number of public names and three examples), the totals, and the packages that "
        "could not be surveyed. Use only the data you are given."
    ),
}

_TURNS = {"coordinator": coordinator_turn, "surveyor": surveyor_turn, "writer": writer_turn}


def survey_roles() -> list[AgentRole]:
    """The catalog roles with the survey's instructions and tools.

    The coordinator's own model is offered only the listing (and, added by the team,
    the delegate tools), although its identity is granted reading too: the surveyors
    read on its behalf, and delegation never lets a delegate do what its lead may not.
    """
    tools = {"coordinator": {LIST_TOOL}, "surveyor": {LIST_TOOL, READ_TOOL}, "writer": set()}
    roles = []
    for name in ("coordinator", "surveyor", "writer"):
        role = DEFAULT_CATALOG.get(name)
        allowed = tools[name]
        roles.append(
            AgentRole(
                role.name,
                role.description,
                role.keywords,
                role.capabilities,
                None if allowed is None else frozenset(allowed),
                SURVEY_PROMPTS[name],
                max_turns=40,
            )
        )
    return roles


def survey_model(
    role: str, *, latency: float = 0.0, subject: str = PACKAGE_SUBJECT
) -> ScriptedModel:
    """The embedded model playing ``role`` in the survey of ``subject`` (the report title)."""
    try:
        turn = _TURNS[role]
    except KeyError:
        raise ValueError(f"the survey has no {role!r} role") from None
    if role == "coordinator":
        turn = functools.partial(coordinator_turn, subject=subject)
    return ScriptedModel([rule(always, turn, role)], name=f"scripted-{role}", latency=latency)
