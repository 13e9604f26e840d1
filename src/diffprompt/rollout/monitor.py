"""The canary monitor: read both arms' live threads from the store, decide, act, audit.

``watch_once(store, slot, cfg)`` is one evaluation. The canary arm is every thread pinned to the
canary version and the incumbent arm every thread pinned to the active version, both since the
canary (last) started — its audit entry — so both arms see the same period of traffic and a
restarted canary starts afresh. Threads are scored by their feedback (reward, else
judge, else rating); every thread counts for the guardrails.

Acting (``act=True``): *promote* makes the canary active (``store.promote``); *rollback* and
*expire* clear the canary, keeping the incumbent (``store.set_canary(None)``). Each move is one
audited registry step whose reason carries the statistics as JSON. Every evaluation, waits
included, is also kept in the slot's run log as one ``rollout`` record per canary (status
``rollout``), with its latest statistics and a bounded history of evaluations.

Failure behaviour: a slot without a canary raises ``NotFoundError`` naming the command that starts
one; store errors propagate (nothing half-done: each registry move is one transaction).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from diffprompt.errors import NotFoundError
from diffprompt.rollout.config import RolloutConfig
from diffprompt.rollout.stats import ArmData, RolloutDecision, cumulative_path, evaluate
from diffprompt.store.base import Store
from diffprompt.types import TraceWithFeedback, utcnow

HISTORY = 200  # evaluations kept per canary record


@dataclass(frozen=True, kw_only=True, slots=True)
class CanaryWatch:
    """One evaluation of a slot's canary: the decision and what the monitor did about it."""

    slot: str
    canary_version_id: str
    incumbent_version_id: str
    share: float
    started_at: datetime
    evaluated_at: datetime
    decision: RolloutDecision
    action: str | None  # "promoted", "rolled_back", "ended" or None (waiting / not acting)
    audit_id: int | None
    record_id: str
    path: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "canary_version_id": self.canary_version_id,
            "incumbent_version_id": self.incumbent_version_id,
            "share": self.share,
            "started_at": self.started_at.isoformat(),
            "evaluated_at": self.evaluated_at.isoformat(),
            "decision": self.decision.kind,
            "reasons": list(self.decision.reasons),
            "stats": self.decision.as_dict()["stats"],
            "action": self.action,
            "audit_id": self.audit_id,
            "record_id": self.record_id,
        }


def canary_started_at(store: Store, slot: str, canary_id: str) -> datetime | None:
    """When the current canary was (last) started, from the audit log."""
    for entry in reversed(store.audit_log(slot)):
        if entry.action == "canary" and entry.to_version_id == canary_id:
            return entry.created_at
    return None


def arm_data(threads: list[TraceWithFeedback]) -> ArmData:
    """The values the statistics need, from traces with their feedback (in the given order)."""
    rewards = tuple(float(r) for r in (t.reward for t in threads) if r is not None)
    return ArmData(
        rewards=rewards,
        errors=tuple(1.0 if t.trace.error else 0.0 for t in threads),
        latency_ms=tuple(float(t.trace.latency_ms) for t in threads),
        tokens=tuple(float(t.trace.usage.total_tokens) for t in threads),
        cost_usd=tuple(float(t.trace.usage.cost_usd) for t in threads),
    )


def record_id(slot: str, canary_id: str) -> str:
    return "rollout_" + hashlib.sha256(f"{slot}|{canary_id}".encode()).hexdigest()[:20]


def load_arms(
    store: Store, slot: str, canary_id: str, incumbent_id: str
) -> tuple[datetime | None, list[TraceWithFeedback], list[TraceWithFeedback]]:
    """(start, canary threads, incumbent threads) of the current canary, oldest first."""
    started = canary_started_at(store, slot, canary_id)
    if started is None:  # a canary without its audit entry (not made through the registry API)
        first = store.list_traces(slot, version_id=canary_id)
        started = first[0].started_at if first else None
    if started is None:
        return None, [], []
    window = sorted(store.window(slot, since=started), key=lambda t: (t.trace.started_at, t.trace.id))
    canary = [t for t in window if t.trace.version_id == canary_id]
    incumbent = [t for t in window if t.trace.version_id == incumbent_id]
    return started, canary, incumbent


def watch_once(
    store: Store,
    slot: str,
    cfg: RolloutConfig,
    *,
    act: bool = True,
    clock: Callable[[], datetime] = utcnow,
    path_points: int = 40,
) -> CanaryWatch:
    """Evaluate the slot's canary now and (with ``act``) carry out the decision."""
    state = store.slot_state(slot)
    canary_id = state.canary_version_id
    if canary_id is None:
        raise NotFoundError(
            f"slot {slot!r} has no canary to watch; start one with `diffprompt prompts canary {slot} VERSION_ID`"
        )
    now = clock()
    started, c_threads, i_threads = load_arms(store, slot, canary_id, state.active_version_id)
    started = started or now
    decision = evaluate(
        arm_data(c_threads),
        arm_data(i_threads),
        alpha=cfg.alpha,
        alpha_guard=cfg.alpha_guard,
        tune_n=cfg.tune_threads,
        min_threads=cfg.min_threads,
        max_threads=cfg.max_threads,
        max_hours=cfg.max_hours,
        min_gain=cfg.min_gain,
        guardrails=tuple((g.metric, g.tolerance, g.relative) for g in cfg.guardrails),
        elapsed_hours=max((now - started).total_seconds(), 0.0) / 3600.0,
    )
    events = sorted(
        [(t.trace.started_at, t.trace.id, True, t.reward) for t in c_threads if t.reward is not None]
        + [(t.trace.started_at, t.trace.id, False, t.reward) for t in i_threads if t.reward is not None]
    )
    path = cumulative_path(
        [(e[2], float(e[3])) for e in events], alpha=cfg.alpha, tune_n=cfg.tune_threads, points=path_points
    )
    action, audit_id = None, None
    if act and decision.kind != "wait":
        action, audit_id = _act(store, slot, canary_id, state.active_version_id, decision, cfg)
    watch = CanaryWatch(
        slot=slot,
        canary_version_id=canary_id,
        incumbent_version_id=state.active_version_id,
        share=state.canary_share,
        started_at=started,
        evaluated_at=now,
        decision=decision,
        action=action,
        audit_id=audit_id,
        record_id=record_id(slot, canary_id),
        path=tuple(path),
    )
    _record(store, watch, cfg)
    return watch


