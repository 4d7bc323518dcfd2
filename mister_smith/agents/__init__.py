"""Agents: actors that reason through a model, act through tools, keep a bounded
context, and work in teams composed for the task at hand.

* :class:`Model` is the protocol; :class:`ScriptedModel` is deterministic and embedded,
  :class:`OpenAICompatibleModel` and :class:`AnthropicModel` speak HTTP.
* :class:`Agent` runs the model → tools → model loop for each task it is sent, calling
  tools as its actor identity (``ctx.identity``); :func:`spawn_agent`'s ``roles`` (Role
  credentials) decide what it is granted, ``AgentSpec.role`` is only a label, and a task
  delegated through :class:`AgentEndpoint` may only use what its delegators may use.
* :class:`ContextWindow` keeps recent messages and folds old ones into a summary.
* :func:`analyze_requirements` and :func:`create_dynamic_team` compose teams.

Rule helpers for scripted models live in :mod:`mister_smith.agents.script`.
"""

from ._agent import Agent as Agent
from ._agent_ref import AgentRef as AgentRef
from ._agent_ref import DurableAgentRef as DurableAgentRef
from ._agent_stream import AgentStream as AgentStream
from ._anthropic import AnthropicModel as AnthropicModel
from ._checkpoint import OUTCOME_UNKNOWN as OUTCOME_UNKNOWN
from ._checkpoint import AgentCheckpoints as AgentCheckpoints
from ._checkpoint import TaskCheckpoint as TaskCheckpoint
from ._context import ContextStatistics as ContextStatistics
from ._context import ContextWindow as ContextWindow
from ._context import ExtractiveSummarizer as ExtractiveSummarizer
from ._context import ModelSummarizer as ModelSummarizer
from ._context import Summarizer as Summarizer
from ._delegate import AgentEndpoint as AgentEndpoint
from ._errors import GuardrailTripped as GuardrailTripped
from ._errors import HandoffFailed as HandoffFailed
from ._errors import InvalidTask as InvalidTask
from ._errors import MalformedModelResponse as MalformedModelResponse
from ._errors import MaxTurnsExceeded as MaxTurnsExceeded
from ._errors import MissingApiKey as MissingApiKey
from ._errors import ModelAuthError as ModelAuthError
from ._errors import ModelError as ModelError
from ._errors import ModelHTTPError as ModelHTTPError
from ._errors import ModelRateLimited as ModelRateLimited
from ._errors import ModelRefused as ModelRefused
from ._errors import ModelResponseTooLarge as ModelResponseTooLarge
from ._errors import ModelTimeout as ModelTimeout
from ._errors import OutputTruncated as OutputTruncated
from ._errors import OutputValidationError as OutputValidationError
from ._errors import ScriptExhausted as ScriptExhausted
from ._errors import TeamError as TeamError
from ._errors import ToolCallLimitExceeded as ToolCallLimitExceeded
from ._errors import UnknownModelPrice as UnknownModelPrice
from ._errors import UnsupportedModelOption as UnsupportedModelOption
from ._errors import UsageLimitExceeded as UsageLimitExceeded
from ._events import AgentProgress as AgentProgress
from ._events import AgentTextStreamed as AgentTextStreamed
from ._guardrails import Guardrail as Guardrail
from ._guardrails import GuardrailInput as GuardrailInput
from ._guardrails import GuardrailTriggered as GuardrailTriggered
from ._guardrails import GuardrailVerdict as GuardrailVerdict
from ._handoffs import MAX_HANDOFFS as MAX_HANDOFFS
from ._handoffs import Handoff as Handoff
from ._handoffs import keep_all as keep_all
from ._handoffs import remove_tool_calls as remove_tool_calls
from ._http import HttpModel as HttpModel
from ._http import HttpModelStatistics as HttpModelStatistics
from ._http import HttpRetryPolicy as HttpRetryPolicy
from ._messages import Message as Message
from ._messages import MessageRole as MessageRole
from ._messages import ToolCall as ToolCall
from ._messages import estimate_tokens as estimate_tokens
from ._model import Model as Model
from ._model import ModelLimits as ModelLimits
from ._model import ModelRequest as ModelRequest
from ._model import ModelResponse as ModelResponse
from ._model import StopReason as StopReason
from ._model import ToolDefinition as ToolDefinition
from ._model import Usage as Usage
from ._openai import OpenAICompatibleModel as OpenAICompatibleModel
from ._options import ModelOptions as ModelOptions
from ._output import FINAL_RESULT_TOOL as FINAL_RESULT_TOOL
from ._output import OutputSpec as OutputSpec
from ._roles import DEFAULT_CATALOG as DEFAULT_CATALOG
from ._roles import AgentRole as AgentRole
from ._roles import CoordinationMode as CoordinationMode
from ._roles import RoleCatalog as RoleCatalog
from ._roles import analyze_requirements as analyze_requirements
from ._roles import analyze_requirements_with_model as analyze_requirements_with_model
from ._roles import choose_coordination as choose_coordination
from ._scripted import ScriptedModel as ScriptedModel
from ._scripted import ScriptedModelStatistics as ScriptedModelStatistics
from ._scripted import ScriptRule as ScriptRule
from ._spawn import spawn_agent as spawn_agent
from ._spec import AgentSpec as AgentSpec
from ._spec import ContextSettings as ContextSettings
from ._sse import ServerSentEvent as ServerSentEvent
from ._sse import SSEDecoder as SSEDecoder
from ._streaming import AgentFinalResult as AgentFinalResult
from ._streaming import AgentStreamEvent as AgentStreamEvent
from ._streaming import AgentTextDelta as AgentTextDelta
from ._streaming import AgentToolCallFinished as AgentToolCallFinished
from ._streaming import AgentToolCallStarted as AgentToolCallStarted
from ._streaming import AgentTurnEnded as AgentTurnEnded
from ._streaming import ModelStreamEvent as ModelStreamEvent
from ._streaming import ResponseCompleted as ResponseCompleted
from ._streaming import StreamingModel as StreamingModel
from ._streaming import TextDelta as TextDelta
from ._streaming import ToolCallArgumentsDelta as ToolCallArgumentsDelta
from ._streaming import ToolCallStarted as ToolCallStarted
from ._streaming import stream_model as stream_model
from ._task import AgentResult as AgentResult
from ._task import AgentTask as AgentTask
from ._task import ToolCaller as ToolCaller
from ._teams import Team as Team
from ._teams import TeamMember as TeamMember
from ._teams import TeamResult as TeamResult
from ._teams import create_dynamic_team as create_dynamic_team
from ._teams import join_answers as join_answers
from ._tool_calls import ToolInvoker as ToolInvoker
from ._tool_calls import available_tool_definitions as available_tool_definitions
from ._tool_calls import format_tool_error as format_tool_error
from ._tool_calls import format_tool_result as format_tool_result
from ._usage import ModelPrice as ModelPrice
from ._usage import PriceTable as PriceTable
from ._usage import UsageBudget as UsageBudget
from ._usage import UsageLimits as UsageLimits
from ._usage import UsageSnapshot as UsageSnapshot
from ._wire_names import ToolNames as ToolNames
from ._wire_names import wire_tool_name as wire_tool_name

