from __future__ import annotations

from dataclasses import replace

import pytest

from diffprompt.editing import EditorCapabilities
from diffprompt.errors import NotFoundError
from diffprompt.optimize.attribution import ExplainBlamer, Explanation
from diffprompt.optimize.budget import RunBudget
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.oracle import OracleEditor, OracleRewriteEditor
from diffprompt.optimize.record import RunRecord
from diffprompt.optimize.replay import FakeReplay
from diffprompt.spans import replace_spans, segment
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


def _store(env, text=SEED, *, shuffled=False):
    """A store whose window is the env's cases; ``shuffled`` records them in another order, other ids."""
    import random as _random
    from datetime import timedelta

    store = MemoryStore()
    v = store.create_slot("s", text)
    traces, fb = [], []
    keys = sorted(env.rules)
    if shuffled:
        _random.Random(99).shuffle(keys)
    for i, key in enumerate(keys):
        when = T0 + timedelta(seconds=i) if shuffled else T0
        tr = Trace(
            id=f"x{i}" if shuffled else f"t{i}",
            slot="s",
            version_id=v.id,
            thread_id=f"th{i}",
            messages=({"role": "user", "content": "I have extra bags"},),
            started_at=when,
            ended_at=when,
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
        Explanation(text=RULE, reason="the agent did not charge for extra bags; the rule is missing", kind="missing")
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
        editor=OracleEditor(explore=0.0),
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
    rec = RunRecord.from_json(store.get_run(res.run_id))
    # the stored record is the round's record (the store adds only its own timestamps)
    assert replace(rec, created_at=None, updated_at=None) == replace(res.record, updated_at=None)
    assert rec.status == "promoted" and rec.config_hash == CFG.hash and rec.seed == 1
    assert rec.editor == "oracle" and rec.editor_capabilities["oracle"] is True
    assert rec.attribution[0].insert is True
    assert rec.iterations[0].inserted
    cand = next(c for c in rec.candidates if c.status == "screened")
    assert "+ [" in cand.diff and RULE in cand.diff
    assert set(rec.replay.versions) == {"incumbent", "candidate"}  # user-facing labels, no "final0"
    assert rec.replay.versions["incumbent"].episodes
    assert rec.finalist.label == "candidate" and RULE in rec.finalist.text
    assert rec.cost.target_calls > 0 and "replay" in rec.timings
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
    ed = OracleEditor(explore=0.0)
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
        editor=OracleRewriteEditor(dropout=0.0),
        config=CFG,
        blamer=ExplainBlamer(_explain),
    )
    assert res.status == "promoted", res.decision.reasons


def test_unknown_slot_and_empty_window():
    env = _world()
    store = MemoryStore()
    with pytest.raises(NotFoundError):
        run_round(store, "nope", env=env, editor=OracleEditor())
    store.create_slot("s", SEED)
    res = run_round(store, "s", env=env, editor=OracleEditor())
    assert res.decision.kind == "insufficient_data" and res.status == "insufficient_data"
    assert "no traces" in res.decision.reasons[0]
    assert RunRecord.from_json(store.get_run(res.run_id)).status == "insufficient_data"


class Deleter:
    """An editor that deletes the protected first rule."""

    name = "deleter"
    capabilities = EditorCapabilities(whole_prompt=True, reads_traces=False)

    def propose(self, request):
        prompt = request.prompt
        target = next(s for s in prompt.spans if "Basic economy" in s.text)
        text = prompt.text.replace(target.text + "\n", "")
        return [Candidate(text=text, parent_id=prompt.id, masked_span_ids=(), editor=self.name, seed=request.seed)]


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
        editor=OracleEditor(),
        config=replace(CFG, budget=RunBudget(max_calls=0)),
        blamer=ExplainBlamer(_explain),
    )
    assert res.status == "budget_exhausted" and "target_calls" in res.decision.reasons[0]
    assert store.active_version("s").id == v.id
    assert RunRecord.from_json(store.get_run(res.run_id)).stopped.budget == "target_calls"


def test_rejected_edits_are_remembered_and_not_reproposed():
    env = _world()
    store, v = _store(env)
    bad_rule = "Extra bags are welcome."  # useless text: loses screening

    def explain_bad(t, p):
        return [Explanation(text=bad_rule, reason="missing bag rule", kind="missing")]

    ed = OracleEditor(explore=0.0)
    r1 = run_round(store, "s", env=env, editor=ed, config=CFG, blamer=ExplainBlamer(explain_bad))
    assert r1.status == "rejected"
    mem = RunRecord.from_json(store.get_run(r1.run_id)).rejected_edits
    assert any(bad_rule in t for ts in mem.values() for t in ts)
    r2 = run_round(store, "s", env=env, editor=ed, config=CFG, blamer=ExplainBlamer(explain_bad))
    rec = RunRecord.from_json(store.get_run(r2.run_id))
    assert rec.candidates and all(bad_rule not in c.text or c.status == "repeat" for c in rec.candidates)
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
    split = split_cases(env.cases(window), window, CFG, _random.Random(0))
    screen, held = split.screen, split.holdout
    assert not {c.id for c in screen} & {c.id for c in held}
    fails_screen = [c for c in screen if c.id.startswith("bag")]
    fails_held = [c for c in held if c.id.startswith("bag")]
    # half of the 10 failing keys stay readable (3 of them screen), the other half is held out
    assert len(fails_screen) == 3 and len(fails_held) == 5 and len(screen) == 6
    readable = split.readable(window)
    assert len([t for t in readable if t.trace.replay_key.startswith("bag")]) == 5
    assert not {t.trace.replay_key for t in readable} & split.held_keys



