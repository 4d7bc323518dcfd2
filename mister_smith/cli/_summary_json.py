"""JSON output for scripts (``--json``): the run summary and the configuration.

The same facts as the printed summary (see ``_session.print_summary``), as one JSON
object on standard output, while progress and the human summary go to standard error.
Error texts are included (this is the operator's own terminal, unlike the observer
page); message contents are not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from ..config import AgentConfig
from ..config._converter import config_converter

if TYPE_CHECKING:
    from ._session import Outcome

__all__ = ["config_json", "summary_json", "write_summary_json"]


def config_json(config: AgentConfig) -> str:
    """``mister-smith config --json``: the configuration as JSON (``None`` as null)."""
    return json.dumps(config_converter.unstructure(config), indent=2) + "\n"


def summary_json(task: str, outcome: Outcome) -> dict[str, Any]:
    """The summary of a run of ``task`` as plain JSON-able data."""
    if outcome.result is not None:
        status = "completed"
    elif outcome.interrupted:
        status = "interrupted"
    else:
        status = "failed"
    error = outcome.error
    record = outcome.record
    tools: dict[str, dict[str, int]] = {}
    if outcome.tools is not None:
        for stats in sorted(outcome.tools.tools.values(), key=lambda t: t.name):
            if stats.calls:
                tools[stats.name] = {
                    "calls": stats.calls,
                    "succeeded": stats.succeeded,
                    "failures": stats.failures,
                    "timeouts": stats.timeouts,
                    "denied": stats.denied,
                }
    actors = outcome.actors
    return {
        "task": task,
        "status": status,
        "exit_code": outcome.exit_code,
        "duration": round(outcome.duration, 3),
        "team": outcome.team or None,
        "composition": outcome.composition or None,
        "result": outcome.result.answer if outcome.result is not None else None,
        "error": None if error is None else {"type": type(error).__name__, "message": str(error)},
        "restarts": len(record.recoveries),
        "failures": [
            {
                "child": decision.child,
                "supervisor": decision.supervisor,
                "error_type": decision.error_type,
                "action": decision.action.value,
            }
            for decision in record.decisions
            if decision.error_type
        ],
        "tool_calls": tools,
        "dead_letters": len(outcome.dead_letters),
        "agents": {
            "tasks_done": record.completed_tasks,
            "tasks_failed": len(record.failed_tasks),
            "context_folds": record.folds,
            "tokens": record.tokens,
            "model_calls": record.model_calls,
        },
        "messages": {
            "accepted": actors.accepted,
            "handled": actors.handled,
            "dead_lettered": actors.dead_lettered,
            "invariant_holds": outcome.invariant_holds,
        },
    }


def write_summary_json(task: str, outcome: Outcome, out: TextIO) -> None:
    """Write :func:`summary_json` to ``out`` as one line of JSON."""
    out.write(json.dumps(summary_json(task, outcome), sort_keys=True) + "\n")
    out.flush()
