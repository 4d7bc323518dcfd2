"""``Agent``: an actor that works on tasks by reasoning through a model and calling tools."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import attrs
import trio

from ..actors import Actor, ActorContext
from ..errors import (
    ActorCrashed,
    ActorStopped,
    AskTimeout,
    PersistenceError,
    TaskTimeout,
    ToolError,
    ToolPermissionDenied,
)
from ..events import EventBus, TaskCompleted, TaskFailed, ToolCalled, ToolOutcome
from ..monitoring import NOOP_SPAN, active_tracer, record_model_response
from ..supervision import heartbeat
from ..types import CallerIdentity
from ._agent_stream import AgentStream, AgentStreamRequest, EventSink, cancel_when_set, sole
from ._checkpoint import OUTCOME_UNKNOWN, AgentCheckpoints, TaskCheckpoint
from ._context import ContextWindow, Summarizer
from ._errors import (
    GuardrailTripped,
    HandoffFailed,
    MalformedModelResponse,
    MaxTurnsExceeded,
    ModelTimeout,
    ToolCallLimitExceeded,
)
from ._events import AgentProgress, AgentTextStreamed
from ._guardrails import GuardrailInput, run_guardrails
from ._handoffs import MAX_HANDOFFS, Handoff, transcript
from ._messages import Message, ToolCall
from ._model import Model, ModelRequest, ModelResponse
from ._output import FINAL_RESULT_TOOL, OutputSpec
from ._run import RunState, capped_limits, check_outcome
from ._spec import AgentSpec
from ._streaming import (
    AgentFinalResult,
    AgentStreamEvent,
    AgentTextDelta,
    AgentToolCallFinished,
    AgentToolCallStarted,
    AgentTurnEnded,
    ResponseCompleted,
    TextDelta,
    stream_model,
)
from ._task import AgentResult, AgentTask, ToolCaller
from ._tool_calls import ToolInvoker, bounded, format_tool_error, format_tool_result, tool_listing
from ._usage import UsageBudget, check_all, output_room

logger = logging.getLogger("mister_smith.agents")


class Agent(Actor):
    """An actor that works on tasks through a model and tools.

    For each task it runs the loop: ask the model; run the tool calls it asks for
    through the tool bus (concurrently, each under its deadline); give the results
    (or the errors, e.g. a timeout) back to the model; until the model answers or
    ``max_turns`` is used up (→ :class:`MaxTurnsExceeded`). The conversation lives in a
    bounded :class:`ContextWindow`. It emits :class:`AgentProgress` per turn and
    :class:`~mister_smith.events.TaskCompleted` (answer and usage) or
    :class:`~mister_smith.events.TaskFailed`.

    Errors other than tool errors (the model failing, running out of turns or time,
    a bug) propagate: the actor crashes, the ``ask`` fails with
    :class:`~mister_smith.errors.ActorCrashed`, and supervision decides what happens
    next — a fresh incarnation starts with an empty context.

    Agents are watched by heartbeat by default (``heartbeat_by_default``): each turn
    and each bounded wait (a model request, tool calls) beats, so a handler stuck
    elsewhere for ``supervision.heartbeat_timeout`` is cancelled and restarted.

    Spawn with :func:`spawn_agent` or ``system.spawn(Agent, spec, model, tools, ...)``.

    Args:
        spec: MessageRole, prompt, limits.
        model: The model it reasons with.
        tools: The tool bus (``None``: no tools).
        summarizer: Folds old context (default: extractive).
        budget: The agent's own usage budget (default: one from ``spec.agent_limits``,
            made at its first task; :func:`spawn_agent` passes one that outlives
            restarts).
        handoffs: Agents it may hand the conversation to, each offered to the model
            as a ``transfer_to_<agent>`` tool (see :class:`Handoff`).
    """

    heartbeat_by_default: ClassVar[bool] = True
    accepts_delegated: ClassVar[bool] = True
    """It takes :class:`~mister_smith.actors.Delegated` tasks, so its ref offered
    through ``AgentTool`` works on the tool caller's behalf (both must be granted)."""

    def __init__(
        self,
        spec: AgentSpec,
        model: Model,
        tools: ToolInvoker | None = None,
        *,
        summarizer: Summarizer | None = None,
        budget: UsageBudget | None = None,
        handoffs: Sequence[Handoff] = (),
        checkpoints: AgentCheckpoints | None = None,
    ) -> None:
        self._ctx: ActorContext | None = None
        self.checkpoints = checkpoints
        """Where a durable agent saves its running task after each turn (``None``: not
        durable)."""
        self.budget = budget
        self.handoffs = {handoff.name: handoff for handoff in handoffs}
        if len(self.handoffs) != len(handoffs):
            raise ValueError("two handoffs of one agent have the same tool name")
        self.spec = spec
        self.model = model
        self.tools = tools
        self.summarizer = summarizer
        self._context: ContextWindow | None = None
        self._limiter = trio.CapacityLimiter(spec.max_parallel_tools)
        self._output = None if spec.output_type is None else OutputSpec(spec.output_type)
        self._tool_timeouts: dict[str, float] = {}

    def new_context(self, name: str, events: EventBus | None) -> ContextWindow:
        """A context window with the spec's bounds."""
        settings = self.spec.context
        return ContextWindow(
            max_messages=settings.max_messages,
            max_tokens=settings.max_tokens,
            max_summary_tokens=settings.max_summary_tokens,
            max_message_tokens=settings.max_message_tokens,
            summarizer=self.summarizer,
            events=events,
            owner=name,
        )

    async def handle(self, message: Any, ctx: ActorContext) -> AgentResult | None:
        """Work on a task (see :meth:`AgentTask.coerce` for what counts as one), or on
        a streamed one (``AgentStreamRequest``, sent by :meth:`AgentRef.stream`)."""
        self._ctx = ctx
        try:
            if isinstance(message, AgentStreamRequest):
                return await self.serve_stream(message, ctx.name, ctx.events, identity=ctx.identity)
            return await self.run_task(
                AgentTask.coerce(message), ctx.name, ctx.events, identity=ctx.identity
            )
        finally:
            self._ctx = None

    async def serve_stream(
        self,
        request: AgentStreamRequest,
        name: str,
        events: EventBus | None,
        *,
        identity: CallerIdentity | None = None,
    ) -> AgentResult | None:
        """Run a streamed task, sending its events to ``request.channel`` (closed at the
        end); ``None`` when the consumer left (the work is cancelled at once).

        Raises:
            Whatever :meth:`run_task` raises.
        """
        task = AgentTask.coerce(request.task)
        result: AgentResult | None = None
        async with request.channel:
            with trio.CancelScope() as scope:
                sink = EventSink(request.channel, scope)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(cancel_when_set, request.stop, scope)
                        try:
                            result = await self.run_task(
                                task, name, events, identity=identity, sink=sink
                            )
                        finally:
                            nursery.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    raise sole(group) from None
        if scope.cancelled_caught and result is None:
            logger.info("agent %s: the consumer of task %s's stream left", name, task.task_id)
            if events is not None:
                events.emit(
                    TaskFailed(
                        source=name,
                        task_id=task.task_id,
                        error_type="StreamClosed",
                        error="the stream's consumer left; the task was cancelled",
                        agent=name,
                        correlation_id=task.correlation_id,
                    )
                )
        return result

    @contextlib.asynccontextmanager
    async def stream_task(
        self,
        task: AgentTask | str,
        name: str,
        events: EventBus | None = None,
        *,
        identity: CallerIdentity | None = None,
        buffer: int = 0,
    ) -> AsyncIterator[AgentStream]:
        """Run ``task`` (without an actor system) and stream its events::

            async with agent.stream_task("summarise", "writer") as stream:
                async for event in stream:
                    ...

        Leaving the block early cancels the work (its model request included); an
        error of the work is raised when the block ends.
        """
        send, receive = trio.open_memory_channel[AgentStreamEvent](buffer)
        stream = AgentStream(receive)
        stop = trio.Event()
        request = AgentStreamRequest(AgentTask.coerce(task), send, stop)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(self.serve_stream, request, name, events, identity=identity)
                )
                async with receive:
                    try:
                        yield stream
                    finally:
                        stop.set()
        except BaseExceptionGroup as group:
            raise sole(group) from None

    async def run_task(
        self,
        task: AgentTask,
        name: str,
        events: EventBus | None,
        *,
        identity: CallerIdentity | None = None,
        sink: EventSink | None = None,
    ) -> AgentResult:
        """Run ``task`` to its answer as agent ``name``; usable without an actor system.

        Tools are called as ``identity`` (in an actor system: ``ctx.identity``); without
        one, as the plain name, which only open tools admit. With ``sink``, the model's
        answers are streamed and every step is sent to it (see :meth:`stream_task`).
        """
        started = trio.current_time()
        caller = ToolCaller(name if identity is None else identity, task.on_behalf_of)
        spans = active_tracer()
        with (
            contextlib.nullcontext(NOOP_SPAN)
            if spans is None
            else spans.span(
                f"invoke_agent {name}",
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": name,
                    "mister_smith.task_id": str(task.task_id),
                },
            )
        ):
            return await self._run_traced(task, name, events, started, caller, sink)

    async def _run_traced(
        self,
        task: AgentTask,
        name: str,
        events: EventBus | None,
        started: float,
        caller: ToolCaller,
        sink: EventSink | None,
    ) -> AgentResult:
        try:
            deadline = math.inf if task.deadline is None else task.deadline
            with trio.move_on_at(deadline) as scope:
                result = await self._loop(task, name, events, started, caller, sink)
            if scope.cancelled_caught:
                raise TaskTimeout(f"agent {name!r} did not finish task {task.task_id} in time")
        except Exception as exc:
            if events is not None:
                events.emit(
                    TaskFailed(
                        source=name,
                        task_id=task.task_id,
                        error_type=type(exc).__name__,
                        error=str(exc),
                        agent=name,
                        correlation_id=task.correlation_id,
                    )
                )
            raise
        if events is not None:
            events.emit(
                TaskCompleted(
                    source=name,
                    task_id=task.task_id,
                    result=result.answer,
                    agent=name,
                    duration=result.duration,
                    usage=result.usage.as_dict(),
                    correlation_id=task.correlation_id,
                )
            )
        return result

    async def _loop(
        self,
        task: AgentTask,
        name: str,
        events: EventBus | None,
        started: float,
        caller: ToolCaller,
        sink: EventSink | None = None,
    ) -> AgentResult:
        spec = self.spec
        if spec.persistent_context:
            if self._context is None:
                self._context = self.new_context(name, events)
            context = self._context
        else:
            context = self.new_context(name, events)
        checkpoints = self.checkpoints
        resume = None
        if checkpoints is not None:
            saved = await checkpoints.load()
            if saved is not None and saved.prompt == task.prompt:
                resume = saved  # the task was under way when its process ended
        if resume is not None:
            context.restore(resume.messages, resume.summary, resume.pinned)
        else:
            await context.extend(task.context)
            await context.add(Message.user(task.prompt), pin=True)
        try:
            result = await self._turns(task, name, events, started, context, caller, sink, resume)
        except Exception:
            if checkpoints is not None:  # the task ended (failed): nothing to resume
                with contextlib.suppress(PersistenceError):
                    await checkpoints.clear()
            raise
        finally:
            context.unpin_all()
        if checkpoints is not None:
            await checkpoints.clear()
        return result

    async def _checkpoint(
        self,
        task: AgentTask,
        run: RunState,
        context: ContextWindow,
        pending: tuple[ToolCall, ...],
    ) -> None:
        """Save the task as it stands (durable agents only)."""
        if self.checkpoints is None:
            return
        await self.checkpoints.save(
            TaskCheckpoint(
                task.prompt,
                run.turn,
                context.messages(),
                context.pinned_indexes(),
                context.summary,
                pending,
                run.usage,
                run.tool_calls,
                run.tool_errors,
                run.refused,
            )
        )

    async def _recover_calls(
        self,
        calls: tuple[ToolCall, ...],
        run: RunState,
        caller: ToolCaller,
        context: ContextWindow,
    ) -> None:
        """The tool calls in flight when the task's process ended: re-run those whose
        tool is idempotent, report the others' outcome as unknown."""
        idempotent: set[str] = set()
        if self.tools is not None:
            listed = self.tools.list_available_tools(caller.who, on_behalf_of=caller.on_behalf_of)
            idempotent = {str(e.name) for e in listed if getattr(e, "idempotent", False) is True}
        rerun = tuple(call for call in calls if call.name in idempotent)
        results: dict[str | None, Message] = {}
        if rerun:
            async with self._beating(self.tools):
                for message in await self._run_tools(rerun, run, caller):
                    results[message.tool_call_id] = message
        messages = [
            results.get(call.id) or Message.tool_result(call, OUTCOME_UNKNOWN, is_error=True)
            for call in calls
        ]
        run.tool_calls += len(calls)
        run.tool_errors += sum(1 for message in messages if message.is_error)
        await context.extend(messages)

    async def _turns(
        self,
        task: AgentTask,
        name: str,
        events: EventBus | None,
        started: float,
        context: ContextWindow,
        caller: ToolCaller,
        sink: EventSink | None = None,
        resume: TaskCheckpoint | None = None,
    ) -> AgentResult:
        spec = self.spec
        output = self._output
        tool_definitions, self._tool_timeouts = tool_listing(self.tools, caller, spec.allowed_tools)
        system_prompt = spec.system_prompt
        tool_definitions = (*tool_definitions, *(h.definition() for h in self.handoffs.values()))
        if output is not None:
            tool_definitions = (*tool_definitions, output.definition)
            system_prompt = "\n\n".join(p for p in (system_prompt, output.instructions()) if p)
        run = RunState(task, name, started, sink=sink, events=events)
        budgets = self._budgets(task, name, started)
        options = spec.request_options()
        first_turn = 1
        if resume is not None:
            run.usage, run.turn = resume.usage, resume.turn
            run.tool_calls, run.tool_errors = resume.tool_calls, resume.tool_errors
            run.refused = resume.refused
            first_turn = resume.turn + 1
            if resume.pending_tool_calls:
                await self._recover_calls(resume.pending_tool_calls, run, caller, context)
                await self._checkpoint(task, run, context, ())
        for turn in range(first_turn, spec.max_turns + 1):
            run.turn = turn
            check_all(budgets, trio.current_time())
            request = ModelRequest(
                context.render(system_prompt),
                tool_definitions,
                capped_limits(spec.limits, output_room(budgets)),
                options,
            )
            heartbeat()  # a new turn is progress (agents are watched by heartbeat)
            async with self._beating(self.model):  # if bounded by its own deadline
                if turn == 1 and spec.input_guardrails:
                    response = await self._guarded_first(request, run)
                else:
                    response = await self._complete(request, run)
            run.usage = run.usage + response.usage
            for used in budgets:
                used.record_response(response.model or self.model.name, response.usage)
            check_outcome(response, name, spec.limits)  # before it enters the context
            async with self._beating(self.summarizer):  # folding may ask a model
                await context.add(
                    Message.assistant(response.text, response.tool_calls, response.reasoning)
                )
            if output is not None:
                done, feedback = self._typed_answer(output, response, run)
                if done is not None:
                    await self._check_output(done, run)
                    self._progress(events, name, task, turn, run.tool_calls, 1.0, "done")
                    await run.emit(AgentFinalResult(done))
                    return done
                if feedback:
                    async with self._beating(self.summarizer):
                        await context.extend(feedback)
                    continue
            handoff = next((c for c in response.tool_calls if c.name in self.handoffs), None)
            if handoff is not None and len(task.handoffs) < MAX_HANDOFFS:
                result = await self._hand_off(handoff, run, context)
                self._progress(events, name, task, turn, run.tool_calls, 1.0, "done")
                await run.emit(AgentFinalResult(result))
                return result
            if response.is_final:
                self._progress(events, name, task, turn, run.tool_calls, 1.0, "done")
                result = run.result(spec.role, response.text, response.text)
                await self._check_output(result, run)
                await run.emit(AgentFinalResult(result))
                return result
            budget = min(
                spec.max_tool_calls_per_turn, spec.max_tool_calls_per_task - run.tool_calls
            )
            calls = tuple(c for c in response.tool_calls if c.name not in self.handoffs)
            refused_handoffs = [
                Message.tool_result(
                    c, f"not handed off: a task is handed on at most {MAX_HANDOFFS} times",
                    is_error=True,
                )
                for c in response.tool_calls
                if c.name in self.handoffs
            ]  # fmt: skip
            if refused_handoffs:
                await context.extend(refused_handoffs)
            check_all(budgets, trio.current_time(), tool_calls=len(calls[:budget]))
            await self._checkpoint(task, run, context, calls[:budget])
            async with self._beating(self.tools):  # each call bounded by its deadline
                results = await self._run_tools(calls[:budget], run, caller)
            for used in budgets:
                used.record_tool_calls(len(results))
            run.tool_calls += len(results)
            run.tool_errors += sum(1 for r in results if r.is_error)
            run.refused += len(calls[budget:])
            async with self._beating(self.summarizer):
                await context.extend([*results, *self._refuse(calls[budget:], name)])
            await self._checkpoint(task, run, context, ())
            fraction = response.progress if response.progress is not None else turn / spec.max_turns
            self._progress(events, name, task, turn, run.tool_calls, fraction, "working")
            await run.emit(AgentTurnEnded(turn, run.usage))
        self._progress(events, name, task, spec.max_turns, run.tool_calls, 1.0, "failed")
        raise MaxTurnsExceeded(
            f"agent {name!r} reached max_turns={spec.max_turns} without an answer",
            agent=name,
            turns=spec.max_turns,
        )

    def _budgets(self, task: AgentTask, name: str, started: float) -> list[UsageBudget]:
        """The budgets a task counts against: its own, the agent's, the task's others."""
        spec = self.spec
        if self.budget is None and spec.agent_limits is not None:
            self.budget = UsageBudget(spec.agent_limits, f"agent {name!r}", started)
        budgets = [] if self.budget is None else [self.budget]
        if spec.task_limits is not None:
            budgets.insert(0, UsageBudget(spec.task_limits, f"task {task.task_id}", started))
        budgets.extend(task.budgets)
        return budgets

    def _typed_answer(
        self, output: OutputSpec, response: ModelResponse, run: RunState
    ) -> tuple[AgentResult | None, list[Message]]:
        """The result when ``response`` holds a valid typed answer; else the messages
        telling the model what was wrong (empty: not an answer yet, run its tools).

        Raises:
            OutputValidationError: the answer was wrong more than ``output_retries``
                times.
        """
        finals = [call for call in response.tool_calls if call.name == FINAL_RESULT_TOOL]
        if finals:
            attempt = output.from_call(finals[0])
        elif response.is_final:
            attempt = output.from_text(response.text)
        else:
            return None, []
        run.output_attempts += 1
        if attempt.ok:
            return run.result(self.spec.role, output.answer_text(attempt.value), attempt.value), []
        if run.output_attempts > self.spec.output_retries:
            raise output.fail(run.name, run.output_attempts, attempt.errors)
        logger.info("agent %s: invalid typed answer: %s", run.name, "; ".join(attempt.errors))
        text = "Your answer was refused:\n" + "\n".join(f"- {e}" for e in attempt.errors)
        if not finals:
            return None, [Message.user(text)]
        feedback = [Message.tool_result(finals[0], text, is_error=True)]
        skipped = f"not run: {FINAL_RESULT_TOOL} was called in the same turn"
        feedback.extend(
            Message.tool_result(call, skipped, is_error=True)
            for call in response.tool_calls
            if call is not finals[0]
        )
        return None, feedback

    def _refuse(self, calls: Sequence[ToolCall], name: str) -> list[Message]:
        """Tool errors answering ``calls``, which are past the tool-call limits."""
        if not calls:
            return []
        spec = self.spec
        logger.warning("agent %s: refused %d tool calls past its limits", name, len(calls))
        error = ToolCallLimitExceeded(
            f"not run: agent {name!r} runs at most {spec.max_tool_calls_per_turn} tool calls "
            f"per turn and {spec.max_tool_calls_per_task} per task"
        )
        text = format_tool_error(error)
        return [Message.tool_result(call, text, is_error=True) for call in calls]

    def _progress(
        self,
        events: EventBus | None,
        name: str,
        task: AgentTask,
        turn: int,
        tool_calls: int,
        fraction: float,
        status: str,
    ) -> None:
        if events is not None:
            events.emit(
                AgentProgress(
                    source=name,
                    agent=name,
                    role=self.spec.role,
                    task_id=task.task_id,
                    turn=turn,
                    max_turns=self.spec.max_turns,
                    tool_calls=tool_calls,
                    progress=min(1.0, max(0.0, fraction)),
                    status=status,
                    correlation_id=task.correlation_id,
                )
            )

    def _beating(self, waited_on: object) -> AbstractAsyncContextManager[None]:
        """Heartbeats while awaiting ``waited_on``, if it is bounded by a deadline of its
        own (a tool bus; a model or summarizer whose model has a finite ``timeout``).
        An unbounded model that never answers is what the heartbeat is there to catch."""
        ctx = self._ctx
        if ctx is None or not bounded(waited_on):
            return contextlib.nullcontext()
        return ctx.keep_beating()

    async def _complete(self, request: ModelRequest, run: RunState) -> ModelResponse:
        spans = active_tracer()
        if spans is None:
            return await self._answer(request, run)
        model = self.model
        provider = str(getattr(model, "provider", type(model).__name__))
        model_name = str(getattr(model, "model", None) or model.name)
        with spans.model_span(
            provider, model_name, max_tokens=request.limits.max_output_tokens
        ) as span:
            response = await self._answer(request, run)
            usage = response.usage
            record_model_response(
                span,
                model=response.model or model_name,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                finish_reason=response.stop_reason.value,
            )
            return response

    async def _answer(self, request: ModelRequest, run: RunState) -> ModelResponse:
        timeout = self.spec.model_timeout
        with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
            if run.sink is None and not (self.spec.stream_events and run.events is not None):
                return await self.model.complete(request)
            return await self._streamed(request, run)
        assert scope.cancelled_caught
        raise ModelTimeout(f"model {self.model.name!r} did not answer within {timeout} s")

    async def _hand_off(self, call: ToolCall, run: RunState, context: ContextWindow) -> AgentResult:
        """Give the task, with the conversation so far, to the handoff's agent and
        answer with its result.

        Raises:
            HandoffFailed: the receiving agent failed on it (the cause attached).
        """
        handoff = self.handoffs[call.name]
        task = run.task
        reason = str(call.arguments.get("reason", "") or "")[:500]
        note = f" ({reason})" if reason else ""
        handed = AgentTask(
            f"[{run.name} handed this conversation over to you{note}. Continue it: answer "
            "the user's request above.]",
            deadline=task.deadline,
            context=handoff.input_filter(transcript(context.messages())),
            correlation_id=task.correlation_id or str(task.task_id),
            on_behalf_of=task.on_behalf_of,
            budgets=task.budgets,
            handoffs=(*task.handoffs, run.name),
        )
        logger.info("agent %s: handing task %s to %s", run.name, task.task_id, handoff.target)
        remaining = math.inf if task.deadline is None else task.deadline - trio.current_time()
        try:
            received: AgentResult = await handoff.target.ask(handed, timeout=max(0.0, remaining))
        except (ActorCrashed, ActorStopped, AskTimeout) as exc:
            cause = exc.__cause__ if isinstance(exc, ActorCrashed) else exc
            raise HandoffFailed(
                f"agent {run.name!r}: the handoff to {handoff.target.name!r} failed: "
                f"{type(cause).__name__}: {cause}"
            ) from exc
        return attrs.evolve(
            received,
            task_id=task.task_id,
            usage=run.usage + received.usage,
            turns=run.turn + received.turns,
            tool_calls=run.tool_calls + received.tool_calls,
            tool_errors=run.tool_errors + received.tool_errors,
            duration=trio.current_time() - run.started,
            handed_off_from=(run.name, *received.handed_off_from),
        )

    async def _guarded_first(self, request: ModelRequest, run: RunState) -> ModelResponse:
        """The first response, with the input guardrails run concurrently; the request
        is cancelled as soon as one trips.

        Raises:
            GuardrailTripped: an input guardrail tripped.
        """
        subject = GuardrailInput(run.name, "input", run.task.prompt, task_id=run.task.task_id)
        responses: list[ModelResponse] = []
        trips: list[GuardrailTripped] = []
        try:
            async with trio.open_nursery() as nursery:

                async def guard() -> None:
                    try:
                        await run_guardrails(self.spec.input_guardrails, subject, run.events)
                    except GuardrailTripped as error:
                        trips.append(error)
                        nursery.cancel_scope.cancel()

                async def ask() -> None:
                    responses.append(await self._complete(request, run))

                nursery.start_soon(guard)
                nursery.start_soon(ask)
        except BaseExceptionGroup as group:
            raise sole(group) from None
        if trips:
            raise trips[0]
        return responses[0]

    async def _check_output(self, result: AgentResult, run: RunState) -> None:
        """Run the output guardrails on a final answer.

        Raises:
            GuardrailTripped: one tripped.
        """
        if self.spec.output_guardrails:
            subject = GuardrailInput(
                run.name, "output", result.answer, result.output, run.task.task_id
            )
            await run_guardrails(self.spec.output_guardrails, subject, run.events)

    async def _streamed(self, request: ModelRequest, run: RunState) -> ModelResponse:
        """The model's response, its text passed on to the stream's consumer as it comes
        (waiting for the consumer: backpressure)."""
        async with contextlib.aclosing(stream_model(self.model, request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    if self.spec.stream_events and run.events is not None:
                        run.events.emit(
                            AgentTextStreamed(
                                source=run.name,
                                agent=run.name,
                                task_id=run.task.task_id,
                                turn=run.turn,
                                text=event.text,
                                correlation_id=run.task.correlation_id,
                            )
                        )
                    await run.emit(AgentTextDelta(event.text, run.turn))
                elif isinstance(event, ResponseCompleted):
                    return event.response
        raise MalformedModelResponse(
            f"the stream of model {self.model.name!r} ended without a complete response"
        )

    async def _run_tools(
        self, calls: Sequence[ToolCall], run_state: RunState, caller: ToolCaller
    ) -> list[Message]:
        results: list[Message | None] = [None] * len(calls)
        name, deadline = run_state.name, run_state.task.deadline

        async def run(index: int) -> None:
            async with self._limiter:
                call = calls[index]
                await run_state.emit(AgentToolCallStarted(call, run_state.turn))
                message = await self._run_tool(call, name, caller, deadline, run_state.events)
                results[index] = message
                await run_state.emit(
                    AgentToolCallFinished(call, message.content, message.is_error, run_state.turn)
                )

        if self.spec.parallel_tool_calls and len(calls) > 1:
            async with trio.open_nursery() as nursery:
                for index in range(len(calls)):
                    nursery.start_soon(run, index)
        else:
            for index in range(len(calls)):
                await run(index)
        return [result for result in results if result is not None]

    async def _run_tool(
        self,
        call: ToolCall,
        name: str,
        caller: ToolCaller,
        deadline: float | None,
        events: EventBus | None = None,
    ) -> Message:
        allowed = self.spec.allowed_tools
        if self.tools is None or (allowed is not None and call.name not in allowed):
            refusal = ToolPermissionDenied(f"agent {name!r} may not call tool {call.name!r}")
            if events is not None:  # refused before the bus: announced like the bus does
                events.emit(
                    ToolCalled(
                        source=name,
                        tool=call.name,
                        caller=_caller_text(caller),
                        outcome=ToolOutcome.DENIED,
                        error=f"{type(refusal).__name__}: {refusal}",
                    )
                )
            await trio.lowlevel.checkpoint()
            return Message.tool_result(call, format_tool_error(refusal), is_error=True)
        # the tightest of: the spec's tool deadline, the tool's own, the task's remainder
        limits = [t for t in (self.spec.tool_timeout, self._tool_timeouts.get(call.name)) if t]
        if deadline is not None:
            limits.append(max(1e-6, deadline - trio.current_time()))
        timeout = min(limits) if limits else None
        try:
            value = await self.tools.call(
                caller.who,
                call.name,
                call.arguments,
                on_behalf_of=caller.on_behalf_of,
                timeout=timeout,
            )
        except ToolError as exc:
            logger.debug("agent %s: tool %s failed: %s", name, call.name, exc)
            return Message.tool_result(call, format_tool_error(exc), is_error=True)
        return Message.tool_result(call, format_tool_result(value))


def _caller_text(caller: ToolCaller) -> str:
    """How the bus names ``caller`` in events: ``"name (for lead > ...)"``."""
    text = str(caller.who)
    if caller.on_behalf_of:
        text += " (for " + " > ".join(str(c) for c in caller.on_behalf_of) + ")"
    return text
