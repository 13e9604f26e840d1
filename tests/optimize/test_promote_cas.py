"""Issue 13 item 9: the "incumbent still active" check is atomic with the promotion (compare-and-set)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffprompt.errors import ConflictError
from diffprompt.optimize.attribution import ExplainBlamer, Explanation
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.oracle import OracleEditor
from diffprompt.optimize.replay import FakeReplay
from diffprompt.store import open_store
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Feedback, Trace
from tests.optimize.helpers import PROMPT, T0

RULE = "Extra checked bags cost 50 dollars each."
CFG = OptimizeConfig(n_candidates=2, iterations=1, screen_cases=6, holdout_cases=40)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = MemoryStore() if request.param == "memory" else open_store(f"sqlite:///{tmp_path / 'r.db'}")
    yield s
    s.close()


def test_promote_and_canary_with_expected_active(store) -> None:  # type: ignore[no-untyped-def]
    seed = store.create_slot("s", "You help customers.")
    v2 = store.add_version("s", "You help customers. Be brief.", parent_id=seed.id, origin="manual", note="")
    v3 = store.add_version("s", "You help customers. Be kind.", parent_id=seed.id, origin="manual", note="")
    store.promote("s", v2.id, actor="ops", reason="", expected_active=seed.id)
    n_audit = len(store.audit_log("s"))
    with pytest.raises(ConflictError, match="not applied"):
        store.promote("s", v3.id, actor="bot", reason="", expected_active=seed.id)  # stale incumbent
    with pytest.raises(ConflictError, match="not applied"):
        store.set_canary("s", v3.id, 0.2, actor="bot", reason="", expected_active=seed.id)
    assert store.active_version("s").id == v2.id and store.slot_state("s").canary_version_id is None
    assert len(store.audit_log("s")) == n_audit  # nothing half-done
    assert store.promote("s", v2.id, actor="bot", reason="", expected_active=seed.id).to_version_id == v2.id  # no-op
    store.set_canary("s", v3.id, 0.2, actor="bot", reason="", expected_active=v2.id)
    assert store.slot_state("s").canary_version_id == v3.id


class RacingStore(MemoryStore):
    """A human promotes another version right after the round's own check, before its promote."""

    def add_version(self, slot, text, **kw):  # type: ignore[no-untyped-def]
        v = super().add_version(slot, text, **kw)
        if str(kw.get("origin", "")).startswith("optimizer:"):
            human = super().add_version(slot, PROMPT + "- Be brief.\n", parent_id=kw["parent_id"],
                                        origin="manual", note="")
            self.promote(slot, human.id, actor="alice", reason="hotfix")
            self.human = human.id
        return v


def test_a_round_never_promotes_over_a_version_activated_during_its_promotion() -> None:
    rules = {f"ok{i}": "original payment method" for i in range(30)}
    rules |= {f"bag{i}": "cost 50 dollars" for i in range(30)}
    env = FakeReplay(rules)
    store = RacingStore()
    seed = store.create_slot("s", PROMPT)
    traces = [
        Trace(id=f"t{i}", slot="s", version_id=seed.id, thread_id=f"th{i}",
              messages=({"role": "user", "content": "I have extra bags"},), started_at=T0, ended_at=T0,
              replay_key=key)
        for i, key in enumerate(sorted(rules))
    ]
    store.add_traces(traces)
    store.add_feedback([
        Feedback(trace_id=t.id, kind="reward", value=1.0 if t.replay_key.startswith("ok") else 0.0, source="env")
        for t in traces
    ])
    explain = lambda twf, p: [Explanation(text=RULE, reason="bag fee rule missing", kind="missing")]  # noqa: E731
    res = run_round(store, "s", env=env, editor=OracleEditor(explore=0.0), config=CFG, seed=1,
                    blamer=ExplainBlamer(explain))
    assert res.status == "rejected" and "not applied" in res.decision.reasons[0]
    assert store.active_version("s").id == store.human  # the human's hotfix stands
    assert [e.actor for e in store.audit_log("s")] == ["system", "alice"]
