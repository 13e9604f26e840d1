from __future__ import annotations

from dataclasses import replace

import pytest

from diffprompt.errors import NotFoundError
from diffprompt.optimize.attribution import ExplainBlamer, Explanation
from diffprompt.optimize.budget import RunBudget
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.editors import ARInfillEditor, HintCritic, HintFiller, HintWriter, RewriteEditor
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.replay import FakeReplay
from diffprompt.spans import segment
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Candidate, Feedback, Trace
from tests.optimize.helpers import PROMPT, T0

RULE = "Extra checked bags cost 50 dollars each."
SEED = PROMPT  # lacks RULE


def _world(n_ok=30, n_bad=30):
    rules = {f"ok{i}": "original payment method" for i in range(n_ok)}
    rules |= {f"bag{i}": "cost 50 dollars" for i in range(n_bad)}
    slices = {k: ("bags" if k.startswith("bag") else "refund") for k in rules}
    return FakeReplay(rules, slices=slices)


def _store(env, text=SEED):
    store = MemoryStore()
    v = store.create_slot("s", text)
    traces, fb = [], []
    for i, key in enumerate(sorted(env.rules)):
        tr = Trace(
            id=f"t{i}",
            slot="s",
            version_id=v.id,
            thread_id=f"th{i}",
            messages=({"role": "user", "content": "I have extra bags"},),
            started_at=T0,
            ended_at=T0,
            replay_key=key,
        )
        traces.append(tr)
        ok = env.rules[key].lower() in text.lower()
        fb.append(Feedback(trace_id=tr.id, kind="reward", value=1.0 if ok else 0.0, source="env"))
    store.add_traces(traces)
    store.add_feedback(fb)
    return store, v


def _explain(twf, prompt):
    return [
        Explanation(
            text=RULE, reason="the agent did not charge for extra bags; the rule is missing", kind="missing"
        )
    ]


CFG = OptimizeConfig(n_candidates=2, iterations=1, screen_cases=6, holdout_cases=40)


def test_round_promotes_and_records_everything():
    env = _world()
    store, seed_v = _store(env)
    events = []
    res = run_round(
        store,
        "s",
        env=env,
        editor=ARInfillEditor(HintFiller(explore=0.0)),
        config=CFG,
        seed=1,
        blamer=ExplainBlamer(_explain),
        events=events.append,
    )
    assert res.status == "promoted", res.decision.reasons
    assert res.candidate_score > res.incumbent_score and res.p_value < 0.05
    active = store.active_version("s")
    assert active.id == res.promoted_version_id and RULE in active.text
    # the anchor rule was kept (insertion, not overwrite)
    assert "Each passenger may check at most two bags." in active.text
    rec = store.get_run(res.run_id)
    assert rec["status"] == "promoted" and rec["config_hash"] == CFG.hash and rec["seed"] == 1
    assert rec["attribution"][0]["insert"] is True
    assert rec["iterations"][0]["inserted"]
    cand = next(c for c in rec["candidates"] if c["status"] == "screened")
    assert "+ [" in cand["diff"] and RULE in cand["diff"]
    assert rec["replay"]["versions"]["incumbent"]["episodes"]
    assert rec["cost"]["target_calls"] > 0 and "replay" in rec["timings"]
    assert {e.kind for e in events} >= {
        "window",
        "attribution",
        "masked",
        "candidates",
        "screen",
        "replay",
        "decision",
        "done",
    }
    summ = res.summary()
    assert summ["decision"] == "promote" and summ["promoted_version"] == active.id
    assert active.origin == f"optimizer:{res.run_id}" and seed_v.id == active.parent_id


def test_dry_run_and_canary_do_not_move_active():
    env = _world()
    store, seed_v = _store(env)
    ed = ARInfillEditor(HintFiller(explore=0.0))
    res = run_round(store, "s", env=env, editor=ed, config=CFG, blamer=ExplainBlamer(_explain), dry_run=True)
    assert res.status == "dry_run" and res.promoted_version_id is None
    assert store.active_version("s").id == seed_v.id
    res = run_round(
        store,
        "s",
        env=env,
        editor=ed,
        config=replace(CFG, promote_mode="canary"),
        blamer=ExplainBlamer(_explain),
    )
    assert res.status == "canary"
    st = store.slot_state("s")
    assert st.active_version_id == seed_v.id and st.canary_version_id == res.promoted_version_id


