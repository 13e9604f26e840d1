"""Per-run bookkeeping shared by the agent middleware and the graph wrapper.

A ``RunRecord`` collects one run's model and tool events and turns into a ``Trace`` at its end.
Every trace says how its run ended: ``metadata["outcome"]`` is ``"ok"`` or ``"error"``, and an error
trace carries ``metadata["error_reason"]`` (one of ``ErrorReason``) with ``Trace.error`` naming the
root cause (``"<reason>: <ExceptionType>: <message>"`` for a run that raised).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages
from langgraph.errors import GraphRecursionError

from diffprompt.middleware._limits import TraceLimits, cap
from diffprompt.middleware.prompts import Pin
from diffprompt.types import Trace, Usage

log = logging.getLogger("diffprompt.middleware")

ErrorReason = Literal[
    "recursion_limit",  # the graph hit its recursion limit (a model looping on tool calls)
    "model_error",  # the model call raised and nothing recovered it
    "tool_error",  # a tool raised and nothing recovered it
    "stream_closed",  # the caller closed a stream before the run ended
    "cancelled",  # KeyboardInterrupt / asyncio cancellation
    "exception",  # anything else raised outside a model or tool call
    "did_not_finish",  # never saw its end (recorded by the stale sweep or close())
]
_MAX_ERROR_CHARS = 500


def error_reason(exc: BaseException, rec: RunRecord | None = None) -> ErrorReason:
    """Why a run that raised ``exc`` failed (the model/tool cases from ``rec``'s last event)."""
    if isinstance(exc, GraphRecursionError):
        return "recursion_limit"
    if isinstance(exc, GeneratorExit):
        return "stream_closed"
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "cancelled"
    if rec is not None and rec.failed_at is not None:
        return "tool_error" if rec.failed_at == -1 else "model_error"
    return "exception"


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (bounded), for ``Trace.error``."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def chat_model_name(model: object, settings: Mapping[str, Any] | None = None) -> str | None:
    """The model name a chat model declares for tracing (``ls_model_name``), per-call overrides applied."""
    if not isinstance(model, BaseChatModel):
        return None
    try:
        name = model._get_ls_params(**dict(settings or {})).get("ls_model_name")
    except Exception:  # a provider's override may reject unknown settings
        return None
    return name if isinstance(name, str) and name else None


def to_openai(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages -> OpenAI chat-format dicts (tool calls and tool results included)."""
    out = convert_to_openai_messages(list(messages))
    return out if isinstance(out, list) else [out]


class RunRecord:
    """What one run (one ``invoke``/``stream`` of one thread) has done so far.

    Model calls are sequential within a run, tool calls may run in parallel threads; every mutation
    is a single ``list.append`` or guarded by ``lock``.
    """

    __slots__ = (
        "ai_tool_calls",
        "errors",
        "extra",
        "failed_at",
        "last_t",
        "limits",
        "lock",
        "model_ms",
        "model_name",
        "models",
        "pin",
        "replay_key",
        "seen_in",
        "seen_out",
        "slot",
        "started_at",
        "system_text",
        "t0",
        "t_end",
        "tail",
        "thread_id",
        "tool_events",
        "trace_id",
        "usage",
    )

    def __init__(
        self,
        *,
        trace_id: str,
        thread_id: str,
        slot: str,
        pin: Pin,
        system_text: str | None,
        started_at: datetime,
        replay_key: str | None = None,
        extra: Mapping[str, Any] | None = None,
        limits: TraceLimits | None = None,
    ) -> None:
        self.trace_id, self.thread_id, self.slot, self.pin = trace_id, thread_id, slot, pin
        self.system_text = system_text
        self.started_at = started_at
        self.t0 = self.last_t = time.perf_counter()
        self.t_end: float | None = None
        # the latest model input (by reference, never copied on the hot path) and its output
        self.seen_in: Sequence[BaseMessage] = ()
        self.seen_out: list[BaseMessage] = []
        # set while the latest event raised: the failed model call's input length (-1: a tool raised)
        self.failed_at: int | None = None
        self.replay_key = replay_key
        self.extra = dict(extra or {})
        self.model_ms: list[float] = []
        self.tool_events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.usage: list[tuple[int, int]] = []
        self.ai_tool_calls: list[int] = []
        self.limits = limits or TraceLimits()
        self.model_name: str | None = None  # what the current model call asked for, if known
        self.models: list[str] = []  # the model that answered each successful call, when known
        self.tail: list[ToolMessage] = []  # tool results after the latest model output
        self.lock = threading.Lock()

    @property
    def seen(self) -> list[BaseMessage]:
        """The latest model input plus its output (what an unfinished run is recorded with)."""
        return [*self.seen_in, *self.seen_out]

    @property
    def so_far(self) -> list[BaseMessage]:
        """``seen`` plus the tool results that came after it, in the order of their calls."""
        with self.lock:
            tail = list(self.tail)
        calls = [c.get("id") for m in self.seen_out if isinstance(m, AIMessage) for c in m.tool_calls]
        order = {cid: i for i, cid in enumerate(calls)}
        tail.sort(key=lambda t: order.get(t.tool_call_id, len(order)))
        return [*self.seen, *tail]

    def superseded(self, n_messages: int) -> bool:
        """True when this run failed and a model call with ``n_messages`` inputs is not its retry.

        With a checkpointer the state still names a failed run's trace when the thread's next run
        starts; such a call begins a new run instead of continuing the failed one.
        """
        return self.failed_at is not None and self.failed_at != n_messages

    def on_model_result(self, result: Any, ms: float) -> None:
        """Record one model call; ``result`` is a ``ModelResponse``, an ``AIMessage`` or a list."""
        self.model_ms.append(round(ms, 3))
        self.last_t = time.perf_counter()
        msgs = getattr(result, "result", result)
        msgs = msgs if isinstance(msgs, list) else [msgs]
        self.seen_out.extend(msgs)
        self.failed_at = None
        name = self.model_name
        for m in msgs:
            if isinstance(m, AIMessage):
                name = name or m.response_metadata.get("model_name") or None
                um: Mapping[str, Any] = m.usage_metadata or {}
                self.usage.append((int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0))))
                self.ai_tool_calls.append(len(m.tool_calls))
        if isinstance(name, str) and name:
            self.models.append(name)

    def on_model_input(self, messages: Sequence[BaseMessage], model_name: str | None = None) -> None:
        self.seen_in, self.seen_out, self.model_name = messages, [], model_name
        with self.lock:
            self.tail = []

    def on_model_error(self, exc: BaseException) -> None:
        self.last_t = time.perf_counter()
        self.failed_at = len(self.seen_in)
        self.errors.append(f"model call failed: {type(exc).__name__}: {exc}")

    def on_tool(self, name: str, ms: float, status: str, result: Any = None) -> None:
        self.last_t = time.perf_counter()
        self.failed_at = -1 if status == "raised" else None
        self.tool_events.append({"name": name, "ms": round(ms, 3), "status": status})
        if isinstance(result, ToolMessage):
            with self.lock:
                self.tail.append(result)

    def finish(
        self,
        messages: Sequence[BaseMessage],
        *,
        ended_at: datetime,
        error: str | None = None,
        reason: ErrorReason | None = None,
    ) -> Trace:
        """The episode as a ``Trace`` (system message first, then the conversation, within ``limits``).

        ``error``/``reason`` mark a run that did not end normally (``reason`` defaults to
        ``"exception"`` when only ``error`` is given); the run's own model errors come first.
        """
        convo = to_openai(messages)
        if self.system_text is not None:
            convo.insert(0, {"role": "system", "content": self.system_text})
        convo, truncated = cap(convo, self.limits)
        errors = [*self.errors, error] if error else self.errors
        meta: dict[str, Any] = {
            "canary": self.pin.canary,
            "served": "pinned" if self.pin.version_id else "fallback",
            "model_ms": list(self.model_ms),
            "tools": list(self.tool_events),
            "outcome": "error" if error or reason else "ok",
            **self.extra,
        }
        models = self.models or ([self.model_name] if self.model_name else [])  # a failed call's target
        if models:
            meta["model"] = models[-1]
            if len(set(models)) > 1:
                meta["models"] = list(dict.fromkeys(models))
        if error or reason:
            meta["error_reason"] = reason or "exception"
        if errors:
            meta["errors"] = list(errors)
        if truncated:
            meta["truncated"] = truncated
        return Trace(
            id=self.trace_id,
            slot=self.slot,
            version_id=self.pin.version_id,
            thread_id=self.thread_id,
            messages=tuple(convo),
            started_at=self.started_at,
            ended_at=ended_at,
            latency_ms=((self.t_end or time.perf_counter()) - self.t0) * 1000.0,
            usage=Usage(
                input_tokens=sum(u[0] for u in self.usage), output_tokens=sum(u[1] for u in self.usage)
            ),
            model_calls=len(self.model_ms),
            tool_calls=max(sum(self.ai_tool_calls), len(self.tool_events)),
            replay_key=self.replay_key,
            error=errors[0] if errors else None,  # the root cause
            metadata=meta,
        )


class RunTable:
    """Open runs by trace id plus the last finished trace per thread (both bounded)."""

    def __init__(
        self, *, max_threads: int = 100_000, stale_s: float = 3600.0, error_grace_s: float = 30.0
    ) -> None:
        self._open: dict[str, RunRecord] = {}
        self._last: OrderedDict[str, str] = OrderedDict()
        self._last_any: str | None = None
        self._lock = threading.Lock()
        self._max_threads = max_threads
        self.stale_s, self.error_grace_s = stale_s, error_grace_s

    def open(self, rec: RunRecord) -> None:
        with self._lock:
            self._open[rec.trace_id] = rec

    def get(self, trace_id: str | None) -> RunRecord | None:
        return self._open.get(trace_id) if trace_id else None

    def close(self, trace_id: str) -> RunRecord | None:
        with self._lock:
            rec = self._open.pop(trace_id, None)
            if rec is not None:
                self._last[rec.thread_id] = trace_id
                self._last.move_to_end(rec.thread_id)
                self._last_any = trace_id
                if len(self._last) > self._max_threads:
                    self._last.popitem(last=False)
            return rec

    def last_trace_id(self, thread_id: str | None = None) -> str | None:
        with self._lock:
            return self._last_any if thread_id is None else self._last.get(thread_id)

    def sweep_stale(self, submit: Callable[[Callable[[], Trace]], None], now: datetime) -> int:
        """Finish runs that never reached their end as error traces.

        A run is stale ``stale_s`` after its start, or ``error_grace_s`` after its latest event
        when that event raised (a model or tool error no retry recovered).

        The traces are handed to ``submit`` as builders, so the message conversion runs on the
        recorder's thread.
        """
        t = time.perf_counter()
        with self._lock:
            stale = [
                r
                for r in self._open.values()
                if r.t0 < t - self.stale_s or (r.failed_at is not None and r.last_t < t - self.error_grace_s)
            ]
        return sum(self.abandon(rec, submit, now) for rec in stale)

    def abandon_all(self, submit: Callable[[Callable[[], Trace]], None], now: datetime) -> int:
        """Finish every open run as ``did_not_finish`` (at shutdown: nothing that started is lost)."""
        with self._lock:
            recs = list(self._open.values())
        return sum(self.abandon(rec, submit, now) for rec in recs)

    def abandon(self, rec: RunRecord, submit: Callable[[Callable[[], Trace]], None], now: datetime) -> bool:
        """Close ``rec`` as a run that did not finish and submit its error trace (False if closed)."""
        if self.close(rec.trace_id) is None:
            return False
        why = "did_not_finish: the run never reached its end (it raised or was cancelled outside a wrapped agent)"
        seen = rec.so_far
        submit(lambda: rec.finish(seen, ended_at=now, error=why, reason="did_not_finish"))
        return True

    def __len__(self) -> int:
        return len(self._open)
