"""The monitor and the scheduler's rollout jobs on a real store (in-memory), seeded traffic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from diffprompt.errors import NotFoundError
from diffprompt.rollout.config import DriftConfig, RolloutConfig
from diffprompt.rollout.jobs import drift_tick, run_watch
from diffprompt.rollout.monitor import watch_once
from diffprompt.store import MemoryStore
from diffprompt.types import Feedback, Trace

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _traffic(
    store: MemoryStore,
    slot: str,
    rates: dict[str, float],
    n: int,
    *,
    seed: int,
    start: int = 0,
    model: str | None = None,
    latency: dict[str, float] | None = None,
) -> None:
    rng = random.Random(seed)
    versions = list(rates)
    traces, fbs = [], []
    for k in range(start, start + n):
        vid = versions[k % len(versions)]
        at = T0 + timedelta(seconds=k + 1)
        tr = Trace(
            id=f"{slot}-{k}",
            slot=slot,
            version_id=vid,
            thread_id=f"th-{slot}-{k}",
            messages=(),
            started_at=at,
            ended_at=at,
            latency_ms=(latency or {}).get(vid, 500.0),
            metadata={"model": model} if model else {},
        )
        traces.append(tr)
        fbs.append(Feedback(trace_id=tr.id, kind="reward", value=float(rng.random() < rates[vid]), created_at=at))
    store.add_traces(traces)
    store.add_feedback(fbs)


def _slot(clock: Clock) -> tuple[MemoryStore, str, str]:
    store = MemoryStore(clock=clock)
    v1 = store.create_slot("s", "Seed prompt. Be polite.").id
    v2 = store.add_version("s", "Seed prompt. Be polite. Confirm changes.", parent_id=v1, origin="manual").id
    return store, v1, v2


def test_watch_job_without_canary_is_a_quiet_no_op() -> None:
    store, _, _ = _slot(Clock())
    assert run_watch(store, "s", RolloutConfig()) == {"status": "no_canary", "slot": "s"}
    with pytest.raises(NotFoundError, match="prompts canary s"):
        watch_once(store, "s", RolloutConfig())


def test_watch_job_promotes_a_winner_and_keeps_the_path() -> None:
    clock = Clock()
    store, v1, v2 = _slot(clock)
    store.set_canary("s", v2, 0.5, actor="t", reason="gate passed")
    _traffic(store, "s", {v1: 0.4, v2: 0.8}, 400, seed=1)
    clock.now = T0 + timedelta(hours=2)
    out = run_watch(store, "s", RolloutConfig(), clock=clock)
    assert out["decision"] == "promote" and out["action"] == "promoted" and out["lo"] > 0
    assert store.slot_state("s").active_version_id == v2
    rec = store.get_run(out["record_id"])
    assert rec["status"] == "rollout" and rec["decision"]["kind"] == "promote"
    assert rec["path"][-1]["canary"]["n"] + rec["path"][-1]["incumbent"]["n"] == 400
    assert rec["decision"]["stats"]["elapsed_hours"] == pytest.approx(2.0, abs=0.01)


def test_incumbent_traffic_before_the_canary_does_not_count() -> None:
    clock = Clock()
    store, v1, v2 = _slot(clock)
    _traffic(store, "s", {v1: 0.0}, 200, seed=2)  # a bad past, before the canary
    clock.now = T0 + timedelta(seconds=1000)
    store.set_canary("s", v2, 0.5, actor="t", reason="r")
    _traffic(store, "s", {v1: 0.5, v2: 0.5}, 100, seed=3, start=1000)
    w = watch_once(store, "s", RolloutConfig(), act=False, clock=clock)
    assert w.decision.stats.reward.incumbent.n == 50 and w.decision.kind == "wait"


def test_latency_breach_rolls_back_and_expiry_ends_the_canary() -> None:
    clock = Clock()
    store, v1, v2 = _slot(clock)
    store.set_canary("s", v2, 0.5, actor="t", reason="r")
    _traffic(store, "s", {v1: 0.5, v2: 0.5}, 200, seed=4, latency={v1: 500.0, v2: 2000.0})
    w = watch_once(store, "s", RolloutConfig(), clock=clock)
    assert w.decision.kind == "rollback" and w.action == "rolled_back"
    assert "latency_ms" in store.audit_log("s")[-1].reason and store.slot_state("s").canary_version_id is None

    clock.now = T0 + timedelta(hours=1)
    store.set_canary("s", v2, 0.5, actor="t", reason="again")  # restarted: the old threads no longer count
    clock.now = T0 + timedelta(hours=400)
    e = watch_once(store, "s", RolloutConfig(max_hours=24.0), clock=clock)
    assert e.decision.kind == "expire" and e.action == "ended" and e.decision.stats.threads_canary == 0
    assert store.slot_state("s").active_version_id == v1 and store.slot_state("s").canary_version_id is None


def test_drift_tick_fires_once_per_alarm() -> None:
    store, v1, _ = _slot(Clock())
    cfg = DriftConfig(baseline_threads=300, arl=1000.0)
    _traffic(store, "s", {v1: 0.8}, 600, seed=5)
    tick, res = drift_tick(store, "s", cfg, tune_n=500)
    assert tick is None and not res.drifted and res.baseline_n == 300
    _traffic(store, "s", {v1: 0.4}, 300, seed=6, start=600)
    tick, res = drift_tick(store, "s", cfg, tune_n=500)
    assert tick is not None and res.drifted and "dropped" in res.reason
    assert drift_tick(store, "s", cfg, tune_n=500)[0] == tick  # same evidence, same tick
    _traffic(store, "s", {v1: 0.4}, 600, seed=7, start=900)
    later, res2 = drift_tick(store, "s", cfg, tune_n=500)
    assert later is not None and later != tick and len(res2.alarms) > len(res.alarms)


def test_drift_tick_on_a_target_model_change() -> None:
    store, v1, _ = _slot(Clock())
    cfg = DriftConfig()
    _traffic(store, "s", {v1: 0.8}, 50, seed=8, model="target-a")
    assert drift_tick(store, "s", cfg, tune_n=500)[0] is None
    _traffic(store, "s", {v1: 0.8}, 10, seed=9, start=50, model="target-b")
    tick, res = drift_tick(store, "s", cfg, tune_n=500)
    assert tick is not None and (res.model_before, res.model_after) == ("target-a", "target-b")
    off = DriftConfig(on_model_change=False)
    assert drift_tick(store, "s", off, tune_n=500)[0] is None


def test_guard_promotion_turns_a_promotion_into_a_watched_canary() -> None:
    from diffprompt.rollout.monitor import guard_promotion, summary

    clock = Clock()
    store, v1, v2 = _slot(clock)
    store.promote("s", v2, actor="round", reason="offline gate passed")
    guard_promotion(store, "s", incumbent_id=v1, promoted_id=v2, share=0.5, actor="demo")
    st = store.slot_state("s")
    assert (st.active_version_id, st.canary_version_id, st.canary_share) == (v1, v2, 0.5)
    assert [a.action for a in store.audit_log("s")[-2:]] == ["rollback", "canary"]
    clock.now = T0 + timedelta(seconds=1)
    _traffic(store, "s", {v1: 0.5, v2: 0.5}, 100, seed=10, start=10)
    s = summary(watch_once(store, "s", RolloutConfig(), clock=clock))
    assert s["decision"] == "wait" and s["canary_n"] == s["incumbent_n"] == 50 and s["lo"] < 0 < s["hi"]


def test_monitor_does_not_act_on_a_slot_moved_meanwhile() -> None:
    from diffprompt.errors import ConflictError

    clock = Clock()
    store, v1, v2 = _slot(clock)
    v3 = store.add_version("s", "Another prompt entirely.", parent_id=v1, origin="manual").id
    store.set_canary("s", v2, 0.5, actor="t", reason="r")
    _traffic(store, "s", {v1: 0.2, v2: 0.9}, 300, seed=11)
    real_window = store.window

    def window(*a, **kw):  # type: ignore[no-untyped-def]
        out = real_window(*a, **kw)
        store.promote("s", v3, actor="someone", reason="manual move while the monitor reads")
        return out

    store.window = window  # type: ignore[method-assign]
    with pytest.raises(ConflictError):
        watch_once(store, "s", RolloutConfig(), clock=clock)
    assert store.slot_state("s").active_version_id == v3 and store.audit_log("s")[-1].actor == "someone"