def test_rewrite_editor_round():
    env = _world()
    store, _ = _store(env)
    res = run_round(
        store,
        "s",
        env=env,
        editor=RewriteEditor(HintCritic(), HintWriter(dropout=0.0)),
        config=CFG,
        blamer=ExplainBlamer(_explain),
    )
    assert res.status == "promoted", res.decision.reasons


def test_unknown_slot_and_empty_window():
    env = _world()
    store = MemoryStore()
    with pytest.raises(NotFoundError):
        run_round(store, "nope", env=env, editor=ARInfillEditor(HintFiller()))
    store.create_slot("s", SEED)
    res = run_round(store, "s", env=env, editor=ARInfillEditor(HintFiller()))
    assert res.decision.kind == "insufficient_data" and res.status == "insufficient_data"
    assert "no traces" in res.decision.reasons[0]
    assert store.get_run(res.run_id)["status"] == "insufficient_data"


class Deleter:
    """An editor that deletes the protected first rule."""

    name = "deleter"

    def propose(self, prompt, span_ids, traces, n, seed):
        target = next(s for s in prompt.spans if "Basic economy" in s.text)
        text = prompt.text.replace(target.text + "\n", "")
        return [
            Candidate(
                text=text, parent_id=prompt.id, masked_span_ids=tuple(span_ids), editor="deleter", seed=seed
            )
        ]


def test_candidate_removing_protected_span_rejected_with_reason():
    env = _world()
    store, v = _store(env)
    prot = next(s.id for s in segment(v.text) if "Basic economy" in s.text)
    store.set_protected_spans("s", [prot], actor="t", reason="legal")
    res = run_round(store, "s", env=env, editor=Deleter(), config=CFG, blamer=ExplainBlamer(_explain))
    assert res.status == "rejected"
    assert any("protected span" in r for r in res.decision.reasons)
    assert store.active_version("s").id == v.id


def test_zero_budget_stops_cleanly():
    env = _world()
    store, v = _store(env)
    res = run_round(
        store,
        "s",
        env=env,
        editor=ARInfillEditor(HintFiller()),
        config=replace(CFG, budget=RunBudget(max_calls=0)),
        blamer=ExplainBlamer(_explain),
    )
    assert res.status == "budget_exhausted" and "target_calls" in res.decision.reasons[0]
    assert store.active_version("s").id == v.id
    assert store.get_run(res.run_id)["stopped"]["budget"] == "target_calls"


def test_rejected_edits_are_remembered_and_not_reproposed():
    env = _world()
    store, v = _store(env)
    bad_rule = "Extra bags are welcome."  # useless text: loses screening

    def explain_bad(t, p):
        return [Explanation(text=bad_rule, reason="missing bag rule", kind="missing")]

    ed = ARInfillEditor(HintFiller(explore=0.0))
    r1 = run_round(store, "s", env=env, editor=ed, config=CFG, blamer=ExplainBlamer(explain_bad))
    assert r1.status == "rejected"
    mem = store.get_run(r1.run_id)["rejected_edits"]
    assert any(bad_rule in t for ts in mem.values() for t in ts)
    r2 = run_round(store, "s", env=env, editor=ed, config=CFG, blamer=ExplainBlamer(explain_bad))
    rec = store.get_run(r2.run_id)
    assert all(bad_rule not in c["text"] or c["status"] == "repeat" for c in rec["candidates"])
    assert store.active_version("s").id == v.id


def test_config_hash_and_validation():
    from diffprompt.errors import ConfigError

    assert OptimizeConfig().hash == OptimizeConfig().hash != CFG.hash
    assert OptimizeConfig.from_dict(CFG.as_dict()).hash == CFG.hash
    with pytest.raises(ConfigError):
        OptimizeConfig(n_candidates=0)
    with pytest.raises(ConfigError):
        OptimizeConfig.from_dict({"nope": 1})


def test_split_cases_puts_failures_in_both_sets():
    import random as _random

    from diffprompt.optimize.prepare import split_cases

    env = _world(n_ok=30, n_bad=10)
    store, _ = _store(env)
    window = store.window("s")
    screen, held = split_cases(env.cases(window), window, CFG, _random.Random(0))
    assert not {c.id for c in screen} & {c.id for c in held}
    fails_screen = [c for c in screen if c.id.startswith("bag")]
    fails_held = [c for c in held if c.id.startswith("bag")]
    assert len(fails_screen) == 3 and len(fails_held) == 7 and len(screen) == 6