def audit_reason(decision: RolloutDecision) -> str:
    """The audit row's reason: the verdict in words, then its statistics as compact JSON."""
    st = decision.stats
    numbers = {
        "decision": decision.kind,
        "reward": {
            "canary": _arm(st.reward.canary),
            "incumbent": _arm(st.reward.incumbent),
            "difference": st.reward.estimate,
            "lo": st.reward.lo,
            "hi": st.reward.hi,
            "alpha": st.reward.alpha,
        },
        "threads": {"canary": st.threads_canary, "incumbent": st.threads_incumbent},
        "guardrails": {
            g.metric: {
                "canary": g.canary.mean,
                "incumbent": g.incumbent.mean,
                "excess_lo": g.lo,
                "tolerance": g.tolerance,
                "breach": g.breach,
            }
            for g in st.guardrails
        },
        "elapsed_hours": st.elapsed_hours,
    }
    return f"rollout {decision.kind}: " + "; ".join(decision.reasons) + " | stats=" + json.dumps(numbers)


def _arm(iv: Any) -> dict[str, Any]:
    return {"n": iv.n, "mean": iv.mean, "lo": iv.lo, "hi": iv.hi}


def _act(
    store: Store, slot: str, canary_id: str, incumbent_id: str, decision: RolloutDecision, cfg: RolloutConfig
) -> tuple[str, int]:
    # compare-and-set on the incumbent: statistics about a slot someone moved meanwhile are stale
    reason = audit_reason(decision)
    if decision.kind == "promote":
        entry = store.promote(slot, canary_id, actor=cfg.actor, reason=reason, expected_active=incumbent_id)
        return "promoted", entry.id
    entry = store.set_canary(slot, None, 0.0, actor=cfg.actor, reason=reason, expected_active=incumbent_id)
    return ("rolled_back" if decision.kind == "rollback" else "ended"), entry.id


def _record(store: Store, watch: CanaryWatch, cfg: RolloutConfig) -> None:
    try:
        old = store.get_run(watch.record_id)
    except NotFoundError:
        old = {}
    history = list(old.get("evaluations") or [])[-(HISTORY - 1) :]
    r = watch.decision.stats.reward
    history.append(
        {
            "at": watch.evaluated_at.isoformat(),
            "decision": watch.decision.kind,
            "canary_n": r.canary.n,
            "incumbent_n": r.incumbent.n,
            "difference": r.estimate,
            "lo": r.lo,
            "hi": r.hi,
            "action": watch.action,
        }
    )
    record = {
        "kind": "rollout",
        "canary_version_id": watch.canary_version_id,
        "incumbent_version_id": watch.incumbent_version_id,
        "started_at": watch.started_at.isoformat(),
        "rollout_config": cfg.as_dict(),
        "decision": watch.decision.as_dict(),
        "action": watch.action,
        "audit_id": watch.audit_id,
        "path": list(watch.path),
        "evaluations": history,
    }
    store.save_run(watch.record_id, watch.slot, record, status="rollout")


def guard_promotion(store: Store, slot: str, *, incumbent_id: str, promoted_id: str, share: float, actor: str) -> None:
    """Turn a straight promotion into a guarded one: the incumbent active again, the new version a canary.

    Two audited registry moves (a rollback to ``incumbent_id``, then the canary at ``share``); the
    monitor then promotes the canary, rolls it back or keeps waiting on live traffic.
    """
    store.rollback(
        slot, incumbent_id, actor=actor, reason=f"guarded rollout: {promoted_id} proves itself as a canary first"
    )
    store.set_canary(
        slot, promoted_id, share, actor=actor, reason=f"guarded rollout: {share:.0%} of new threads, watched live"
    )


def summary(watch: CanaryWatch) -> dict[str, Any]:
    """A short JSON-able summary of one evaluation (for events, results and terminal lines)."""
    r = watch.decision.stats.reward
    return {
        "decision": watch.decision.kind,
        "action": watch.action,
        "canary_version_id": watch.canary_version_id,
        "incumbent_version_id": watch.incumbent_version_id,
        "canary_mean": r.canary.mean,
        "incumbent_mean": r.incumbent.mean,
        "canary_n": r.canary.n,
        "incumbent_n": r.incumbent.n,
        "difference": r.estimate,
        "lo": r.lo,
        "hi": r.hi,
        "alpha": r.alpha,
        "reasons": list(watch.decision.reasons),
        "record_id": watch.record_id,
    }
