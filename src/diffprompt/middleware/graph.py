"""``wrap_graph``: serve a slot's pinned prompt to any compiled LangGraph graph and record its runs.

A graph that is not built with ``create_agent`` has no middleware hooks, so the wrapper works from
the outside:

* **prompt in** — each run's config gets ``configurable["system_prompt"]`` (the pinned text) plus
  ``configurable["diffprompt_version_id"]``, ``["diffprompt_trace_id"]`` and
  ``["diffprompt_thread_id"]``. If the caller passes a runtime ``context`` (a dict, a dataclass or
  a pydantic model with a ``system_prompt`` field — the field name is ``context_field``), that field
  is set too. The graph's model node reads it, e.g.::

      def call_model(state, config):
          system = config["configurable"].get("system_prompt", DEFAULT)
          return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

* **recording out** — a LangChain callback handler collects model calls (input messages, output,
  ``usage_metadata``, latency) and tool calls (latency, status, results); when the run ends the
  wrapper builds the ``Trace`` (the final state's ``messages`` when the graph returns them, else
  the last model call's conversation plus later tool results) and hands it to the recorder.

The thread id is ``configurable.thread_id`` (a fresh id per run without one); the thread keeps its
pinned version for the whole episode. Traces carry the same ``outcome`` / ``error_reason`` /
``model`` metadata and ``limits`` as the agent middleware's. Bookkeeping failures are logged, never
raised; the graph's own errors propagate unchanged (and are recorded on the trace).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import LLMResult

from diffprompt.middleware._limits import TraceLimits
from diffprompt.middleware._run import RunRecord, RunTable, describe, error_reason
from diffprompt.middleware.prompts import PromptView, check_slot
from diffprompt.store.base import Store
from diffprompt.store.recorder import Recorder
from diffprompt.types import new_id, utcnow

log = logging.getLogger("diffprompt.middleware")


class TraceCallbackHandler(BaseCallbackHandler):
    """Feeds one run's model and tool events into its ``RunRecord`` (thread-safe, run inline)."""

    run_inline = True  # record in order, without an executor hop in async runs

    def __init__(self, rec: RunRecord) -> None:
        self.rec = rec
        self._t: dict[UUID, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.tail: list[BaseMessage] = []  # tool results after the last model call

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kw: Any
    ) -> None:
        with self._lock:
            self._t[run_id] = (time.perf_counter(), "model")
        meta = kw.get("metadata")
        name = meta.get("ls_model_name") if isinstance(meta, Mapping) else None
        self.rec.on_model_input(messages[0] if messages else [], name if isinstance(name, str) else None)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            t0, _ = self._t.pop(run_id, (time.perf_counter(), "model"))
            self.tail = []
        gens = response.generations[0] if response.generations else []
        msgs = [g.message for g in gens if hasattr(g, "message")]
        self.rec.on_model_result(msgs, (time.perf_counter() - t0) * 1000.0)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            self._t.pop(run_id, None)
        self.rec.on_model_error(error)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            self._t[run_id] = (
                time.perf_counter(),
                str((serialized or {}).get("name") or kw.get("name") or "?"),
            )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            t0, name = self._t.pop(run_id, (time.perf_counter(), "?"))
            if isinstance(output, ToolMessage):
                self.tail.append(output)
        status = output.status if isinstance(output, ToolMessage) else "ok"
        self.rec.on_tool(name, (time.perf_counter() - t0) * 1000.0, status)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            t0, name = self._t.pop(run_id, (time.perf_counter(), "?"))
        self.rec.on_tool(name, (time.perf_counter() - t0) * 1000.0, "error")


def _with_callback(callbacks: Any, handler: BaseCallbackHandler) -> Any:
    if callbacks is None:
        return [handler]
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return manager
    return [*callbacks, handler]


def _with_context_field(context: Any, field: str, text: str) -> Any:
    if isinstance(context, Mapping):
        return {**context, field: text}
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        if any(f.name == field for f in dataclasses.fields(context)):
            return dataclasses.replace(context, **{field: text})
    elif hasattr(context, "model_copy") and field in getattr(type(context), "model_fields", {}):
        return context.model_copy(update={field: text})
    return context


