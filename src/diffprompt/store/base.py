"""The store contract: every backend (SQL over SQLite/PostgreSQL, in-memory) implements ``Store``.

The contract suite in ``tests/store/test_contract.py`` runs against every backend; it is the
executable form of the docstrings below. All methods are thread-safe. Value objects in and out
(``diffprompt.types``); table classes never leave the backend.

Failure behaviour: unknown ids raise ``NotFoundError``; contradictions (a rollback to another slot's
version, promoting a version of another slot) raise ``ConflictError``; bad values raise
``ValidationError``; an unreachable database raises ``StoreError`` whose message says what to check.
A method that raises has written nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from diffprompt.types import (
    AuditEntry,
    Feedback,
    PromptVersion,
    SlotState,
    Trace,
    TraceWithFeedback,
)


@runtime_checkable
class Store(Protocol):
    """Persistence for slots, prompt versions, pointers + audit, traces, feedback and optimizer runs."""

    # --- slots and versions -------------------------------------------------------------------
    def create_slot(
        self, slot: str, seed_text: str, *, actor: str = "system", protected_span_ids: Sequence[str] = ()
    ) -> PromptVersion:
        """Create a slot with a seed version that becomes active.

        Idempotent for the same seed text;
        ``ConflictError`` if the slot exists with a different seed.
        """
        ...

    def list_slots(self) -> list[SlotState]: ...

    def slot_state(self, slot: str) -> SlotState:
        """Active/canary pointers and the revision counter (cheap; called by live processes)."""
        ...

    def set_protected_spans(self, slot: str, span_ids: Sequence[str], *, actor: str, reason: str) -> None: ...

    def add_version(
        self, slot: str, text: str, *, parent_id: str | None, origin: str, note: str = ""
    ) -> PromptVersion:
        """Store an immutable version (not activated).

        Same text under the same slot returns the
        existing version (content-hash dedup).
        """
        ...

    def get_version(self, version_id: str) -> PromptVersion: ...

    def list_versions(self, slot: str) -> list[PromptVersion]:
        """Oldest first."""
        ...

    def active_version(self, slot: str) -> PromptVersion: ...

    # --- pointer moves (atomic, serialised, idempotent, audited) ------------------------------
    def promote(self, slot: str, version_id: str, *, actor: str, reason: str) -> AuditEntry:
        """Make ``version_id`` active and clear any canary, in one transaction with its audit row.

        Promoting the already-active version is a no-op that returns the last audit entry.
        """
        ...

    def rollback(self, slot: str, version_id: str | None = None, *, actor: str, reason: str) -> AuditEntry:
        """Activate an earlier version of this slot (default: the previously active one)."""
        ...

    def set_canary(
        self, slot: str, version_id: str | None, share: float, *, actor: str, reason: str
    ) -> AuditEntry:
        """Serve ``version_id`` to a hashed ``share`` (0 < share < 1) of new threads; None clears."""
        ...

    def audit_log(self, slot: str) -> list[AuditEntry]:
        """Oldest first."""
        ...

    # --- traces and feedback -------------------------------------------------------------------
    def add_traces(self, traces: Sequence[Trace]) -> int:
        """Insert a batch in one transaction.

        Traces whose id already exists are skipped (so the
        recorder may retry a batch safely). Returns how many were new.
        """
        ...

    def get_trace(self, trace_id: str) -> Trace: ...

    def trace_for_thread(self, thread_id: str, slot: str | None = None) -> Trace:
        """The most recent trace of a thread."""
        ...

    def list_traces(
        self,
        slot: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        version_id: str | None = None,
        limit: int | None = None,
    ) -> list[Trace]:
        """Oldest first."""
        ...

    def count_traces(self, slot: str | None = None) -> int: ...

    def add_feedback(self, feedback: Sequence[Feedback]) -> list[Feedback]:
        """Validate (known trace, kind, value range) and insert all-or-nothing; returns with ids."""
        ...

    def feedback_for(self, trace_ids: Sequence[str]) -> list[Feedback]: ...

    def window(
        self,
        slot: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[TraceWithFeedback]:
        """Traces of a slot joined with their feedback: what an optimizer round reads."""
        ...

    def stats(self, slot: str | None = None) -> dict[str, Any]:
        """At least ``traces``, ``feedback``, ``mean_reward`` (over traces with reward feedback)."""
        ...

    # --- optimizer runs, leases and schedules (used by optimize/ and scheduler) ----------------
    def save_run(self, run_id: str, slot: str, record: dict[str, Any], *, status: str) -> None:
        """Insert or update an optimizer run's JSON record and status."""
        ...

    def get_run(self, run_id: str) -> dict[str, Any]: ...

    def list_runs(self, slot: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]: ...

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the named lease if it is free, expired or already ``owner``'s."""
        ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def close(self) -> None: ...
