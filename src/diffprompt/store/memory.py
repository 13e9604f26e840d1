"""``MemoryStore``: the in-process fake of ``Store`` (same contract, same errors, nothing durable).

For tests and for users who want to try the middleware without a database. Thread-safe through one
lock; every method validates fully before mutating, so a raising call writes nothing.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from diffprompt.errors import ConflictError, NotFoundError
from diffprompt.store import _logic
from diffprompt.types import (
    AuditAction,
    AuditEntry,
    Feedback,
    PromptVersion,
    SlotState,
    Trace,
    TraceWithFeedback,
    utcnow,
)


class MemoryStore:
    """A ``Store`` held in dicts. ``clock`` is injectable for deterministic timestamps."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._slots: dict[str, SlotState] = {}
        self._history: dict[str, list[str]] = {}
        self._versions: dict[str, PromptVersion] = {}
        self._slot_versions: dict[str, list[str]] = {}
        self._audit: list[AuditEntry] = []
        self._traces: dict[str, Trace] = {}
        self._trace_order: list[str] = []
        self._feedback: list[Feedback] = []
        self._runs: dict[str, dict[str, Any]] = {}
        self._leases: dict[str, tuple[str, datetime]] = {}

    # --- slots and versions -------------------------------------------------------------------
    def create_slot(
        self, slot: str, seed_text: str, *, actor: str = "system", protected_span_ids: Sequence[str] = ()
    ) -> PromptVersion:
        _logic.check_slot_name(slot)
        with self._lock:
            now = self._clock()
            v = _logic.make_version(slot, seed_text, parent_id=None, origin="seed", note="", created_at=now)
            if slot in self._slots:
                first = self._versions[self._slot_versions[slot][0]]
                if first.content_hash != v.content_hash:
                    raise ConflictError(
                        f"slot {slot!r} already exists with a different seed; add a version and promote it"
                    )
                return first
            protected = _logic.check_protected(v, protected_span_ids)
            self._versions[v.id] = v
            self._slot_versions[slot] = [v.id]
            self._slots[slot] = SlotState(
                slot=slot,
                active_version_id=v.id,
                canary_version_id=None,
                canary_share=0.0,
                revision=1,
                protected_span_ids=protected,
            )
            self._history[slot] = [v.id]
            self._append_audit(slot, "create", None, v.id, actor, "slot created", None, now)
            return v

    def list_slots(self) -> list[SlotState]:
        with self._lock:
            return [self._slots[s] for s in sorted(self._slots)]

    def slot_state(self, slot: str) -> SlotState:
        with self._lock:
            return self._state(slot)

    def set_protected_spans(self, slot: str, span_ids: Sequence[str], *, actor: str, reason: str) -> None:
        _logic.check_actor(actor)
        with self._lock:
            st = self._state(slot)
            protected = _logic.check_protected(self._versions[st.active_version_id], span_ids)
            if protected == st.protected_span_ids:
                return
            self._slots[slot] = replace(st, protected_span_ids=protected, revision=st.revision + 1)
            self._append_audit(slot, "protect", None, None, actor, reason, None, self._clock())

    def add_version(
        self, slot: str, text: str, *, parent_id: str | None, origin: str, note: str = ""
    ) -> PromptVersion:
        with self._lock:
            self._state(slot)
            if parent_id is not None:
                _logic.check_same_slot(slot, self.get_version(parent_id), "derive a version of")
            v = _logic.make_version(
                slot, text, parent_id=parent_id, origin=origin, note=note, created_at=self._clock()
            )
            if v.id in self._versions:
                return self._versions[v.id]
            self._versions[v.id] = v
            self._slot_versions[slot].append(v.id)
            return v

    def get_version(self, version_id: str) -> PromptVersion:
        with self._lock:
            try:
                return self._versions[version_id]
            except KeyError:
                raise NotFoundError(
                    f"unknown prompt version {version_id!r}; see `diffprompt prompts list`"
                ) from None

    def list_versions(self, slot: str) -> list[PromptVersion]:
        with self._lock:
            self._state(slot)
            return [self._versions[v] for v in self._slot_versions[slot]]

    def active_version(self, slot: str) -> PromptVersion:
        with self._lock:
            return self._versions[self._state(slot).active_version_id]

    # --- pointer moves ------------------------------------------------------------------------
    def promote(
        self, slot: str, version_id: str, *, actor: str, reason: str, expected_active: str | None = None
    ) -> AuditEntry:
        _logic.check_actor(actor)
        with self._lock:
            st = self._state(slot)
            _logic.check_same_slot(slot, self.get_version(version_id), "promote")
            if st.active_version_id == version_id and st.canary_version_id is None:
                return self._last_audit(slot)
            _logic.check_expected_active(slot, st.active_version_id, expected_active, "promote")
            return self._move(st, version_id, "promote", actor, reason)

    def rollback(self, slot: str, version_id: str | None = None, *, actor: str, reason: str) -> AuditEntry:
        _logic.check_actor(actor)
        with self._lock:
            st = self._state(slot)
            target = _logic.rollback_target(self._history[slot], st.active_version_id, version_id)
            _logic.check_same_slot(slot, self.get_version(target), "roll back")
            if st.active_version_id == target and st.canary_version_id is None:
                return self._last_audit(slot)
            return self._move(st, target, "rollback", actor, reason)

    def set_canary(
        self,
        slot: str,
        version_id: str | None,
        share: float,
        *,
        actor: str,
        reason: str,
        expected_active: str | None = None,
    ) -> AuditEntry:
        _logic.check_actor(actor)
        with self._lock:
            st = self._state(slot)
            _logic.check_share(version_id, share)
            _logic.check_expected_active(slot, st.active_version_id, expected_active, "set a canary")
            if version_id is None:
                if st.canary_version_id is None:
                    return self._last_audit(slot)
                new = replace(st, canary_version_id=None, canary_share=0.0, revision=st.revision + 1)
                self._slots[slot] = new
                return self._append_audit(
                    slot, "canary_clear", st.canary_version_id, None, actor, reason, None, self._clock()
                )
            _logic.check_same_slot(slot, self.get_version(version_id), "canary")
            if version_id == st.active_version_id:
                raise ConflictError(
                    f"version {version_id} is already active in slot {slot!r}; no canary needed"
                )
            if st.canary_version_id == version_id and st.canary_share == float(share):
                return self._last_audit(slot)
            self._slots[slot] = replace(
                st, canary_version_id=version_id, canary_share=float(share), revision=st.revision + 1
            )
            return self._append_audit(
                slot, "canary", st.active_version_id, version_id, actor, reason, float(share), self._clock()
            )

    def audit_log(self, slot: str) -> list[AuditEntry]:
        with self._lock:
            self._state(slot)
            return [a for a in self._audit if a.slot == slot]

    # --- traces and feedback -------------------------------------------------------------------
    def add_traces(self, traces: Sequence[Trace]) -> int:
        for tr in traces:
            _logic.validate_trace(tr)
        with self._lock:
            new = 0
            for tr in traces:
                if tr.id in self._traces:
                    continue
                self._traces[tr.id] = _frozen_copy(tr)
                self._trace_order.append(tr.id)
                new += 1
            return new

    def get_trace(self, trace_id: str) -> Trace:
        with self._lock:
            try:
                return self._traces[trace_id]
            except KeyError:
                raise NotFoundError(f"unknown trace {trace_id!r}; see `diffprompt traces list`") from None

    def trace_for_thread(self, thread_id: str, slot: str | None = None) -> Trace:
        with self._lock:
            for tid in reversed(self._sorted_ids()):
                tr = self._traces[tid]
                if tr.thread_id == thread_id and (slot is None or tr.slot == slot):
                    return tr
            raise NotFoundError(
                f"no trace recorded for thread {thread_id!r}" + (f" in slot {slot!r}" if slot else "")
            )

    def list_traces(
        self,
        slot: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        version_id: str | None = None,
        limit: int | None = None,
    ) -> list[Trace]:
        with self._lock:
            out = [
                self._traces[t]
                for t in self._sorted_ids()
                if (slot is None or self._traces[t].slot == slot)
                and (since is None or self._traces[t].started_at >= since)
                and (until is None or self._traces[t].started_at < until)
                and (version_id is None or self._traces[t].version_id == version_id)
            ]
            return out[-limit:] if limit is not None and limit >= 0 else out if limit is None else []

    def count_traces(self, slot: str | None = None) -> int:
        with self._lock:
            return sum(1 for t in self._traces.values() if slot is None or t.slot == slot)

    def add_feedback(self, feedback: Sequence[Feedback]) -> list[Feedback]:
        _logic.validate_feedback(feedback, ())
        with self._lock:
            for fb in feedback:
                if fb.trace_id not in self._traces:
                    raise NotFoundError(f"feedback for unknown trace {fb.trace_id!r}; record the trace first")
            out = []
            for fb in feedback:
                stored = replace(
                    fb, id=len(self._feedback) + 1, value=None if fb.value is None else float(fb.value)
                )
                self._feedback.append(stored)
                out.append(stored)
            return out

    def feedback_for(self, trace_ids: Sequence[str]) -> list[Feedback]:
        wanted = set(trace_ids)
        with self._lock:
            return [f for f in self._feedback if f.trace_id in wanted]

    def window(
        self,
        slot: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[TraceWithFeedback]:
        with self._lock:
            traces = self.list_traces(slot, since=since, until=until, limit=limit)
            by_trace: dict[str, list[Feedback]] = {}
            for fb in self.feedback_for([t.id for t in traces]):
                by_trace.setdefault(fb.trace_id, []).append(fb)
            return [TraceWithFeedback(trace=t, feedback=tuple(by_trace.get(t.id, ()))) for t in traces]

    def stats(self, slot: str | None = None) -> dict[str, Any]:
        with self._lock:
            traces = self.list_traces(slot)
            ids = {t.id for t in traces}
            fbs = [f for f in self._feedback if f.trace_id in ids]
            versions = len(self._slot_versions.get(slot, ())) if slot else len(self._versions)
            return _logic.summarize(
                slot=slot,
                traces=len(traces),
                feedback=fbs,
                errors=sum(1 for t in traces if t.error),
                versions=versions,
                first=traces[0].started_at if traces else None,
                last=traces[-1].started_at if traces else None,
            )

    # --- runs and leases ----------------------------------------------------------------------
    def save_run(self, run_id: str, slot: str, record: dict[str, Any], *, status: str) -> None:
        with self._lock:
            now = self._clock()
            created = self._runs.get(run_id, {}).get("created_at", now)
            self._runs[run_id] = {
                "run_id": run_id,
                "slot": slot,
                "status": status,
                "record": copy.deepcopy(record),
                "created_at": created,
                "updated_at": now,
            }

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            if run_id not in self._runs:
                raise NotFoundError(f"unknown optimizer run {run_id!r}")
            return _run_view(self._runs[run_id])

    def list_runs(self, slot: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = [r for r in self._runs.values() if slot is None or r["slot"] == slot]
            rows.sort(key=lambda r: r["created_at"], reverse=True)
            return [_run_view(r) for r in rows[: limit if limit is not None else None]]

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            now = self._clock()
            cur = self._leases.get(name)
            if cur is None or cur[0] == owner or cur[1] <= now:
                self._leases[name] = (owner, now + timedelta(seconds=ttl_s))
                return True
            return False

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(name, ("",))[0] == owner:
                del self._leases[name]

    def close(self) -> None:
        """Nothing to release."""

    # --- internals ----------------------------------------------------------------------------
    def _state(self, slot: str) -> SlotState:
        try:
            return self._slots[slot]
        except KeyError:
            raise NotFoundError(
                f"unknown slot {slot!r}; create it with `diffprompt prompts add {slot} FILE`"
            ) from None

    def _sorted_ids(self) -> list[str]:
        order = {t: i for i, t in enumerate(self._trace_order)}
        return sorted(self._trace_order, key=lambda t: (self._traces[t].started_at, order[t]))

    def _last_audit(self, slot: str) -> AuditEntry:
        return [a for a in self._audit if a.slot == slot][-1]

    def _move(self, st: SlotState, target: str, action: AuditAction, actor: str, reason: str) -> AuditEntry:
        self._history[st.slot] = _logic.push_history(
            self._history[st.slot], target, rollback=action == "rollback"
        )
        self._slots[st.slot] = replace(
            st, active_version_id=target, canary_version_id=None, canary_share=0.0, revision=st.revision + 1
        )
        return self._append_audit(
            st.slot, action, st.active_version_id, target, actor, reason, None, self._clock()
        )

    def _append_audit(
        self,
        slot: str,
        action: AuditAction,
        src: str | None,
        dst: str | None,
        actor: str,
        reason: str,
        share: float | None,
        now: datetime,
    ) -> AuditEntry:
        entry = AuditEntry(
            id=len(self._audit) + 1,
            slot=slot,
            action=action,
            from_version_id=src,
            to_version_id=dst,
            actor=actor,
            reason=reason,
            created_at=now,
            canary_share=share,
        )
        self._audit.append(entry)
        return entry


def _frozen_copy(tr: Trace) -> Trace:
    """Deep-copy mutable payloads so a caller mutating its dicts cannot change the stored trace."""
    return replace(
        tr,
        messages=tuple(copy.deepcopy(dict(m)) for m in tr.messages),
        metadata=copy.deepcopy(dict(tr.metadata)),
    )


def _run_view(row: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(row["record"])
    out.update({k: row[k] for k in ("run_id", "slot", "status", "created_at", "updated_at")})
    return out
