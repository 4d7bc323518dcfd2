"""Testing support: a harness with failure injection, fakes, and virtual-time helpers.

:class:`SystemTestHarness` opens a runtime for a test (on a virtual clock), injects
failures into actors, supervised children and tools (:class:`FailureType`), waits for
events and asserts recovery and the system's invariants. The fakes
(:class:`ScriptedActor`, :class:`FlakyTool`) and the declarative specs
(:class:`SupervisorSpec`, :class:`Send`, :class:`ScheduledFailure`, ...) describe a
system and what happens to it. Hypothesis strategies live in
:mod:`mister_smith.testing.strategies` (hypothesis is a test dependency), pytest
fixtures in :mod:`mister_smith.testing.pytest_plugin`.

This package is for tests and users' test suites; the library never imports it.
"""

from ._clock import advance as advance
from ._clock import mock_clock as mock_clock
from ._clock import run_virtual as run_virtual
from ._failures import FailureType as FailureType
from ._failures import InjectedCrash as InjectedCrash
from ._failures import Injection as Injection
from ._failures import InjectionRefused as InjectionRefused
from ._harness import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._harness import HarnessStatistics as HarnessStatistics
from ._harness import ShutdownRecord as ShutdownRecord
from ._harness import SystemTestHarness as SystemTestHarness
from ._harness import Target as Target
from ._middleware import PING as PING
from ._middleware import PONG as PONG
from ._middleware import TRIGGER as TRIGGER
from ._middleware import ControlMessage as ControlMessage
from ._middleware import FaultMiddleware as FaultMiddleware
from ._scenario import BuiltTree as BuiltTree
from ._scenario import OperationOutcome as OperationOutcome
from ._scenario import ScenarioReport as ScenarioReport
from ._scenario import ScheduleOutcome as ScheduleOutcome
from ._scenario import perform_work as perform_work
from ._scripted import Script as Script
from ._scripted import ScriptedActor as ScriptedActor
from ._scripted import echo as echo
from ._specs import ActorSpec as ActorSpec
from ._specs import CallTool as CallTool
from ._specs import FlakyToolSpec as FlakyToolSpec
from ._specs import NodeSpec as NodeSpec
from ._specs import Operation as Operation
from ._specs import Scenario as Scenario
from ._specs import ScheduledFailure as ScheduledFailure
from ._specs import Send as Send
from ._specs import SupervisorSpec as SupervisorSpec
from ._specs import Work as Work
from ._specs import WorkerSpec as WorkerSpec
from ._tasks import TaskCounter as TaskCounter
from ._tools import FaultGate as FaultGate
from ._tools import FlakyTool as FlakyTool
from ._traces import TraceRecorder as TraceRecorder
from ._traces import TraceShape as TraceShape

__all__ = [
    "TraceRecorder",
    "TraceShape",
    "DEFAULT_TIMEOUT",
    "PING",
    "PONG",
    "TRIGGER",
    "ActorSpec",
    "BuiltTree",
    "CallTool",
    "ControlMessage",
    "FailureType",
    "FaultGate",
    "FaultMiddleware",
    "FlakyTool",
    "FlakyToolSpec",
    "HarnessStatistics",
    "InjectedCrash",
    "Injection",
    "InjectionRefused",
    "NodeSpec",
    "Operation",
    "OperationOutcome",
    "Scenario",
    "ScenarioReport",
    "ScheduleOutcome",
    "ScheduledFailure",
    "Script",
    "ScriptedActor",
    "Send",
    "ShutdownRecord",
    "SupervisorSpec",
    "SystemTestHarness",
    "Target",
    "TaskCounter",
    "Work",
    "WorkerSpec",
    "advance",
    "echo",
    "mock_clock",
    "perform_work",
    "run_virtual",
]
