"""``PromptAdaptationMiddleware``: pinned prompts in, one ``Trace`` per run out, for ``create_agent``.

Usage::

    mw = PromptAdaptationMiddleware("support", store)   # the slot must exist (store.create_slot)
    agent = mw.wrap(create_agent(model, tools, middleware=[mw]))
    out = agent.invoke({"messages": [...]}, {"configurable": {"thread_id": "t-42"}})
    mw.record_feedback(trace_id=out["diffprompt_trace_id"], kind="reward", value=1.0)

Construction fails with ``NotFoundError`` when the slot does not exist (or ``ValidationError`` for
an invalid slot name), so traces are never recorded under no slot; a store that is unreachable at
construction is only logged (the agent is served its own prompt until it returns). Without a
``recorder`` the middleware makes one (``Recorder.for_store``) that spools to ``spool_dir`` while the
database is down — by default a directory per database under ``~/.diffprompt/spool`` (see
``store.recorder.default_spool_dir``) — so traces still queued at ``close()`` survive an outage on
disk and are written into that database by the next recorder.

Per run: the first ``wrap_model_call`` starts the run (no ``before_agent`` graph node): it resolves
the thread (``configurable.thread_id``; without one, a fresh id per run) and its pinned version and
writes ``diffprompt_trace_id``/``diffprompt_thread_id``/``diffprompt_version_id`` into the state with
its response (an ``ExtendedModelResponse`` command). Every model call gets the pinned text
(``request.override(system_message=...)``) and has its latency and ``usage_metadata`` recorded,
``wrap_tool_call`` records tool latency and status, and ``after_agent`` hands the finished trace
(OpenAI chat format, system message first) to the recorder; the message conversion runs on the
recorder's thread. Sync, async and streaming runs all go through these hooks. With a checkpointer,
a thread whose previous run failed starts a new trace on its next run (a retry of the failed model
call with the same input continues the failed run).

``FinalAnswerPromptAdaptationMiddleware`` (same arguments) drops the ``after_agent`` node too (one
graph superstep less per run): the trace is then finished at the model's final answer (no tool
calls). Use it only for agents whose loop ends there, i.e. without an ``after_model`` hook that
jumps back to the model and without ``return_direct`` tools; other endings are recorded as "did not
finish" by the sweep or ``close()``.

Runs that raise: ``mw.wrap(agent)`` (the same compiled graph with the middleware's ``RunFinalizer``
callback bound, see ``_finalize``) records a run that raised *anywhere* — the recursion limit, a
tool, another middleware, a stream closed early — as an error trace (``metadata["outcome"] ==
"error"``, ``metadata["error_reason"]``, ``Trace.error``, the messages so far) before the exception
reaches the caller, so feedback by thread works in the caller's ``except`` block (after
``mw.flush()``, or through ``mw.record_feedback``). The exception itself propagates unchanged.
``mw.callbacks`` is the same handler for passing per call (``config={"callbacks": mw.callbacks}``).
Without either, such a run is recorded as ``did_not_finish`` ``error_grace_s`` after a failed model
or tool call (by the next run's sweep), after ``stale_run_s`` otherwise, and at the latest by ``close()``.

Each trace records the target model's name (``metadata["model"]``, from the chat model's declared
``ls_model_name`` or the response's ``model_name``) when it is known, and is capped by ``limits``
(``TraceLimits``: messages, characters, characters per text; cuts are marked and reported in
``metadata["truncated"]``).

Optional run config keys: ``configurable.diffprompt_replay_key`` (stored as ``Trace.replay_key``)
and ``configurable.diffprompt_metadata`` (a dict merged into ``Trace.metadata``).

Guarantee: a failure of the middleware's own bookkeeping (store down, recorder broken, a bug here)
is logged and never raised into the agent; the agent is then served the last known prompt, or the
request's own system prompt when none is known. Errors of the user's model or tools propagate
unchanged (and are noted on the trace).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypeVar, cast

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    OmitFromSchema,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langgraph.config import get_config
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.pregel import Pregel
from langgraph.runtime import Runtime
from langgraph.types import Command

from diffprompt.middleware._finalize import RunFinalizer
from diffprompt.middleware._limits import TraceLimits
from diffprompt.middleware._run import RunRecord, RunTable, chat_model_name, describe, error_reason
from diffprompt.middleware.feedback import record_feedback
from diffprompt.middleware.prompts import PromptView, check_slot
from diffprompt.store.base import Store
from diffprompt.store.recorder import Recorder
from diffprompt.types import Feedback, FeedbackKind, Trace, new_id, utcnow

log = logging.getLogger("diffprompt.middleware")

_G = TypeVar("_G", bound=Pregel[Any, Any, Any, Any])
_PRIVATE = OmitFromSchema(input=True, output=True)
_OUTPUT_ONLY = OmitFromSchema(input=True, output=False)


class DiffpromptState(AgentState[Any]):
    """Agent state fields the middleware adds.

    ``diffprompt_trace_id`` / ``diffprompt_thread_id`` come back in the run's output (for feedback);
    ``diffprompt_version_id`` is private and persists with a checkpointer, so a thread keeps its
    pinned version across runs and process restarts.
    """

    diffprompt_trace_id: NotRequired[Annotated[str, _OUTPUT_ONLY]]
    diffprompt_thread_id: NotRequired[Annotated[str, _OUTPUT_ONLY]]
    diffprompt_version_id: NotRequired[Annotated[str | None, _PRIVATE]]


def _run_config() -> Mapping[str, Any]:
    try:
        return get_config().get("configurable") or {}
    except RuntimeError:  # called outside a runnable context
        return {}


class PromptAdaptationMiddleware(AgentMiddleware[DiffpromptState, Any, Any]):
    """Pins one prompt version per thread, injects it, and records each run as a trace."""

    state_schema = DiffpromptState

    def __init__(
        self,
        slot: str,
        store: Store,
        *,
        recorder: Recorder | None = None,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        max_threads: int = 100_000,
        stale_run_s: float = 3600.0,
        spool_dir: str | Path | None = None,
        limits: TraceLimits | None = None,
    ) -> None:
        super().__init__()
        check_slot(store, slot)
        self.slot, self.store = slot, store
        self.recorder = recorder if recorder is not None else Recorder.for_store(store, spool_dir=spool_dir)
        self.view = PromptView(slot, store, refresh_s=refresh_s, clock=clock, max_threads=max_threads)
        self.runs = RunTable(max_threads=max_threads, stale_s=stale_run_s)
        self._now = now
        self._next_sweep = 0.0
        self._sys_cache: dict[str, SystemMessage] = {}
        self.limits = limits or TraceLimits()
        self._finalizer = RunFinalizer(self._abort)

    @property
    def name(self) -> str:
        return f"PromptAdaptationMiddleware[{self.slot}]"

    # -- public helpers ----------------------------------------------------------------------
    def wrap(self, agent: _G) -> _G:
        """``agent`` (a compiled ``create_agent`` graph using this middleware) that records failed runs.

        Returns ``agent.with_config(callbacks=self.callbacks)``: the same graph (``invoke``, ``stream``,
        their async twins, ``get_state``, ...), whose runs that raise anywhere are recorded as error
        traces before the exception propagates.
        """
        return agent.with_config(callbacks=self.callbacks)

    @property
    def callbacks(self) -> list[BaseCallbackHandler]:
        """The run finalizer as a callbacks list, for ``config={"callbacks": mw.callbacks}``."""
        return [self._finalizer]

    def last_trace_id(self, thread_id: str | None = None) -> str | None:
        """The id of the latest finished trace of ``thread_id`` in this process (any thread if None)."""
        return self.runs.last_trace_id(thread_id)

    def pinned_version(self, thread_id: str) -> str | None:
        """The version id this process has pinned for ``thread_id`` (None if not pinned here)."""
        pin = self.view.pinned(thread_id)
        return pin.version_id if pin else None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the recorder to write every finished trace (True when all are in the store)."""
        return self.recorder.flush(timeout)

    def record_feedback(
        self,
        *,
        trace_id: str | None = None,
        thread_id: str | None = None,
        kind: FeedbackKind,
        value: float | None = None,
        text: str = "",
        source: str = "api",
        flush_timeout: float = 5.0,
    ) -> Feedback:
        """``record_feedback`` for this slot that first waits for this process's recorder if needed.

        Use it for feedback that follows a run at once (the run's trace may still be queued);
        feedback that arrives later, from any process, can use ``diffprompt.middleware.record_feedback``.
        """
        return record_feedback(
            self.store,
            trace_id=trace_id,
            thread_id=thread_id,
            kind=kind,
            value=value,
            text=text,
            source=source,
            slot=self.slot if thread_id is not None else None,
            recorder=self.recorder,
            flush_timeout=flush_timeout,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Record every run still open as ``did_not_finish``, then flush and stop the recorder.

        Call it at shutdown: a run that started is never lost, even one that raised outside a
        wrapped agent or was paused and never resumed.
        """
        try:
            self.runs.abandon_all(self._submit, self._now())
        except Exception:
            log.exception("diffprompt: cannot record the runs still open at close")
        self.recorder.close(timeout)

    # -- run start / end ---------------------------------------------------------------------
    # A run starts lazily in its first model call (no ``before_agent`` graph node: one superstep
    # less per run); the state fields are written with that call's response (``Command``).
    def _lookup(self, request: ModelRequest[Any]) -> RunRecord | None:
        """The open run this model call continues, or None when it starts a new run."""
        rec = self.runs.get(cast("str | None", request.state.get("diffprompt_trace_id")))
        if rec is not None and rec.superseded(len(request.messages)):
            # a checkpointed thread whose previous run failed: record that one now, start anew
            self.runs.abandon(rec, self._submit, self._now())
            return None
        return rec

    def _begin(self, state: Mapping[str, Any]) -> tuple[RunRecord | None, dict[str, Any] | None]:
        try:
            cfg = _run_config()
            thread_id = str(cfg.get("thread_id") or new_id("th_"))
            pin = self.view.pin(thread_id, known_version_id=state.get("diffprompt_version_id"))
            rec = RunRecord(
                trace_id=new_id("tr_"),
                thread_id=thread_id,
                slot=self.slot,
                pin=pin,
                system_text=pin.text,
                started_at=self._now(),
                replay_key=cfg.get("diffprompt_replay_key"),
                extra=cfg.get("diffprompt_metadata") or None,
                limits=self.limits,
            )
            self.runs.open(rec)
            self._maybe_sweep()
            update: dict[str, Any] = {"diffprompt_trace_id": rec.trace_id, "diffprompt_thread_id": thread_id}
            if pin.version_id is not None:
                update["diffprompt_version_id"] = pin.version_id
            return rec, update
        except Exception:
            log.exception("diffprompt: run-start bookkeeping failed; the run continues unrecorded")
            return None, None

    def _maybe_sweep(self) -> None:
        t = time.monotonic()
        if t >= self._next_sweep:
            self._next_sweep = t + 5.0
            self.runs.sweep_stale(self._submit, self._now())

    def _submit(self, trace: Trace | Callable[[], Trace]) -> None:
        try:
            self.recorder.submit(trace)
        except Exception:  # Recorder.submit does not raise; a user-supplied recorder might
            log.exception("diffprompt: recorder rejected a trace")

    def _abort(self, rec: RunRecord, exc: BaseException) -> None:
        """Record ``rec``, whose run raised ``exc`` outside the hooks, as an error trace (no-op if closed)."""
        if self.runs.close(rec.trace_id) is None:
            return
        rec.t_end = time.perf_counter()
        reason, messages, ended_at = error_reason(exc, rec), rec.so_far, self._now()
        why = f"{reason}: {describe(exc)}"
        self._submit(lambda: rec.finish(messages, ended_at=ended_at, error=why, reason=reason))

    def _end(self, state: DiffpromptState) -> dict[str, Any] | None:
        try:
            rec = self.runs.close(state.get("diffprompt_trace_id") or "")
            if rec is None:
                return None
            rec.t_end = time.perf_counter()
            messages, ended_at = state.get("messages", ()), self._now()
            # the OpenAI-format conversion runs on the recorder's thread, off this run's latency
            self._submit(lambda: rec.finish(messages, ended_at=ended_at))
        except Exception:
            log.exception("diffprompt: after_agent bookkeeping failed; trace not recorded")
        return None

    def after_agent(self, state: DiffpromptState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Hand the finished trace to the recorder."""
        return self._end(state)

    async def aafter_agent(self, state: DiffpromptState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Async twin (no I/O: the recorder only enqueues)."""
        return self._end(state)

    # -- model calls -------------------------------------------------------------------------
    def _system_message(self, text: str) -> SystemMessage:
        msg = self._sys_cache.get(text)
        if msg is None:  # one immutable message per version text, reused by every call
            if len(self._sys_cache) > 64:
                self._sys_cache.clear()
            msg = self._sys_cache[text] = SystemMessage(content=text)
        return msg

    def _inject(self, request: ModelRequest[Any], rec: RunRecord | None) -> ModelRequest[Any]:
        if rec is None:
            return request
        try:
            if rec.system_text is not None:
                request = request.override(system_message=self._system_message(rec.system_text))
            elif request.system_message is not None:  # fallback: record what was actually served
                rec.system_text = request.system_message.text
            rec.on_model_input(request.messages, chat_model_name(request.model, request.model_settings))
            self._finalizer.attach(rec)
        except Exception:
            log.exception("diffprompt: cannot prepare the model request; serving it unchanged")
        return request

    def _prepare(self, request: ModelRequest[Any]) -> tuple[ModelRequest[Any], RunRecord | None, Any]:
        try:
            rec, update = self._lookup(request), None
            if rec is None:
                rec, update = self._begin(request.state)
        except Exception:
            log.exception("diffprompt: cannot prepare the model request; serving it unchanged")
            return request, None, None
        return self._inject(request, rec), rec, update

    async def _aprepare(self, request: ModelRequest[Any]) -> tuple[ModelRequest[Any], RunRecord | None, Any]:
        try:
            rec, update = self._lookup(request), None
            if rec is None:
                if self.view.refresh_due():  # store reads in a worker thread (it carries the context)
                    rec, update = await asyncio.to_thread(self._begin, request.state)
                else:
                    rec, update = self._begin(request.state)
        except Exception:
            log.exception("diffprompt: cannot prepare the model request; serving it unchanged")
            return request, None, None
        return self._inject(request, rec), rec, update

    def _final_answer(self, rec: RunRecord, result: Any) -> None:
        """Hook for the no-end-node variant: finish the run at the model's final answer."""

    def _after_model(self, rec: RunRecord | None, result: Any, t0: float, update: dict[str, Any] | None) -> Any:
        if rec is None:
            return result
        try:
            rec.on_model_result(result, (time.perf_counter() - t0) * 1000.0)
            self._final_answer(rec, result)
        except Exception:
            log.exception("diffprompt: cannot record the model call")
        if update is None:
            return result
        if isinstance(result, AIMessage):
            result = ModelResponse(result=[result])
        if isinstance(result, ModelResponse):  # the run's first call: name its trace in the state
            return ExtendedModelResponse(model_response=result, command=Command(update=update))
        log.warning("diffprompt: unexpected model result %s; trace id not in the state", type(result).__name__)
        return result

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> Any:
        """Start the run on its first call; inject the pinned prompt; record latency and usage."""
        request, rec, update = self._prepare(request)
        t0 = time.perf_counter()
        try:
            result = handler(request)
        except Exception as exc:
            if rec is not None:
                rec.on_model_error(exc)
            raise
        return self._after_model(rec, result, t0, update)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Any:
        """Async twin of ``wrap_model_call`` (a due prompt refresh runs in a worker thread)."""
        request, rec, update = await self._aprepare(request)
        t0 = time.perf_counter()
        try:
            result = await handler(request)
        except Exception as exc:
            if rec is not None:
                rec.on_model_error(exc)
            raise
        return self._after_model(rec, result, t0, update)

    # -- tool calls --------------------------------------------------------------------------
    def _tool_rec(self, request: ToolCallRequest) -> RunRecord | None:
        try:
            state = request.state
            return self.runs.get(state.get("diffprompt_trace_id") if isinstance(state, dict) else None)
        except Exception:
            return None

    @staticmethod
    def _after_tool(
        rec: RunRecord | None, request: ToolCallRequest, result: Any, t0: float, status: str
    ) -> None:
        if rec is None:
            return
        try:
            if isinstance(result, ToolMessage) and result.status == "error":
                status = "error"
            elif isinstance(result, Command):
                status = "command"
            rec.on_tool(request.tool_call.get("name", "?"), (time.perf_counter() - t0) * 1000.0, status, result)
        except Exception:
            log.exception("diffprompt: cannot record the tool call")

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        """Record tool latency and status (results are recorded from the final messages)."""
        rec, t0 = self._tool_rec(request), time.perf_counter()
        try:
            result = handler(request)
        except Exception:
            self._after_tool(rec, request, None, t0, "raised")
            raise
        self._after_tool(rec, request, result, t0, "ok")
        return result

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Async twin of ``wrap_tool_call``."""
        rec, t0 = self._tool_rec(request), time.perf_counter()
        try:
            result = await handler(request)
        except Exception:
            self._after_tool(rec, request, None, t0, "raised")
            raise
        self._after_tool(rec, request, result, t0, "ok")
        return result


class FinalAnswerPromptAdaptationMiddleware(PromptAdaptationMiddleware):
    """``PromptAdaptationMiddleware`` without the ``after_agent`` graph node (one superstep less per run).

    The run's trace is finished in the model call whose answer has no tool calls (or carries the
    structured response): the end of a plain ``create_agent`` loop. Runs that end otherwise (a
    ``return_direct`` tool, an error, a jump to the end from another middleware) are finished as
    "did not finish" by the sweep or ``close()``. Do not use it with a middleware whose
    ``after_model`` jumps back to the model after a final answer (e.g. a simulated-user loop): each
    answer would end a trace.
    """

    after_agent = AgentMiddleware.after_agent  # type: ignore[assignment]
    aafter_agent = AgentMiddleware.aafter_agent  # type: ignore[assignment]

    def _final_answer(self, rec: RunRecord, result: Any) -> None:
        msgs = getattr(result, "result", result)
        msgs = msgs if isinstance(msgs, list) else [msgs]
        if getattr(result, "structured_response", None) is None and (
            not msgs or not isinstance(msgs[-1], AIMessage) or msgs[-1].tool_calls
        ):
            return
        if self.runs.close(rec.trace_id) is None:
            return
        rec.t_end = time.perf_counter()
        messages, ended_at = [*rec.seen_in, *msgs], self._now()
        self._submit(lambda: rec.finish(messages, ended_at=ended_at))
