"""``RunFinalizer``: record the trace of an agent run that raised anywhere, before the error reaches the caller.

The agent middleware sees model and tool calls, and ``after_agent`` when a run ends normally. A run
that dies elsewhere — LangGraph's recursion limit (a model looping on tool calls), a tool or another
middleware raising, a stream closed early — never reaches ``after_agent``. ``PromptAdaptationMiddleware.wrap``
binds this callback handler to the compiled agent (``agent.with_config(callbacks=[...])``): it
follows the run tree (``on_chain_start``), the middleware attaches each new run's ``RunRecord`` to
its root, and when the root run errors (``on_chain_error``, which LangGraph calls before it
re-raises) the middleware records those runs as error traces. The exception itself propagates
unchanged; a failure in here is logged and never replaces it. LangGraph's control-flow signals
(``GraphBubbleUp``: interrupts, parent commands, drains) are not failures and record nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp

from diffprompt.middleware._run import RunRecord

log = logging.getLogger("diffprompt.middleware")


class RunFinalizer(BaseCallbackHandler):
    """Run-tree bookkeeping plus ``on_error(rec, exc)`` for every record of a root run that raised.

    Thread-safe and inline (no executor hop, so it runs before LangGraph re-raises). Memory is
    bounded by the runs in flight: every entry is removed when its run ends.
    """

    run_inline = True
    raise_error = False  # LangChain logs a handler's own failure; never raise into the agent

    def __init__(self, on_error: Callable[[RunRecord, BaseException], None]) -> None:
        self._on_error = on_error
        self._parent: dict[UUID, UUID | None] = {}
        self._records: dict[UUID, list[RunRecord]] = {}
        self._lock = threading.Lock()

    def _root_of(self, run_id: UUID | None) -> UUID | None:
        """The topmost run this handler saw above ``run_id`` (None when it saw none)."""
        root = None
        with self._lock:
            for _ in range(10_000):  # a cycle would be a bug in the run tree, never loop forever
                if run_id is None or run_id not in self._parent:
                    return root
                root, run_id = run_id, self._parent[run_id]
        return root

    def attach(self, rec: RunRecord) -> bool:
        """Tie ``rec`` to the root run of the current runnable context (False outside a wrapped run)."""
        try:
            cb = get_config().get("callbacks")
        except RuntimeError:  # not inside a runnable
            return False
        root = self._root_of(cb.parent_run_id if isinstance(cb, BaseCallbackManager) else None)
        if root is None:
            return False
        with self._lock:
            recs = self._records.setdefault(root, [])
            if not any(r is rec for r in recs):  # every model call attaches; a resumed run re-attaches
                recs.append(rec)
        return True

    def _is_root(self, run_id: UUID) -> bool:
        parent = self._parent.get(run_id)
        return parent is None or parent not in self._parent

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        with self._lock:
            self._parent[run_id] = parent_run_id

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        # a normal end: after_agent has recorded the run, or it is paused (an interrupt) and
        # continues in the thread's next invocation
        with self._lock:
            self._records.pop(run_id, None)
            self._parent.pop(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        with self._lock:
            recs = self._records.pop(run_id, []) if self._is_root(run_id) else []
            self._parent.pop(run_id, None)
        if isinstance(error, GraphBubbleUp):
            return
        for rec in recs:
            try:
                self._on_error(rec, error)
            except Exception:
                log.exception("diffprompt: cannot record the failed run %s", rec.trace_id)
