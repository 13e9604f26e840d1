"""The scheduler's rollout jobs: the canary watch, and the drift trigger's check. Store in, values out.

``run_watch`` is one monitor evaluation for a job (no canary is a quiet no-op, not an error).
``drift_tick`` decides whether the active version drifted and names the evidence with a stable
tick key, so one drift (or one model change) starts exactly one round: the key is the trace at
which the detector alarmed (it restarts after each alarm) or at which the target model changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from diffprompt.rollout.config import DriftConfig, RolloutConfig
from diffprompt.rollout.drift import DriftResult, detect
from diffprompt.rollout.monitor import watch_once
from diffprompt.store.base import Store
from diffprompt.types import TraceWithFeedback, utcnow


def run_watch(store: Store, slot: str, cfg: RolloutConfig, *, clock: Callable[[], datetime] = utcnow) -> dict[str, Any]:
    """One evaluation of the slot's canary, acting on the decision; a summary for the job's event."""
    if store.slot_state(slot).canary_version_id is None:
        return {"status": "no_canary", "slot": slot}
    w = watch_once(store, slot, cfg, clock=clock)
    r = w.decision.stats.reward
    return {
        "status": "watched",
        "slot": slot,
        "decision": w.decision.kind,
        "action": w.action,
        "audit_id": w.audit_id,
        "record_id": w.record_id,
        "difference": r.estimate,
        "lo": r.lo,
        "hi": r.hi,
        "canary_n": r.canary.n,
        "incumbent_n": r.incumbent.n,
    }


def active_since(store: Store, slot: str) -> datetime | None:
    """When the active version last became active (its create / promote / rollback audit entry)."""
    active = store.slot_state(slot).active_version_id
    for entry in reversed(store.audit_log(slot)):
        if entry.to_version_id == active and entry.action in ("create", "promote", "rollback"):
            return entry.created_at
    return None


def active_threads(store: Store, slot: str) -> list[TraceWithFeedback]:
    """The active version's threads since it became active, oldest first."""
    active = store.slot_state(slot).active_version_id
    window = store.window(slot, since=active_since(store, slot))
    own = [t for t in window if t.trace.version_id == active]
    return sorted(own, key=lambda t: (t.trace.started_at, t.trace.id))


def _model(t: TraceWithFeedback) -> str | None:
    m = t.trace.metadata.get("model") if isinstance(t.trace.metadata, dict) else None
    return m if isinstance(m, str) and m else None


def drift_tick(store: Store, slot: str, cfg: DriftConfig, *, tune_n: int) -> tuple[str | None, DriftResult]:
    """(tick key or None, the evidence) for the active version of ``slot``."""
    threads = active_threads(store, slot)
    scored = [t for t in threads if t.reward is not None]
    result = detect(
        [float(t.reward) for t in scored if t.reward is not None],
        baseline_threads=cfg.baseline_threads,
        alpha_baseline=cfg.alpha_baseline,
        drop=cfg.drop,
        arl=cfg.arl,
        tune_n=tune_n,
        models=[_model(t) for t in threads] if cfg.on_model_change else (),
    )
    if not result.drifted:
        return None, result
    active = store.slot_state(slot).active_version_id
    if result.model_change_at is not None:
        at = threads[result.model_change_at].trace.id
        key = f"model|{active}|{at}"
    else:
        at = scored[cfg.baseline_threads + result.alarms[-1]].trace.id
        key = f"drop|{active}|{at}"
    return "d" + hashlib.sha256(key.encode()).hexdigest()[:16], result
