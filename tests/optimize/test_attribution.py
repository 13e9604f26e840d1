from __future__ import annotations

from diffprompt.optimize.attribution import (
    ExplainBlamer,
    Explanation,
    JudgeBlamer,
    attribute,
    parse_blame_json,
    split_window,
    tfidf_similarity,
)
from tests.optimize.helpers import FakeClient, twf, version


def _id(v, needle):
    return next(s.id for s in v.spans if needle in s.text)


def test_tfidf_prefers_topical_span():
    sims = tfidf_similarity(
        ["the agent modified my basic economy flight"],
        ["Refunds go to the original payment method.", "Basic economy flights cannot be modified."],
    )
    assert sims[0][1] > sims[0][0]


def test_split_window_ignores_unscored():
    w = [twf(1, 0.0), twf(2, 1.0), twf(3, 0.5)]
    fails, wins = split_window(w)
    assert [t.trace.id for t in fails] == ["t1", "t3"] and [t.trace.id for t in wins] == ["t2"]


def test_similarity_only_ranking():
    v = version()
    w = [twf(1, 0.0, "you changed my basic economy flight, that should not be modified"), twf(2, 1.0)]
    ranked = attribute(v, w)
    assert ranked[0].span_id == _id(v, "Basic economy")
    assert ranked[0].evidence[0]["source"] == "similarity"


def test_explain_blamer_garbled_and_missing():
    v = version()

    def explain(t, p):
        if t.trace.id == "t1":
            return [
                Explanation(
                    text="Basic economy flights cannot be modified.",
                    reason="garbled",
                    kind="wrong",
                    stated_in="Basic economy flights cannot be modified.",
                )
            ]
        return [
            Explanation(
                text="Each passenger may check at most two bags, and extra bags cost 50 dollars.",
                reason="rule about extra bag fees is missing",
                kind="missing",
            )
        ]

    blamer = ExplainBlamer(explain)
    ranked = attribute(v, [twf(1, 0.0), twf(2, 0.0), twf(3, 0.0), twf(4, 1.0)], blamer=blamer)
    by = {s.span_id: s for s in ranked}
    bags = _id(v, "two bags")
    assert by[bags].insert and by[bags].components["blame"] == 2
    assert ranked[0].span_id == bags
    assert not by[_id(v, "Basic economy")].insert
    assert any(e.get("hint", "").startswith("Each passenger") for e in by[bags].evidence)


def test_protected_spans_and_headings_never_candidates():
    v = version()
    prot = _id(v, "Basic economy")
    blamer = ExplainBlamer(
        lambda t, p: [
            Explanation(text="Basic economy flights cannot be modified.", reason="r", kind="wrong")
        ],
        protected=[prot],
    )
    ranked = attribute(v, [twf(1, 0.0, "basic economy modified")], blamer=blamer, protected=[prot])
    ids = {s.span_id for s in ranked}
    assert prot not in ids
    assert not any(s.kind == "heading" and s.id in ids for s in v.spans)


def test_judge_blamer_parses_and_tolerates_garbage():
    v = version()
    client = FakeClient(
        [
            'Sure! {"blame": [{"span": 2, "reason": "ambiguous", "missing": false}, {"span": 99}]}',
            "no json here",
        ]
    )
    blamer = JudgeBlamer(client)
    ranked = attribute(v, [twf(1, 0.0), twf(2, 0.0)], blamer=blamer)
    assert ranked[0].span_id == _id(v, "Basic economy")
    assert blamer.failures == 1
    assert "[2] - Basic economy" in client.requests[0][0]["content"]
    assert parse_blame_json('{"blame": "x"}') is None


def test_likelihood_signal():
    v = version()
    target = _id(v, "Refunds")

    def lik(prompt, ids, traces):
        fail = any(t.reward == 0.0 for t in traces)
        return {i: (5.0 if (fail and i == target) else 1.0) for i in ids}

    ranked = attribute(v, [twf(1, 0.0), twf(2, 1.0)], likelihood=lik)
    assert ranked[0].span_id == target and ranked[0].components["likelihood"] == 4.0


def test_empty_window_gives_no_evidence():
    assert attribute(version(), []) == []


def test_garbled_rule_found_by_letter_bags():
    from diffprompt.optimize.attribution import closest_span

    text = (
        "# Policy\n- Basic economy flights cannot be modified.\n"
        "- Alayws cfinorm wtih the user bofree bonkoig.\n- Refunds go to the original payment method.\n"
    )
    v = version(text)
    rule = "Always confirm with the user before booking."
    span, sim = closest_span(rule, [s for s in v.spans if s.kind != "heading"], anagram=True)
    assert "Alayws" in span.text and sim > 0.8
    blamer = ExplainBlamer(lambda t, p: [Explanation(text=rule, reason="no confirmation", kind="missing")])
    (b,) = blamer.blame(v, twf(1, 0.0))
    assert b.span_id == span.id and b.kind == "wrong"


def _conv(i: int, reward: float, user: str, tool: str | None = None) -> object:
    from dataclasses import replace

    t = twf(i, reward)
    msgs: list[dict] = [{"role": "user", "content": user}]
    if tool:
        msgs.append({"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                     "function": {"name": tool, "arguments": "{}"}}]})
    msgs.append({"role": "assistant", "content": "Done."})
    return replace(t, trace=replace(t.trace, messages=tuple(msgs)))


def test_reward_only_window_falls_back_to_transcript_contrast():
    # no blamer, no comments: the spans that read like the failing conversations (and not like the
    # succeeding ones) are ranked, marked as the weak transcript signal
    v = version()
    fails = [_conv(i, 0.0, "please modify my basic economy flight to friday", "update_reservation_flights")
             for i in range(3)]
    wins = [_conv(10 + i, 1.0, "what is the refund for my payment method") for i in range(3)]
    ranked = attribute(v, [*fails, *wins])
    assert ranked and ranked[0].span_id == _id(v, "Basic economy")
    assert ranked[0].evidence[-1]["source"] == "transcript_contrast"
    assert _id(v, "Refunds") not in {r.span_id for r in ranked}  # what succeeding talks are about
    # any real signal (a comment) replaces the fallback
    with_comment = attribute(v, [*fails, twf(20, 0.0, "you never told me the refund goes to the original payment"),
                                 *wins])
    assert all(e["source"] != "transcript_contrast" for r in with_comment for e in r.evidence)
