"""The history of a slot's earlier optimizer runs, read back from their typed run records.

* the per-span memory of rejected edits (``RunRecord.rejected_edits``: span id -> texts), so the same
  failed text is not proposed again;
* the best and worst past versions by their replayed score (``RunRecord.scores``: version id -> mean);
* whether a window was already handled (idempotency per (slot, window)).

A record that cannot be read (an older or damaged row) contributes nothing; it never stops a round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from diffprompt.errors import NotFoundError, ValidationError
from diffprompt.optimize.record import FINISHED, RunRecord
from diffprompt.store.base import Store
from diffprompt.types import TraceWithFeedback

__all__ = ["FINISHED", "best_worst", "finished_run_for", "recent_runs", "rejected_edits", "window_key"]


def window_key(slot: str, incumbent_id: str, traces: Sequence[TraceWithFeedback]) -> str:
    """A stable key of (slot, incumbent, the window's trace ids and their rewards)."""
    h = hashlib.sha256(f"{slot}|{incumbent_id}".encode())
    for t in sorted(traces, key=lambda t: t.trace.id):
        h.update(f"|{t.trace.id}:{t.reward}".encode())
    return h.hexdigest()[:24]


def recent_runs(store: Store, slot: str, *, limit: int = 50) -> list[RunRecord]:
    """The slot's most recent run records, newest first (unreadable rows skipped)."""
    out = []
    for row in store.list_runs(slot, limit=limit):
        try:
            out.append(RunRecord.from_json(row))
        except ValidationError:
            continue
    return out


def rejected_edits(store: Store, slot: str, *, limit: int = 50) -> dict[str, tuple[str, ...]]:
    """Merge the rejected-edit memory of the slot's recent runs: ``{span id: texts}``."""
    out: dict[str, list[str]] = {}
    for run in recent_runs(store, slot, limit=limit):
        for sid, texts in run.rejected_edits.items():
            bucket = out.setdefault(sid, [])
            bucket.extend(t for t in texts if t not in bucket)
    return {k: tuple(v) for k, v in out.items()}


def best_worst(
    store: Store, slot: str, *, limit: int = 50
) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """(text, score) of the best and worst versions replayed in recent runs (None when unknown)."""
    scores: dict[str, float] = {}
    for run in recent_runs(store, slot, limit=limit):
        for vid, s in run.scores.items():
            scores.setdefault(vid, float(s))
    if len(scores) < 2:
        return None, None
    ranked = sorted(scores.items(), key=lambda kv: kv[1])

    def text(vid: str) -> str | None:
        try:
            return store.get_version(vid).text
        except NotFoundError:
            return None

    best_t, worst_t = text(ranked[-1][0]), text(ranked[0][0])
    best = (best_t, ranked[-1][1]) if best_t is not None else None
    worst = (worst_t, ranked[0][1]) if worst_t is not None else None
    return best, worst


def finished_run_for(store: Store, slot: str, key: str, *, limit: int = 50) -> RunRecord | None:
    """The most recent finished (not abandoned) run of this slot over the same window, if any."""
    for run in recent_runs(store, slot, limit=limit):
        if run.window is not None and run.window.key == key and run.finished:
            return run
    return None
