from __future__ import annotations

import json

from diffprompt.optimize.replay import run_paired
from diffprompt.optimize.replay_counterfactual import (
    CounterfactualReplay,
    PolicyToolChat,
    parse_score,
    recorded_tool_results,
)
from diffprompt.types import Feedback, Trace, TraceWithFeedback
from tests.optimize.helpers import T0, FakeClient

RECORDED = (
    {"role": "system", "content": "old prompt"},
    {"role": "user", "content": "cancel order 7"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"id": 7}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": '{"status": "pending"}'},
    {"role": "assistant", "content": "Cancel it?"},
    {"role": "user", "content": "yes"},
    {"role": "assistant", "content": "Done."},
)


class Policy:
    """Looks the order up (same call as recorded), then asks to confirm only if the prompt says so."""

    def __init__(self):
        self.seen = []

    def respond(self, messages, tools):
        self.seen.append(messages)
        if not any(m["role"] == "tool" for m in messages):
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "x1",
                        "type": "function",
                        "function": {"name": "get_order", "arguments": '{"id": 7}'},
                    }
                ],
            }
        if "confirm" in messages[0]["content"] and messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": "Please confirm."}
        return {"role": "assistant", "content": "Cancelled."}


def _twf():
    tr = Trace(
        id="t1", slot="s", version_id="v", thread_id="th", messages=RECORDED, started_at=T0, ended_at=T0
    )
    return TraceWithFeedback(trace=tr, feedback=(Feedback(trace_id="t1", kind="reward", value=1.0),))


def test_recorded_tool_results_match_by_name_and_args():
    res = recorded_tool_results(RECORDED)
    assert res == {'get_order:{"id": 7}': '{"status": "pending"}'}


def test_counterfactual_replay_uses_recording_and_judge():
    policy = Policy()
    judge = FakeClient(['{"score": 0.9, "reason": "ok"}', '{"score": 0.2, "reason": "no confirm"}'])
    env = CounterfactualReplay(PolicyToolChat(policy), judge)
    cases = env.cases([_twf()])
    assert len(cases) == 1 and cases[0].data["outcome"] == 1.0
    res = run_paired(env, cases, {"good": "Always confirm first.", "bad": "Be fast."}, concurrency=1)
    assert res.rewards("good") == [0.9] and res.rewards("bad") == [0.2]
    # the recorded tool result was served back for the identical call
    first = policy.seen[1]
    assert first[-1] == {"role": "tool", "tool_call_id": "x1", "content": '{"status": "pending"}'}
    assert first[0] == {"role": "system", "content": "Always confirm first."}
    judged = judge.requests[0][0]["content"]
    assert "reward 1.0" in judged and "Please confirm." in judged
    assert res.model_calls("good") >= 2


def test_parse_score():
    assert parse_score('{"score": 3}') == 1.0
    assert parse_score("nothing") is None
    assert parse_score(json.dumps({"score": "x"})) is None
