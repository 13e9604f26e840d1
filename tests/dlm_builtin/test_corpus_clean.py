"""The built-in DLM's training corpus holds none of the τ worlds' policies it is evaluated on.

Generates the corpus and the span-infill rows exactly as ``training.dlm.train`` does and checks that
no airline/retail policy text, rule sentence, or degraded copy of one appears, and that no long word
sequence of a world policy appears anywhere in the training text.
"""

from __future__ import annotations

import random
import re

import pytest

from tau_envs.generate.policy import policy_text
from tau_envs.rules import rules_for
from training.dlm.corpus import draw_policy, generate_documents
from training.dlm.corpus_domains import DOMAINS
from training.dlm.feedback import failure_turns, judge_critique, user_complaint

NGRAM = 8  # words: longer shared sequences than this would be memorisable policy text


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


@pytest.fixture(scope="module")
def world_ngrams() -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for d in ("airline", "retail"):
        grams |= _ngrams(policy_text(d))  # type: ignore[arg-type]
        for r in rules_for(d):  # type: ignore[arg-type]
            grams |= _ngrams(r.text)
    return grams


@pytest.fixture(scope="module")
def corpus_text() -> str:
    docs = generate_documents(1500, 0) + generate_documents(200, 1_000_003)
    rng = random.Random(11)
    extra = []
    for _ in range(300):  # the feedback and trace text of infill rows
        p = draw_policy(rng, bullets=True)
        for r in p.rules[:3]:
            extra += [judge_critique(p.domain, r, rng), user_complaint(p.domain, r, rng)]
            extra += [t["text"] for t in failure_turns(p.domain, r, rng)]
    return "\n".join(docs + extra)


def test_no_airline_or_retail_domain_in_the_corpus():
    assert not {d.name.lower() for d in DOMAINS} & {"airline", "retail"}


def test_no_world_rule_sentence_or_policy_in_the_corpus(corpus_text):
    norm = " ".join(_words(corpus_text))
    for d in ("airline", "retail"):
        for r in rules_for(d):  # type: ignore[arg-type]
            assert " ".join(_words(r.text)) not in norm, r.id


def test_no_long_word_sequence_of_a_world_policy(corpus_text, world_ngrams):
    shared = _ngrams(corpus_text) & world_ngrams
    assert not shared, sorted(" ".join(g) for g in shared)[:10]


def test_the_check_can_fail(world_ngrams):
    leaked = "some text " + rules_for("airline")[0].text + " more"
    assert _ngrams(leaked) & world_ngrams