class _Run:
    """One wrapped run: the patched config/kwargs and how to finish it."""

    def __init__(self, owner: GraphWrapper, config: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> None:
        self.owner = owner
        self.config: dict[str, Any] = dict(config or {})
        self.kwargs = kwargs
        self.rec: RunRecord | None = None
        self.handler: TraceCallbackHandler | None = None
        self.last_values: Any = None
        try:
            self._prepare()
        except Exception:
            log.exception("diffprompt: wrap_graph bookkeeping failed; the run continues unrecorded")
            self.rec = None

    def _prepare(self) -> None:
        o = self.owner
        configurable = dict(self.config.get("configurable") or {})
        thread_id = str(configurable.get("thread_id") or new_id("th_"))
        pin = o.view.pin(thread_id)
        rec = RunRecord(
            trace_id=new_id("tr_"),
            thread_id=thread_id,
            slot=o.slot,
            pin=pin,
            system_text=None,
            started_at=o.now(),
            replay_key=configurable.get("diffprompt_replay_key"),
            extra=configurable.get("diffprompt_metadata") or None,
            limits=o.limits,
        )
        configurable.update(
            diffprompt_trace_id=rec.trace_id,
            diffprompt_thread_id=thread_id,
            diffprompt_version_id=pin.version_id,
        )
        if pin.text is not None:
            configurable["system_prompt"] = pin.text
            if self.kwargs.get("context") is not None:
                self.kwargs["context"] = _with_context_field(
                    self.kwargs["context"], o.context_field, pin.text
                )
        self.handler = TraceCallbackHandler(rec)
        self.config["configurable"] = configurable
        self.config["callbacks"] = _with_callback(self.config.get("callbacks"), self.handler)
        o.runs.open(rec)
        self.rec = rec

    def observe(self, chunk: Any) -> None:
        if isinstance(chunk, Mapping) and isinstance(chunk.get("messages"), list):
            self.last_values = chunk

    def finish(self, output: Any = None, error: BaseException | None = None) -> None:
        rec, o = self.rec, self.owner
        if rec is None or o.runs.close(rec.trace_id) is None:
            return
        try:
            final = output if output is not None else self.last_values
            if isinstance(final, Mapping) and isinstance(final.get("messages"), list):
                messages = list(final["messages"])
            else:  # reconstruct: the last model call's conversation plus later tool results
                messages = [*rec.seen, *(self.handler.tail if self.handler else [])]
            if not any(isinstance(m, SystemMessage) for m in messages):
                seen_sys = [m for m in rec.seen if isinstance(m, SystemMessage)]
                rec.system_text = seen_sys[0].text if seen_sys else rec.pin.text
            if error is None:
                o.submit(rec.finish(messages, ended_at=o.now()))
            else:
                reason = error_reason(error, rec)
                why = f"{reason}: {describe(error)}"
                o.submit(rec.finish(messages, ended_at=o.now(), error=why, reason=reason))
        except Exception:
            log.exception("diffprompt: cannot record the graph run %s", rec.trace_id)


class GraphWrapper:
    """A compiled graph with prompt injection and recording; same ``invoke``/``stream`` surface."""

    def __init__(
        self,
        graph: Any,
        *,
        slot: str,
        store: Store,
        recorder: Recorder | None = None,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        context_field: str = "system_prompt",
        max_threads: int = 100_000,
        spool_dir: str | Path | None = None,
        limits: TraceLimits | None = None,
    ) -> None:
        check_slot(store, slot)  # an unknown slot fails here, not by dropping traces later
        self.graph, self.slot, self.store = graph, slot, store
        self.recorder = recorder if recorder is not None else Recorder.for_store(store, spool_dir=spool_dir)
        self.view = PromptView(slot, store, refresh_s=refresh_s, clock=clock, max_threads=max_threads)
        self.runs = RunTable(max_threads=max_threads)
        self.now = now
        self.context_field = context_field
        self.limits = limits or TraceLimits()

    def submit(self, trace: Any) -> None:
        try:
            self.recorder.submit(trace)
        except Exception:
            log.exception("diffprompt: recorder rejected trace %s", getattr(trace, "id", "?"))

    def last_trace_id(self, thread_id: str | None = None) -> str | None:
        """The latest finished trace id of ``thread_id`` in this process (any thread if None)."""
        return self.runs.last_trace_id(thread_id)

    def flush(self, timeout: float = 10.0) -> bool:
        return self.recorder.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.recorder.close(timeout)

    def invoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        run = _Run(self, config, kwargs)
        try:
            out = self.graph.invoke(input, run.config, **run.kwargs)
        except BaseException as exc:
            run.finish(error=exc)
            raise
        run.finish(out)
        return out

    async def ainvoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        run = _Run(self, config, kwargs)
        try:
            out = await self.graph.ainvoke(input, run.config, **run.kwargs)
        except BaseException as exc:
            run.finish(error=exc)
            raise
        run.finish(out)
        return out

    def stream(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[Any]:
        run = _Run(self, config, kwargs)
        try:
            for chunk in self.graph.stream(input, run.config, **run.kwargs):
                run.observe(chunk)
                yield chunk
        except BaseException as exc:  # GeneratorExit: the caller closed the stream before the run ended
            run.finish(error=exc)
            raise
        run.finish()

    async def astream(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        run = _Run(self, config, kwargs)
        try:
            async for chunk in self.graph.astream(input, run.config, **run.kwargs):
                run.observe(chunk)
                yield chunk
        except BaseException as exc:  # GeneratorExit: the caller closed the stream before the run ended
            run.finish(error=exc)
            raise
        run.finish()


def wrap_graph(
    graph: Any, *, slot: str, store: Store, recorder: Recorder | None = None, **options: Any
) -> GraphWrapper:
    """Wrap a compiled LangGraph graph (see the module docstring for how the prompt gets in)."""
    return GraphWrapper(graph, slot=slot, store=store, recorder=recorder, **options)
