"""The round's strategy objects, alone and injected into a round through ``RoundDeps``."""

from __future__ import annotations

import random
from dataclasses import dataclass

from diffprompt.optimize.attribution import ExplainBlamer, SpanScore
from diffprompt.optimize.budget import BudgetTracker
from diffprompt.optimize.loop import RoundDeps, RoundSpec, run_with
from diffprompt.optimize.oracle import OracleEditor
from diffprompt.optimize.record import RunRecord
from diffprompt.optimize.replay import Case, FakeReplay
from diffprompt.optimize.strategies import (
    Annealed,
    BestUnique,
    Greedy,
    ReplayScreener,
    TopSpans,
    WeightedSpans,
    candidate_label,
)
from diffprompt.optimize.validate import ScreenedCandidate
from diffprompt.types import Candidate
from tests.optimize.helpers import version
from tests.optimize.test_loop import CFG, _explain, _store, _world


def _ranking(v):
    return [SpanScore(span_id=s.id, score=1.0 / (i + 1)) for i, s in enumerate(v.spans) if s.kind != "heading"]


def test_top_spans_keeps_the_first_and_drops_others_by_seed():
    v = version()
    ranking = _ranking(v)
    assert [s.span_id for s in TopSpans().select(ranking, v, 2, random.Random(0))] == [r.span_id for r in ranking[:2]]
    picks = {tuple(s.span_id for s in TopSpans(dropout=0.9).select(ranking, v, 3, random.Random(k))) for k in range(20)}
    assert all(p[0] == ranking[0].span_id for p in picks) and len(picks) > 1
    excl = TopSpans().select(ranking, v, 1, random.Random(0), exclude=frozenset({ranking[0].span_id}))
    assert excl[0].span_id == ranking[1].span_id


def test_weighted_spans_follow_the_scores():
    v = version()
    ranking = _ranking(v)
    counts: dict[str, int] = {}
    rng = random.Random(1)
    for _ in range(400):
        (s,) = WeightedSpans().select(ranking, v, 1, rng)
        counts[s.span_id] = counts.get(s.span_id, 0) + 1
    assert counts[ranking[0].span_id] > counts[ranking[-1].span_id] * 2
    two = WeightedSpans().select(ranking, v, 2, random.Random(3))
    order = [r.span_id for r in ranking]
    assert len({s.span_id for s in two}) == 2 and order.index(two[0].span_id) < order.index(two[1].span_id)


def test_acceptance_rules():
    rng = random.Random(0)
    assert Greedy().accept(0.1, 0, rng) and not Greedy().accept(0.0, 0, rng) and not Greedy().accept(-0.1, 0, rng)
    ann = Annealed(t0=1.0, decay=0.5)
    taken = sum(ann.accept(-0.1, 0, random.Random(k)) for k in range(200))
    assert 100 < taken < 200  # exp(-0.1) ~ 0.9 of small losses are taken at T=1
    assert not any(ann.accept(0.0, 0, random.Random(k)) for k in range(50))  # ties never
    assert not any(Annealed(t0=0.0).accept(-0.01, 0, random.Random(k)) for k in range(50))


def _sc(text, score):
    c = Candidate(text=text, parent_id="v", masked_span_ids=(), editor="t", seed=0)
    return ScreenedCandidate(candidate=c, valid=True, status="screened", screen_score=score, accepted=True)


def test_best_unique_finalists():
    got = BestUnique().choose([_sc("a", 0.5), _sc("b", 0.9), _sc("a", 0.7), _sc("c", 0.1)], 2)
    assert [(g.candidate.text, g.screen_score) for g in got] == [("b", 0.9), ("a", 0.7)]


def test_replay_screener_labels_and_length_penalty():
    env = FakeReplay({"k1": "rule one", "k2": "rule two"})
    cases = [Case(id="k1", replay_key="k1"), Case(id="k2", replay_key="k2")]
    sc = ReplayScreener(env=env, seed=0, concurrency=1, length_penalty=1.0)
    parent = "rule one."
    out = sc.score(cases, parent, ["rule one. rule two.", "nothing"], iteration=0, tracker=BudgetTracker())
    assert out.parent == 0.5 and out.candidates[1] == 0.0
    assert out.candidates[0] < 1.0  # 1.0 minus the length growth
    assert set(out.replay.results) == {"parent", "candidate 1", "candidate 2"}
    assert candidate_label(0, 1) == "candidate" and candidate_label(1, 3) == "candidate 2"


@dataclass(frozen=True)
class RejectAll:
    def accept(self, delta, iteration, rng):
        return False


def test_round_uses_injected_strategies():
    env = _world()
    store, v = _store(env)
    deps = RoundDeps(
        store=store, env=env, editor=OracleEditor(explore=0.0), blamer=ExplainBlamer(_explain), acceptance=RejectAll()
    )
    res = run_with(deps, RoundSpec(slot="s", config=CFG, seed=1))
    assert res.status == "rejected" and res.decision.reasons[0] == "no valid candidate survived screening"
    rec = RunRecord.from_json(store.get_run(res.run_id))
    assert rec.candidates and all(c.status == "screen_lost" for c in rec.candidates if c.screen_score is not None)
    assert store.active_version("s").id == v.id
