"""Per-run bookkeeping shared by the agent middleware and the graph wrapper.

A ``RunRecord`` collects one run's model and tool events and turns into a ``Trace`` at its end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages

from diffprompt.middleware.prompts import Pin
from diffprompt.types import Trace, Usage

log = logging.getLogger("diffprompt.middleware")


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
        "lock",
        "model_ms",
        "pin",
        "replay_key",
        "seen_in",
        "seen_out",
        "slot",
        "started_at",
        "system_text",
        "t0",
        "t_end",
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
        self.lock = threading.Lock()

    @property
    def seen(self) -> list[BaseMessage]:
        """The latest model input plus its output (what an unfinished run is recorded with)."""
        return [*self.seen_in, *self.seen_out]

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
        for m in msgs:
            if isinstance(m, AIMessage):
                um: Mapping[str, Any] = m.usage_metadata or {}
                self.usage.append((int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0))))
                self.ai_tool_calls.append(len(m.tool_calls))

    def on_model_input(self, messages: Sequence[BaseMessage]) -> None:
        self.seen_in, self.seen_out = messages, []

    def on_model_error(self, exc: BaseException) -> None:
        self.last_t = time.perf_counter()
        self.failed_at = len(self.seen_in)
        self.errors.append(f"model call failed: {type(exc).__name__}: {exc}")

    def on_tool(self, name: str, ms: float, status: str) -> None:
        self.last_t = time.perf_counter()
        self.failed_at = -1 if status == "raised" else None
        self.tool_events.append({"name": name, "ms": round(ms, 3), "status": status})

    def finish(
        self, messages: Sequence[BaseMessage], *, ended_at: datetime, error: str | None = None
    ) -> Trace:
        """The finished episode as a ``Trace`` (system message first, then the conversation)."""
        convo = to_openai(messages)
        if self.system_text is not None:
            convo.insert(0, {"role": "system", "content": self.system_text})
        errors = [*self.errors, error] if error else self.errors
        meta: dict[str, Any] = {
            "canary": self.pin.canary,
            "served": "pinned" if self.pin.version_id else "fallback",
            "model_ms": list(self.model_ms),
            "tools": list(self.tool_events),
            **self.extra,
        }
        if errors:
            meta["errors"] = list(errors)
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
        """Finish runs that never reached their end (the agent raised) as error traces.

        The traces are handed to ``submit`` as builders, so the message conversion runs on the
        recorder's thread.
        """
        t = time.perf_counter()
        with self._lock:
            stale = [
                r
                for r in self._open.values()
                if r.t0 < t - self.stale_s or (r.errors and r.last_t < t - self.error_grace_s)
            ]
        return sum(self.abandon(rec, submit, now) for rec in stale)

    def abandon(self, rec: RunRecord, submit: Callable[[Callable[[], Trace]], None], now: datetime) -> bool:
        """Close ``rec`` as a run that did not finish and submit its error trace (False if closed)."""
        if self.close(rec.trace_id) is None:
            return False
        why = "run did not finish (the agent raised or was cancelled)"
        seen = rec.seen
        submit(lambda: rec.finish(seen, ended_at=now, error=why))
        return True

    def __len__(self) -> int:
        return len(self._open)