__all__ = [
    "OUTCOME_UNKNOWN",
    "AgentCheckpoints",
    "DurableAgentRef",
    "TaskCheckpoint",
    "DEFAULT_CATALOG",
    "AgentRole",
    "CoordinationMode",
    "RoleCatalog",
    "Team",
    "TeamMember",
    "TeamResult",
    "analyze_requirements",
    "analyze_requirements_with_model",
    "choose_coordination",
    "create_dynamic_team",
    "join_answers",
    "Agent",
    "AgentEndpoint",
    "AgentProgress",
    "AgentResult",
    "AgentSpec",
    "AgentTask",
    "AnthropicModel",
    "ContextSettings",
    "ContextStatistics",
    "ContextWindow",
    "ExtractiveSummarizer",
    "HttpModel",
    "HttpModelStatistics",
    "InvalidTask",
    "MalformedModelResponse",
    "MaxTurnsExceeded",
    "Message",
    "MissingApiKey",
    "Model",
    "ModelAuthError",
    "ModelError",
    "ModelHTTPError",
    "ModelLimits",
    "ModelRateLimited",
    "ModelRefused",
    "ModelOptions",
    "OutputTruncated",
    "OutputValidationError",
    "OutputSpec",
    "FINAL_RESULT_TOOL",
    "UnsupportedModelOption",
    "UnknownModelPrice",
    "UsageLimitExceeded",
    "ModelPrice",
    "PriceTable",
    "UsageBudget",
    "UsageLimits",
    "UsageSnapshot",
    "AgentRef",
    "HandoffFailed",
    "MAX_HANDOFFS",
    "Handoff",
    "keep_all",
    "remove_tool_calls",
    "Guardrail",
    "GuardrailInput",
    "GuardrailTriggered",
    "GuardrailTripped",
    "GuardrailVerdict",
    "AgentTextStreamed",
    "AgentStream",
    "ServerSentEvent",
    "SSEDecoder",
    "AgentFinalResult",
    "AgentStreamEvent",
    "AgentTextDelta",
    "AgentToolCallFinished",
    "AgentToolCallStarted",
    "AgentTurnEnded",
    "ModelStreamEvent",
    "ResponseCompleted",
    "StreamingModel",
    "TextDelta",
    "ToolCallArgumentsDelta",
    "ToolCallStarted",
    "stream_model",
    "ToolNames",
    "wire_tool_name",
    "ModelRequest",
    "ModelResponseTooLarge",
    "ModelResponse",
    "ModelSummarizer",
    "ModelTimeout",
    "OpenAICompatibleModel",
    "HttpRetryPolicy",
    "MessageRole",
    "ScriptExhausted",
    "ScriptRule",
    "ScriptedModel",
    "ScriptedModelStatistics",
    "StopReason",
    "Summarizer",
    "TeamError",
    "ToolCall",
    "ToolCaller",
    "ToolCallLimitExceeded",
    "ToolInvoker",
    "ToolDefinition",
    "Usage",
    "available_tool_definitions",
    "estimate_tokens",
    "format_tool_error",
    "format_tool_result",
    "spawn_agent",
]
