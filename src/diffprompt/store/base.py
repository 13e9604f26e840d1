"""The store contract, split by concern; every backend (SQL, in-memory) implements all of ``Store``.

* ``Registry`` — slots, immutable prompt versions, the active/canary pointer, protected spans and
  the audit log (what the middleware reads and the optimizer/rollout move);
* ``TraceLog`` — recorded episodes and their feedback (what the recorder writes and a round reads);
* ``RunLog`` — optimizer run records;
* ``Leases`` — named, expiring leases (one scheduler leader per deployment);
* ``Store`` — their union plus ``close()``, what ``open_store`` returns.

Depend on the narrowest part you use. The contract suite, ``diffprompt.store.testing``, runs against
every backend (memory, SQLite, PostgreSQL here; import it to check your own); it is the executable
form of the docstrings below. All methods are thread-safe. Value objects in and out
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
class Registry(Protocol):
    """Slots, prompt versions, the active/canary pointer, protected spans and the audit log."""

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
    def promote(
        self, slot: str, version_id: str, *, actor: str, reason: str, expected_active: str | None = None
    ) -> AuditEntry:
        """Make ``version_id`` active and clear any canary, in one transaction with its audit row.

        Promoting the already-active version is a no-op that returns the last audit entry. With
        ``expected_active``, a compare-and-set: the move happens only if that version is still the
        active one, checked under the same lock as the move (``ConflictError`` otherwise).
        """
        ...

    def rollback(self, slot: str, version_id: str | None = None, *, actor: str, reason: str) -> AuditEntry:
        """Activate an earlier version of this slot (default: the previously active one)."""
        ...

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
        """Serve ``version_id`` to a hashed ``share`` (0 < share < 1) of new threads; None clears.

        ``expected_active``: as for ``promote``, only if that version is still active.
        """
        ...

    def audit_log(self, slot: str) -> list[AuditEntry]:
        """Oldest first."""
        ...


@runtime_checkable
class TraceLog(Protocol):
    """Recorded episodes (``Trace``) and the feedback attached to them."""

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


@runtime_checkable
class RunLog(Protocol):
    """Optimizer run records (JSON documents keyed by run id)."""

    def save_run(self, run_id: str, slot: str, record: dict[str, Any], *, status: str) -> None:
        """Insert or update an optimizer run's JSON record and status."""
        ...

    def get_run(self, run_id: str) -> dict[str, Any]: ...

    def list_runs(self, slot: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]: ...


@runtime_checkable
class Leases(Protocol):
    """Named leases with an owner and an expiry (leader election without a lock server)."""

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the named lease if it is free, expired or already ``owner``'s."""
        ...

    def release_lease(self, name: str, owner: str) -> None: ...


@runtime_checkable
class Store(Registry, TraceLog, RunLog, Leases, Protocol):
    """Everything a deployment persists: the union of the four parts, plus ``close()``."""

    def close(self) -> None:
        """Release connections (idempotent); the store is unusable afterwards."""
        ...