@pytest.mark.parametrize(
    ("n_bad", "read", "held"),
    [(7, 2, 5), (8, 3, 5), (10, 5, 5), (16, 8, 8), (6, 3, 3), (2, 1, 1)],
)
def test_split_holds_out_enough_failures_for_the_gate(n_bad, read, held):
    """The gate needs 5 held-out fixes at alpha 0.05: with 7 or more failures at least 5 are held out
    (2 stay readable); with fewer no split could reach significance, so half stay readable."""
    import random as _random

    from diffprompt.optimize.gate import fewest_wins, sign_test_p
    from diffprompt.optimize.prepare import split_cases

    assert fewest_wins(0.05) == 5 and sign_test_p(5, 0) < 0.05 <= sign_test_p(4, 0)
    env = _world(n_ok=30, n_bad=n_bad)
    store, _ = _store(env)
    window = store.window("s")
    cfg = OptimizeConfig(screen_cases=16, holdout_cases=60)
    split = split_cases(env.cases(window), window, cfg, _random.Random(3))
    readable = {t.trace.replay_key for t in split.readable(window) if t.trace.replay_key.startswith("bag")}
    held_bad = {c.replay_key or c.id for c in split.holdout if (c.replay_key or c.id).startswith("bag")}
    assert (len(readable), len(held_bad)) == (read, held) and not readable & held_bad
    screened = [c for c in split.screen if (c.replay_key or c.id).startswith("bag")]
    n = min(16, (30 + n_bad) // 4)  # the minibatch: at most a quarter of the cases
    assert len(screened) == min(read, (n + 1) // 2) and len(split.screen) == n  # readable failures first



@pytest.mark.parametrize("share", [0.0, 0.5, 0.9])
def test_a_share_of_the_successes_is_readable_and_never_held_out(share):
    import random as _random

    from diffprompt.errors import ConfigError
    from diffprompt.optimize.prepare import split_cases

    env = _world(n_ok=40, n_bad=10)
    store, _ = _store(env)
    window = store.window("s")
    cfg = OptimizeConfig(screen_cases=16, success_read_share=share)
    split = split_cases(env.cases(window), window, cfg, _random.Random(5))
    ok_read = {t.trace.replay_key for t in split.readable(window) if (t.reward or 0.0) >= 1.0}
    ok_held = [c for c in split.holdout if not (c.replay_key or c.id).startswith("bag")]
    screen_ok = [c for c in split.screen if not (c.replay_key or c.id).startswith("bag")]
    assert len(screen_ok) == 7 and len(ok_read) == max(7, int(40 * share))  # at least the screen's successes
    assert len(ok_held) == 40 - len(ok_read) and not ok_read & {c.replay_key for c in ok_held}
    with pytest.raises(ConfigError):
        OptimizeConfig(success_read_share=1.5)


def test_readable_failures_cover_every_failure_mode():
    """Failures are read round-robin over their modes (slice + distinctive tools called): a mode of
    three failures is never held out whole while another mode's failures fill the readable share."""
    import random as _random

    from diffprompt.optimize.prepare import interleave_modes, split_cases
    from diffprompt.optimize.replay import Case
    from diffprompt.types import TraceWithFeedback

    def trace(i: int, tools: list[str], reward: float) -> TraceWithFeedback:
        calls = [{"id": f"c{i}{k}", "type": "function", "function": {"name": n, "arguments": "{}"}}
                 for k, n in enumerate(["get_user_details", *tools])]
        tr = Trace(id=f"t{i}", slot="s", version_id=None, thread_id=f"th{i}", started_at=T0, ended_at=T0,
                   messages=({"role": "assistant", "content": "", "tool_calls": calls},), replay_key=f"k{i}")
        return TraceWithFeedback(trace=tr, feedback=(Feedback(trace_id=tr.id, kind="reward", value=reward,
                                                              source="env"),))

    modes = ["cancel_reservation"] * 3 + ["send_certificate"] * 5 + ["update_reservation_flights"] * 3
    window = [trace(i, [tool], 0.0) for i, tool in enumerate(modes)]
    window += [trace(100 + i, ["book_reservation"], 1.0) for i in range(40)]
    cases = [Case(id=t.trace.replay_key or "", replay_key=t.trace.replay_key, slice="x", trace_id=t.trace.id)
             for t in window]
    order = interleave_modes(cases[:11], window)
    assert [c.id for c in order[:3]] == ["k0", "k3", "k8"] and sorted(c.id for c in order) == sorted(
        c.id for c in cases[:11])
    for seed in range(20):  # 6 of 11 read, 5 held: every mode has a readable failure and a held-out one
        split = split_cases(cases, window, OptimizeConfig(), _random.Random(seed))
        read = {t.trace.id for t in split.readable(window) if (t.reward or 0.0) < 1.0}
        for tool in set(modes):
            ids = {f"t{i}" for i, m in enumerate(modes) if m == tool}
            assert ids & read and ids - read, (seed, tool)


class CutOff:
    """An editor whose fills stop mid-sentence (the demo's "...booked within the last")."""

    name = "cutoff"
    capabilities = EditorCapabilities(reads_traces=False)

    def propose(self, request):
        p = request.prompt
        out = []
        for j, tail in enumerate(("booked within the last", "charged for every extra", "cost 50 dollars the the")):
            repl = {sid: f"- Extra checked bags {tail}" for sid in request.span_ids}
            text = replace_spans(p.text, p.spans, repl)
            out.append(
                Candidate(
                    text=text, parent_id=p.id, masked_span_ids=request.span_ids, editor=self.name, seed=request.seed + j
                )
            )
        return out[: request.n]


def test_malformed_candidates_are_counted_and_never_screened():
    env = _world()
    store, v = _store(env)
    events = []
    res = run_round(
        store,
        "s",
        env=env,
        editor=CutOff(),
        config=replace(CFG, n_candidates=3),
        seed=1,
        blamer=ExplainBlamer(_explain),
        events=events.append,
    )
    assert res.status == "rejected" and store.active_version("s").id == v.id
    assert any("candidate malformed: new span is cut off" in r for r in res.decision.reasons)
    cands = [e for e in events if e.kind == "candidates"]
    assert cands and all(e.data["valid"] == 0 and e.data["invalid"] == {"malformed": 3} for e in cands)
    assert not [e for e in events if e.kind == "screen"]  # no replay episode spent on them
    rec = RunRecord.from_json(store.get_run(res.run_id))
    assert {c.status for c in rec.candidates} == {"malformed"} and all(c.reason for c in rec.candidates)
    assert rec.cost.target_calls == 0


class Spy:
    """Wraps a blamer or an editor and keeps the replay keys of every trace it was given."""

    def __init__(self, inner):
        self.inner, self.keys = inner, set()
        self.name, self.capabilities = getattr(inner, "name", "spy"), getattr(inner, "capabilities", None)

    def blame(self, prompt, trace):
        self.keys.add(trace.trace.replay_key)
        return self.inner.blame(prompt, trace)

    def propose(self, request):
        self.keys.update(t.trace.replay_key for t in request.traces)
        return self.inner.propose(request)


def test_held_out_replay_keys_never_reach_the_blamer_or_the_editor():
    env = _world()
    store, _ = _store(env)
    blamer, editor = Spy(ExplainBlamer(_explain)), Spy(OracleRewriteEditor(dropout=0.0))
    res = run_round(store, "s", env=env, editor=editor, config=CFG, seed=2, blamer=blamer)
    rec = RunRecord.from_json(store.get_run(res.run_id))
    held = set(rec.cases.holdout_replay_keys)
    gate_keys = {c.replay_key for c in rec.replay.cases}
    assert held and gate_keys == held
    assert blamer.keys and editor.keys  # both read something ...
    assert not (blamer.keys | editor.keys) & held  # ... and none of it is held out
    assert not set(rec.cases.read_replay_keys) & held
    assert {k for k in blamer.keys} <= set(rec.cases.read_replay_keys)
    fails_held = [k for k in held if k.startswith("bag")]
    assert fails_held and len(fails_held) < len([k for k in env.rules if k.startswith("bag")])


def round_texts(seed: int, *, shuffled: bool = False) -> dict:
    """One noisy, seeded round; what it promoted and every candidate (for the determinism tests)."""
    env = FakeReplay({**_world().rules}, noise=0.1, slices={})
    store, _ = _store(env, shuffled=shuffled)
    cfg = replace(CFG, n_candidates=3, iterations=2, span_dropout=0.5, anneal_t0=0.5)
    res = run_round(
        store, "s", env=env, editor=OracleEditor(explore=0.5), config=cfg, seed=seed, blamer=ExplainBlamer(_explain)
    )
    rec = RunRecord.from_json(store.get_run(res.run_id))
    return {
        "status": res.status,
        "promoted": store.active_version("s").text,
        "candidates": [c.text for c in rec.candidates],
        "holdout": list(rec.cases.holdout),
    }


def test_same_seed_same_promoted_text_across_processes():
    import json
    import os
    import subprocess
    import sys

    here = round_texts(4)
    assert here == round_texts(4)
    code = "import json; from tests.optimize.test_loop import round_texts; print(json.dumps(round_texts(4)))"
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert round_texts(5)["holdout"] != here["holdout"]  # the seed is what decides


def test_same_seed_same_promotion_whatever_order_the_traffic_was_recorded_in():
    # live episodes finish concurrently, so the store's time order (and the trace ids) differ per run
    a, b = round_texts(4), round_texts(4, shuffled=True)
    assert a["status"] == "promoted" and a == b
