"""Rule helpers for :class:`~mister_smith.agents.ScriptedModel`: predicates on the
conversation and responders building the answer.

.. code-block:: python

    from mister_smith.agents import ScriptedModel
    from mister_smith.agents.script import after_tool, answer_with_tool_results, call_tools
    from mister_smith.agents.script import first_turn, rule

    model = ScriptedModel([
        rule(first_turn, call_tools(("echo", {"message": "hi"}))),
        rule(after_tool("echo"), answer_with_tool_results("The echo said: {results}")),
    ])
"""

from ._scripted import Predicate as Predicate
from ._scripted import Responder as Responder
from ._scripted import after_tool as after_tool
from ._scripted import always as always
from ._scripted import answer as answer
from ._scripted import answer_with_tool_results as answer_with_tool_results
from ._scripted import both as both
from ._scripted import call_tools as call_tools
from ._scripted import final_answer as final_answer
from ._scripted import first_turn as first_turn
from ._scripted import rule as rule
from ._scripted import user_matches as user_matches

__all__ = [
    "Predicate",
    "Responder",
    "after_tool",
    "always",
    "answer",
    "answer_with_tool_results",
    "both",
    "call_tools",
    "final_answer",
    "first_turn",
    "rule",
    "user_matches",
]
