"""The honest offline judge: evidence only (never the rule book), critiques in its own words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from diffprompt.spans import segment
from diffprompt.types import PromptVersion, Trace, TraceWithFeedback, utcnow
from tau_envs.domain import Domain, load_domain
from tau_envs.evidence import tau_evidence
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.judge import TauJudge, garbled_spans
from tau_envs.rules import ALL_RULES, rules_for
from tests.tau_world.loop import run_episode

SCENARIOS = {
    "airline": (("airline.confirm", "airline.free_bags"), ("airline.basic_no_change",)),
    "retail": (("retail.confirm", "retail.pending_only"), ("retail.refund_method",)),
}


class _Blind:
    """A domain whose policy and rule list cannot be read (anything else is the real domain's)."""

    def __init__(self, dom: Domain) -> None:
        self._dom = dom

    def __getattr__(self, name: str) -> Any:
        if name in ("policy", "rules", "data_dir"):
            raise AssertionError(f"the judge read domain.{name}")
        return getattr(self._dom, name)


def _version(text: str) -> PromptVersion:
    return PromptVersion(id="v1", slot="s", text=text, spans=tuple(segment(text)), parent_id=None,
                         created_at=utcnow(), origin="seed")


def _trace(
    dom: Domain, index: int, messages: list[dict[str, Any]], comments: tuple[str, ...] = ()
) -> TraceWithFeedback:
    from diffprompt.types import Feedback

    tr = Trace(id=f"tr_{dom.name}_{index}", slot="s", version_id="v1", thread_id=f"th{index}",
               messages=tuple(messages), started_at=utcnow(), ended_at=utcnow(),
               replay_key=f"tau:{dom.name}:{dom.split}:{index}")
    fb = tuple(Feedback(trace_id=tr.id, kind="comment", value=None, text=c, source="user") for c in comments)
    return TraceWithFeedback(trace=tr, feedback=fb)


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    name = request.param
    out = generate_world(name, seed=3, n_users=80, n_tasks=60, out_dir=tmp_path_factory.mktemp(name))
    dom = load_domain(name, out)
    delete, garble = SCENARIOS[name]
    degraded = degrade_policy(dom.policy, list(rules_for(name)), delete=delete, garble=garble, seed=0)
    fails, wins = [], []
    for task in dom.tasks:
        reward, messages = run_episode(dom, task, degraded, seed=task.index)
        (wins if reward >= 1.0 else fails).append((task, _trace(dom, task.index, messages)))
    assert fails, "the degraded policy must make the simulated agent fail somewhere"
    return dom, degraded, fails, wins


def test_judge_blames_failures_without_reading_rules(scenario, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    dom, degraded, fails, wins = scenario

    def forbidden(*a: Any, **k: Any) -> Any:
        raise AssertionError("the honest judge read the rule book or the simulated model's blame log")

    import tau_envs.rules
    import tau_envs.sim
    import tau_envs.sim.agent_base
    import tau_envs.sim.matching
    import tau_envs.sim.policy

    for mod, name in [(tau_envs.rules, "rules_for"), (tau_envs.rules, "rule_by_id"), (tau_envs.rules, "load_rules"),
                      (tau_envs.sim, "explain_failure"), (tau_envs.sim.matching, "stated_rules"),
                      (tau_envs.sim.matching, "best_span"), (tau_envs.sim.matching, "rule_coverage")]:
        monkeypatch.setattr(mod, name, forbidden)
    monkeypatch.setattr(tau_envs.sim.policy.SimulatedPolicy, "explain_failure", forbidden)
    monkeypatch.setattr(tau_envs.sim.policy.SimulatedPolicy, "decide", forbidden)
    monkeypatch.setattr(tau_envs.sim.agent_base.Ctx, "blame", forbidden)
    monkeypatch.setattr(tau_envs.rules, "ALL_RULES", {})
    judge = TauJudge(_Blind(dom))
    version = _version(degraded)
    ids = {s.id for s in version.spans}
    catalogue = [r.text for rules in ALL_RULES.values() for r in rules]
    suggestions = judge.observe([twf for _task, twf in fails + wins])  # window-level induction, same blindfold
    assert suggestions, "a degraded world's window supports some induced instruction"
    blamed = 0
    for _task, twf in fails:
        blames = judge.blame(version, twf)
        blamed += bool(blames)
        for b in blames:
            assert b.span_id in ids and b.reason and b.trace_id == twf.trace.id
            for sentence in catalogue:  # neither the critique nor the judge's suggestion is a rule's sentence
                assert sentence.lower().rstrip(".") not in b.reason.lower(), sentence
                assert sentence.lower().rstrip(".") not in b.hint.lower(), sentence
    assert blamed == len(fails), "every failing episode with an evidence difference gets a critique"


def test_passing_episodes_and_foreign_traces_get_no_blame(scenario) -> None:  # type: ignore[no-untyped-def]
    dom, degraded, _, wins = scenario
    judge, version = TauJudge(dom), _version(degraded)
    for _task, twf in wins[:5]:
        assert judge.findings(twf) == [] and judge.blame(version, twf) == []
    twf = wins[0][1]
    foreign = TraceWithFeedback(trace=Trace(**{**{f: getattr(twf.trace, f) for f in twf.trace.__dataclass_fields__},
                                               "replay_key": "tau:other:test:0"}))
    assert judge.blame(version, foreign) == []


def test_critiques_say_what_went_wrong_in_their_own_words(scenario) -> None:  # type: ignore[no-untyped-def]
    dom, degraded, fails, _ = scenario
    judge, version = TauJudge(dom), _version(degraded)
    texts = {task.intent["task_kind"]: " ".join(f.text for f in judge.findings(twf)) for task, twf in fails}
    if dom.name == "airline":
        assert re.search(r"cancelled reservation \w{6}, but the expected outcome has no cancellation",
                         texts["cancel_decline"])
        assert "did not ask the user to confirm" in texts["cancel_decline"]
        assert "should have been free of charge" in texts["add_bags"]
    else:
        assert "did not ask the user to confirm" in texts["cancel_decline"]
        assert "the tool answered 'Error: payment method" in texts["return_refund_other"]
    # the garbled rule's span is blamed as wrong (rewrite it), never the others
    garbled = garbled_spans([s.text for s in version.spans])
    assert len(garbled) == 1
    (g,) = garbled
    wrong = {b.span_id for _t, twf in fails for b in judge.blame(version, twf) if b.kind == "wrong"}
    assert wrong == {version.spans[g].id}


def test_user_comments_are_quoted(scenario) -> None:  # type: ignore[no-untyped-def]
    dom, _, fails, _ = scenario
    task, twf = fails[0]
    again = _trace(dom, task.index, list(twf.trace.messages), comments=("You did that without asking me!",))
    assert any("You did that without asking me!" in f.text for f in TauJudge(dom).findings(again))


def _calls(*calls: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]
    for k, (name, args) in enumerate(calls):
        import json

        out.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{k}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]})
        out.append({"role": "tool", "tool_call_id": f"c{k}", "content": "ok"})
    return out


