"""Does a system prompt state a rule? Lexical concept coverage per prompt span.

Method (documented contract, used by the simulated model and by ``rule_coverage``):

1. The prompt is cut into spans with :func:`diffprompt.spans.segment` (headings, bullets, sentences).
2. Each span is normalised: lower-cased, ``n't`` → ``not``, ``$50`` → ``50``, split into word tokens.
3. A rule is a list of *concepts*; each concept is a group of synonyms (stems or short phrases). A
   term of 4+ letters matches any token that starts with it (``modif`` matches *modify, modified,
   modification*); a shorter term must match a whole token or its plural (``bag`` matches *bags*, ``no``
   does not match *not*); a phrase
   matches consecutive tokens with the same per-word rule.
4. ``score(rule, span)`` = fraction of the rule's concepts present in that one span; the rule's
   coverage is the best score over spans. Concepts are not pooled across spans, so a prompt that
   scatters the words of a rule over unrelated sentences does not state it.
5. The rule is *stated* when its coverage >= ``threshold`` (default 0.8: every concept of a rule with
   up to 4 concepts, 4 of 5 for a 5-concept rule).

Paraphrases that keep the rule's concepts under other words ("Reservations in basic economy are not
modifiable") are detected; unrelated text, the other domain's policy, and garbled versions of the
sentence (content words scrambled, as :func:`tau_envs.generate.degrade_policy` does) are not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from diffprompt.spans import segment
from tau_envs.rules import Rule

DEFAULT_THRESHOLD = 0.8
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokens(text: str) -> tuple[str, ...]:
    """Normalised word tokens of a text (see the module docstring, step 2)."""
    t = text.lower().replace("’", "'").replace("n't", " not").replace("cannot", "cannot")
    t = t.replace("$", " ").replace("/", " ")
    out: list[str] = []
    for tok in _TOKEN.findall(t):
        out.append(tok)
        if "-" in tok:  # "non-refundable" also yields "non", "refundable"
            out.extend(p for p in tok.split("-") if p)
    return tuple(out)


def _word_match(term: str, tok: str) -> bool:
    return tok.startswith(term) if len(term) >= 4 else tok in (term, term + "s")


def _term_in(term: str, toks: Sequence[str]) -> bool:
    words = term.split()
    if len(words) == 1:
        return any(_word_match(term, t) for t in toks)
    n = len(words)
    return any(
        all(_word_match(w, toks[i + j]) for j, w in enumerate(words)) for i in range(len(toks) - n + 1)
    )


def span_score(rule: Rule, toks: Sequence[str]) -> float:
    """Fraction of ``rule``'s concepts present in one span's tokens."""
    if not rule.concepts:
        return 0.0
    hit = sum(1 for concept in rule.concepts if any(_term_in(term, toks) for term in concept))
    return hit / len(rule.concepts)


@lru_cache(maxsize=256)
def _span_tokens(prompt: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((s.text, tokens(s.text)) for s in segment(prompt))


def best_span(rule: Rule, prompt: str) -> tuple[float, str]:
    """The rule's coverage in ``prompt`` and the text of the best-matching span ('' when none)."""
    best, text = 0.0, ""
    for span_text, toks in _span_tokens(prompt):
        s = span_score(rule, toks)
        if s > best:
            best, text = s, span_text
    return best, text


def rule_coverage(system_prompt: str, rules: Sequence[Rule]) -> dict[str, float]:
    """``{rule_id: coverage in [0, 1]}`` of every rule in the prompt (best single span)."""
    return {r.id: best_span(r, system_prompt)[0] for r in rules}


def stated_rules(
    system_prompt: str, rules: Sequence[Rule], threshold: float = DEFAULT_THRESHOLD
) -> frozenset[str]:
    """Ids of the rules the prompt states (coverage >= ``threshold``); cached per prompt."""
    return _stated(system_prompt, tuple(rules), threshold)


@lru_cache(maxsize=512)
def _stated(system_prompt: str, rules: tuple[Rule, ...], threshold: float) -> frozenset[str]:
    return frozenset(rid for rid, s in rule_coverage(system_prompt, rules).items() if s >= threshold - 1e-9)
