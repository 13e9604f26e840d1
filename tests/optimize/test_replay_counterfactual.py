"""``--env recorded``: counterfactual replay of recorded conversations + the blind pairwise judge."""

from __future__ import annotations

import json
import re

from diffprompt.editing import EditorCapabilities
from diffprompt.llm import ScriptedChatClient
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.judge_pairwise import PairwiseJudge, parse_verdict
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.replay import run_paired
from diffprompt.optimize.replay_counterfactual import (
    ContextOverflow,
    PolicyToolChat,
    infer_tool_schemas,
    recorded_tool_results,
    replay_conversation,
)
from diffprompt.optimize.replay_recorded import RecordedReplay
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Candidate, Feedback, Trace, TraceWithFeedback, Usage
from tests.optimize.helpers import T0

RULE = "Always confirm with the user before cancelling."
SEED = (
    "You are the support agent of a shop.\n- Look orders up before acting.\n- Be brief and polite.\n"
    "- Refunds go to the original payment method.\n- Never share internal notes.\n"
)


def _recorded(i: int) -> tuple[dict, ...]:
    return (
        {"role": "system", "content": SEED},
        {"role": "user", "content": f"cancel order {i}"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": json.dumps({"id": i})}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "pending"}'},
        {"role": "assistant", "content": "Cancelled."},
        {"role": "user", "content": "What? I did not say yes! I wanted to check first."},
    )


class Policy:
    """Looks the order up (the recorded call), then asks to confirm only if the prompt says so."""

    def __init__(self):
        self.seen = []

    def respond(self, messages, tools):
        self.seen.append(messages)
        if not any(m["role"] == "tool" for m in messages):
            order = int(re.search(r"\d+", messages[1]["content"]).group(0))
            fn = {"name": "get_order", "arguments": f'{{"id": {order}}}'}
            call = {"id": "x1", "type": "function", "function": fn}
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        if "confirm" in messages[0]["content"]:
            return {"role": "assistant", "content": "Shall I cancel it? Please confirm."}
        return {"role": "assistant", "content": "Cancelled."}


class ContentJudge:
    """A fake judge that reads the two replies (never the prompts) and prefers the one that asks."""

    def __init__(self):
        self.requests, self.schemas = [], []
        self.model = "fake-judge"

    def complete_json(self, messages, schema, *, name="answer", temperature=0.0, max_tokens=None):
        from diffprompt.llm import Completion

        self.requests.append(messages)
        self.schemas.append(schema)
        text = messages[0]["content"]
        a = text.split("## Reply A", 1)[1].split("## Reply B", 1)[0]
        b = text.split("## Reply B", 1)[1]
        wa, wb = "confirm" in a.lower(), "confirm" in b.lower()
        winner = "tie" if wa == wb else ("A" if wa else "B")
        return Completion(text=json.dumps({"winner": winner, "reason": "asks first"}), usage=Usage(input_tokens=10))


def _twf(i: int, reward: float, comment: str = "") -> TraceWithFeedback:
    tr = Trace(
        id=f"t{i}", slot="s", version_id="v", thread_id=f"th{i}", messages=_recorded(i), started_at=T0, ended_at=T0
    )
    fb = [Feedback(trace_id=tr.id, kind="reward", value=reward)]
    if comment:
        fb.append(Feedback(trace_id=tr.id, kind="comment", value=None, text=comment))
    return TraceWithFeedback(trace=tr, feedback=tuple(fb))


def test_recorded_tool_results_and_inferred_schemas():
    res = recorded_tool_results(_recorded(7))
    assert res == {'get_order:{"id": 7}': '{"status": "pending"}'}
    (schema,) = infer_tool_schemas([_recorded(7)])
    assert schema["function"]["name"] == "get_order"
    assert schema["function"]["parameters"]["properties"] == {"id": {"type": "integer"}}


def test_replay_serves_recorded_results_and_feeds_later_user_turns():
    policy = Policy()
    r = replay_conversation(PolicyToolChat(policy), RULE, _recorded(7), tools=[], seed=0, max_user_turns=1)
    assert r.outcome == "ok" and r.tool_matches == 1 and r.tool_misses == 0
    assert policy.seen[1][-1] == {"role": "tool", "tool_call_id": "x1", "content": '{"status": "pending"}'}
    assert policy.seen[0][0] == {"role": "system", "content": RULE}
    assert any("did not say yes" in str(m.get("content")) for m in r.turns)


class _Garbage:
    def __init__(self, kind):
        self.kind = kind

    def respond(self, messages, tools, *, seed):
        if self.kind == "overflow":
            raise ContextOverflow("request (9000 tokens) exceeds the available context size (8192)")
        if self.kind == "empty":
            return {"role": "assistant", "content": ""}, Usage()
        call = {"id": "z", "type": "function", "function": {"name": "get_order", "arguments": '{"id": 7'}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, Usage()


def test_garbage_replies_are_counted_outcomes_with_reasons():
    for kind, outcome in (("overflow", "context_overflow"), ("empty", "empty_reply"), ("bad", "malformed_tool_call")):
        r = replay_conversation(_Garbage(kind), SEED, _recorded(7), tools=[], seed=0)
        assert r.outcome == outcome and r.garbage and r.reason


def test_parse_verdict_is_strict():
    assert parse_verdict('{"winner": "A", "reason": "x"}') == ("A", "x")
    assert parse_verdict('```json\n{"winner": "tie", "reason": ""}\n```') == ("tie", "")
    assert parse_verdict('I think A is better. {"winner": "A"}') is None
    assert parse_verdict('{"winner": "C", "reason": "x"}') is None
    assert parse_verdict("[1, 2]") is None


def test_judge_swaps_order_position_bias_is_a_tie_and_garbage_is_a_counted_tie():
    biased = PairwiseJudge(ScriptedChatClient(['{"winner": "A", "reason": "first is best"}']))
    j = biased.compare({"prefix": "USER: hi"}, "reference reply", "challenger reply", seed=3)
    assert j.verdict == "tie" and "position bias" in j.reason and j.judge_calls == 2
    garbage = ScriptedChatClient(["The first one, definitely!!"])
    j = PairwiseJudge(garbage).compare({"prefix": "USER: hi"}, "r", "c", seed=3)
    assert j.verdict == "tie" and j.unparseable == 2 and "unparseable" in j.reason
    assert j.raw == ("The first one, definitely!!",) * 2
    assert garbage.schemas and garbage.schemas[0]["properties"]["winner"]["enum"] == ["A", "B", "tie"]


def test_paired_replay_judged_blind_in_both_orders():
    judge = ContentJudge()
    env = RecordedReplay(PolicyToolChat(Policy()), PairwiseJudge(judge))
    cases = env.cases([_twf(i, 0.0, "it cancelled without asking me") for i in range(6)])
    res = run_paired(env, cases, {"incumbent": SEED, "cand": SEED + "- " + RULE + "\n"}, concurrency=2)
    assert res.rewards("cand") == [1.0] * 6 and res.rewards("incumbent") == [0.0] * 6
    assert len(judge.requests) == 12  # two orders per case
    sent = judge.requests[0][0]["content"]
    assert RULE not in sent and SEED not in sent  # blind: the judge never sees either prompt
    assert "it cancelled without asking me" in sent and "did not say yes" in sent and "reward 0" in sent
    stats = env.stats()
    assert stats["judge_calls"] == 12 and stats["verdict:win"] == 6 and stats["tool_matches"] == 12


class AddRule:
    name = "add-rule"
    capabilities = EditorCapabilities(whole_prompt=True, reads_traces=True)

    def __init__(self):
        self.read = []

    def propose(self, request):
        self.read.extend(t.trace.id for t in request.traces)
        text = request.prompt.text + "- " + RULE + "\n"
        return [Candidate(text=text, parent_id=request.prompt.id, masked_span_ids=(), editor=self.name, seed=0)]


def _store(n=30):
    store = MemoryStore()
    v = store.create_slot("s", SEED)
    traces, fb = [], []
    for i in range(n):
        t = _twf(i, 0.0 if i % 3 else 1.0, "it cancelled without asking me" if i % 3 else "")
        traces.append(Trace(**{**{f: getattr(t.trace, f) for f in t.trace.__dataclass_fields__}, "version_id": v.id}))
        fb.extend(t.feedback)
    store.add_traces(traces)
    store.add_feedback(fb)
    return store


def test_round_with_recorded_env_promotes_and_keeps_gate_cases_unread():
    store = _store()
    editor = AddRule()
    env = RecordedReplay(PolicyToolChat(Policy()), PairwiseJudge(ContentJudge()))
    cfg = OptimizeConfig(n_candidates=1, iterations=1, screen_cases=4, holdout_cases=20)
    res = run_round(store, "s", env=env, editor=editor, config=cfg)
    assert res.status == "promoted", res.decision.reasons
    assert res.decision.stats["test"] == "sign" and res.decision.stats["wins"] >= 5
    holdout = set(res.record.cases.holdout)
    assert holdout and not holdout & set(editor.read)


def test_round_with_garbage_judge_completes_with_counted_ties():
    store = _store()
    garbage = ScriptedChatClient(["I like both of them a lot"])
    env = RecordedReplay(PolicyToolChat(Policy()), PairwiseJudge(garbage))
    cfg = OptimizeConfig(n_candidates=1, iterations=1, screen_cases=4, holdout_cases=20, anneal_t0=1.0)
    res = run_round(store, "s", env=env, editor=AddRule(), config=cfg)
    assert res.status in ("rejected", "insufficient_data") and res.status != "promoted"
    assert env.stats()["judge_unparseable"] == env.stats()["judge_calls"] > 0
