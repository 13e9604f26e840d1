"""The demo's second live batch runs the promoted prompt as a guarded canary, watched by the monitor.

The optimization round is replaced by a stub that promotes a fixed edit (the round has its own
tests and takes minutes with the built-in DLM); everything after it is real: live τ traffic through
the middleware with hashed canary routing, recorded rewards, the monitor's decision, the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diffprompt.demo import DemoConfig, DemoEvent, run_demo
from diffprompt.optimize.record import RunRecord, to_json
from diffprompt.optimize.result import RoundResult
from diffprompt.store import open_store
from diffprompt.types import GateDecision

EDIT = "\n\nAlways confirm the details with the user before you change a booking."


def _stub_round(store: Any, req: Any, **kw: Any) -> RoundResult:
    seed = store.active_version(req.slot)
    v = store.add_version(req.slot, seed.text + EDIT, parent_id=seed.id, origin="optimizer:run_stub")
    decision = GateDecision(kind="promote", stats={}, reasons=("stub round: a fixed edit",))
    record = RunRecord(run_id="run_stub", slot=req.slot, status="promoted", decision=decision, promoted_version=v.id)
    store.save_run("run_stub", req.slot, to_json(record), status="promoted")
    store.promote(req.slot, v.id, actor="demo", reason="stub round")
    return RoundResult(
        run_id="run_stub",
        slot=req.slot,
        status="promoted",
        decision=decision,
        incumbent_id=seed.id,
        promoted_version_id=v.id,
        candidate_version_text=v.text,
        incumbent_score=None,
        candidate_score=None,
        p_value=None,
        record=record,
    )


def test_demo_runs_the_promotion_as_a_watched_canary(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("diffprompt.optimize.service.run_request", _stub_round)
    events: list[DemoEvent] = []
    cfg = DemoConfig(home=home, world_users=60, world_tasks=12, live_trials=1, concurrency=2)
    r = run_demo(cfg, emit=events.append)
    canary = next(e.data for e in events if e.kind == "canary")
    assert r.canary == canary and r.final_version != r.seed_version
    # 12 threads in the batch, about half on each arm: too few to decide, so the canary keeps running
    assert canary["decision"] == "wait" and canary["action"] is None
    assert canary["canary_n"] + canary["incumbent_n"] == 12 and canary["canary_n"] > 0 and canary["incumbent_n"] > 0
    assert "waiting for 20 scored threads per arm" in canary["reasons"][0]
    assert r.live_after == canary["canary_mean"]
    store = open_store(r.db_url)
    try:
        st = store.slot_state(r.slot)
        assert (st.active_version_id, st.canary_version_id, st.canary_share) == (r.seed_version, r.final_version, 0.5)
        moves = [(a.action, a.actor) for a in store.audit_log(r.slot)[-3:]]
        assert moves == [("promote", "demo"), ("rollback", "demo"), ("canary", "demo")]
        assert store.get_run(canary["record_id"])["status"] == "rollout"
    finally:
        store.close()
    html = Path(r.report).read_text(encoding="utf-8")
    assert "Live canary test" in html and "live canary test" in html and html.count("<polygon") == 2


def test_demo_canary_share_is_validated(home: Path) -> None:
    from diffprompt.errors import ConfigError

    with pytest.raises(ConfigError, match="--canary"):
        DemoConfig(home=home, canary_share=1.0)
