"""Reply → label parsing rules (module docstring of diffprompt.datasets.labels) and the metrics."""

from __future__ import annotations

import pytest

from diffprompt.datasets.labels import parse_label
from diffprompt.datasets.metrics import accuracy, macro_f1

S2 = ["negative", "positive"]
S5 = ["very negative", "negative", "neutral", "positive", "very positive"]
MRPC = ["not_equivalent", "equivalent"]
NLI = ["entailment", "neutral", "contradiction"]


@pytest.mark.parametrize(
    ("reply", "labels", "label", "rule"),
    [
        ("positive", S2, "positive", "exact"),
        (" Positive. ", S2, "positive", "normalised"),
        ("Sentiment: NEGATIVE", S2, "negative", "normalised"),
        ("the answer is: very positive!", S5, "very positive", "normalised"),
        ("not equivalent", MRPC, "not_equivalent", "normalised"),
        ("Not-Equivalent", MRPC, "not_equivalent", "normalised"),
        ("Let me think.\nAnswer: contradiction, because the man is asleep", NLI, "contradiction", "cue"),
        ("Label = very negative (strongly)", S5, "very negative", "cue"),
        ("I think the review is positive overall.", S2, "positive", "inside"),
        ("This one is very negative in tone.", S5, "very negative", "inside"),
        ("The sentences are not equivalent in meaning.", MRPC, "not_equivalent", "inside"),
        ("They are equivalent.", MRPC, "equivalent", "inside"),
        ("positive or negative?", S2, None, "ambiguous"),
        ("I cannot tell.", S2, None, "none"),
        ("", S2, None, "none"),
        ("positively", S2, None, "none"),
    ],
)
def test_parse_label(reply: str, labels: list[str], label: str | None, rule: str) -> None:
    assert parse_label(reply, labels) == (label, rule)


def test_accuracy_and_macro_f1() -> None:
    gold = ["a", "a", "b", "b"]
    pred = ["a", None, "b", "a"]
    assert accuracy(gold, pred) == 0.5
    # a: p=1/2, r=1/2 → 0.5; b: p=1, r=1/2 → 2/3
    assert macro_f1(gold, pred, ["a", "b", "c"]) == pytest.approx((0.5 + 2 / 3) / 2)
    assert accuracy([], []) == 0.0 and macro_f1([], [], ["a"]) == 0.0
    with pytest.raises(ValueError):
        accuracy(["a"], [])