def test_evidence_pairs_writes_and_diffs_the_database(scenario) -> None:  # type: ignore[no-untyped-def]
    dom, _, _, _ = scenario
    task = next(t for t in dom.tasks if len(t.actions) == 1 and t.actions[0].kwargs)
    gold = task.actions[0]
    same = tau_evidence(dom, task, _calls((gold.name, dict(gold.kwargs))))
    assert same.clean and len(same.calls) == 1
    nothing = tau_evidence(dom, task, _calls())
    assert [a.kind for a in nothing.actions] == ["missing"] and nothing.db
    key = next(iter(gold.kwargs))
    other = next(t for t in dom.tasks if t.actions and t.actions[0].name == gold.name
                 and t.actions[0].kwargs.get(key) != gold.kwargs[key])
    mixed = {**gold.kwargs, key: other.actions[0].kwargs[key]}
    ev = tau_evidence(dom, task, _calls((gold.name, mixed)))
    kinds = sorted(a.kind for a in ev.actions)
    assert kinds in (["different"], ["missing"]), kinds  # a call the tools reject changes nothing
    if kinds == ["different"]:
        assert ev.actions[0].fields[0][0] == key
    more = [(a.name, dict(a.kwargs)) for a in other.actions]
    extra = tau_evidence(dom, task, _calls((gold.name, dict(gold.kwargs)), *more))
    assert {a.kind for a in extra.actions} & {"unexpected", "different"}
    reads = tau_evidence(dom, task, _calls((gold.name, dict(gold.kwargs)), ("think", {"thought": "x"})))
    assert reads.clean  # a call that changes nothing is not a write


def test_default_offline_blamer_is_the_honest_judge(tmp_path: Path) -> None:
    from diffprompt.optimize.attribution import ExplainBlamer
    from diffprompt.optimize.build import build_blamer

    dom = load_domain("airline", generate_world("airline", seed=1, n_users=10, n_tasks=4, out_dir=tmp_path))
    assert isinstance(build_blamer(dom), TauJudge)
    assert isinstance(build_blamer(dom, judge="oracle"), ExplainBlamer)
