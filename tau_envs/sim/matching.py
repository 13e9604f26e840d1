"""Does a system prompt state a rule? Lexical concept coverage per prompt span.

Method (documented contract, used by the simulated model and by ``rule_coverage``):

1. The prompt is cut into spans with :func:`diffprompt.spans.segment` (headings, bullets, sentences).
2. Each span is normalised: lower-cased, ``n't`` → ``not``, ``$50`` → ``50``, split into word tokens.
3. A rule is a list of *concepts*; each concept is a group of synonyms (stems or short phrases). A
   term of 4+ letters matches any token that starts with it (``modif`` matches *modify, modified,
   modification*); a shorter term must match a whole token or its plural (``bag`` matches *bags*, ``no``
   does not match *not*); a phrase
   matches consecutive tokens with the same per-word rule.
4. ``score(rule, span)`` = fraction of the rule's concepts present in that one span (0 when the span
   negates the rule, step 6); the rule's coverage is the best score over spans. Concepts are not
   pooled across spans, so a prompt that scatters the words of a rule over unrelated sentences does
   not state it.
5. The rule is *stated* when its coverage >= ``threshold`` (default 0.8: every concept of a rule with
   up to 4 concepts, 4 of 5 for a 5-concept rule).
6. **Negation.** A span that negates a *positive* rule does not state it ("Never ask for explicit
   confirmation (yes) before any action", "No need to ask which card pays the difference"). The
   rule's *core* concept is its first concept that is neither a negation, a limit nor an "only"
   group and holds no number (``confirm`` for the confirmation rule, ``cabin`` for the cabin-change
   rule). The span is cut into clauses at ``; : . ! ?``; a clause's *polarity* is the parity of its
   negation cues (``not never no cannot nor without unless none nothing skip avoid optional
   unnecessary needless waive prohibit forbid disallow unable ineligible``, plus ``until`` /
   ``before`` after an earlier cue in the clause, as in "do not act until the user confirms";
   "no more than" and the like are limits, not cues). A rule is positive when none of its concepts
   is a negation or limit group and the clause of its own sentence that holds its core concept has
   even polarity; a span negates it when every clause of
   the span holding a core term has odd polarity. Double negations ("Do not act without explicit
   confirmation") keep the rule stated. Restrictive rules ("cannot be changed") already need a
   negation concept, so "Basic economy reservations can be changed" does not state them either.

Paraphrases that keep the rule's concepts under other words ("Reservations in basic economy are not
modifiable") are detected; unrelated text, the other domain's policy, garbled versions of the
sentence (content words scrambled, as :func:`tau_envs.generate.degrade_policy` does) and negations
of a positive rule are not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from diffprompt.spans import segment
from tau_envs.rules import LIMIT, NEG, ONLY, Rule

DEFAULT_THRESHOLD = 0.8
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CLAUSE = re.compile(r"[;:.!?]+(?:\s|$)")
_CUES = frozenset((
    "not", "never", "no", "cannot", "nor", "neither", "without", "unless", "none", "nothing", "skip", "skipping",
    "avoid", "optional", "unnecessary", "needless", "waive", "prohibit", "prohibited", "forbid", "forbidden",
    "disallow", "disallowed", "unable", "ineligible", "non",
))
_AFTER_CUE = frozenset(("until", "before"))
_LIMITS = re.compile(r"\b(?:no|not) (?:more|fewer|less|later|earlier|greater) than\b")
_FREE = re.compile(r"\b(?:at |for )?no (?:extra |additional )?(?:charge|cost|fee)\b")
_GROUPS = frozenset((*NEG, *LIMIT, *ONLY))
_RESTRICT = frozenset((*NEG, *LIMIT)) - {"only"}


def tokens(text: str) -> tuple[str, ...]:
    """Normalised word tokens of a text (see the module docstring, step 2)."""
    t = text.lower().replace("’", "'").replace("n't", " not")
    t = _FREE.sub("free of charge", _LIMITS.sub("at most", t))  # their "no" negates nothing
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


def clauses(text: str) -> tuple[tuple[str, ...], ...]:
    """The tokens of each clause of ``text``, cut at ``; : . ! ?``.

    "no more than" and "at no charge" are rewritten by :func:`tokens`, so their "no" is not a cue.
    """
    return tuple(t for part in _CLAUSE.split(text) if (t := tokens(part)))


def polarity(toks: Sequence[str], core: Sequence[str] = ()) -> int:
    """1 when a clause's negation cues are odd in number (the clause negates), else 0.

    ``until`` / ``before`` count only between an earlier cue and the first ``core`` term ("do not act
    until the user confirms"), not after it ("never ask for confirmation before acting").
    """
    n, seen, reached = 0, False, False
    for t in toks:
        reached = reached or any(_word_match(term, t) for term in core if " " not in term)
        if t in _CUES:
            n, seen = n + 1, True
        elif t in _AFTER_CUE and seen and not reached:
            n += 1
    return n % 2


@lru_cache(maxsize=512)
def core_concept(rule: Rule) -> tuple[str, ...] | None:
    """The concept whose negation turns the rule around (see the module docstring), or None."""
    for concept in rule.concepts:
        if not set(concept) & _GROUPS and not any(any(ch.isdigit() for ch in term) for term in concept):
            return concept
    return None


@lru_cache(maxsize=512)
def _positive(rule: Rule) -> bool:
    core = core_concept(rule)
    if core is None or any(set(c) & _RESTRICT for c in rule.concepts):
        return False  # limits and prohibitions are stated with negations ("no booking has more than 5")
    held = [c for c in clauses(rule.text) if any(_term_in(term, c) for term in core)]
    return bool(held) and polarity(held[0], core) == 0


def negates(rule: Rule, text: str) -> bool:
    """The span ``text`` negates the positive ``rule``: every clause holding its core concept negates."""
    if not _positive(rule):
        return False
    core = core_concept(rule) or ()
    held = [c for c in clauses(text) if any(_term_in(term, c) for term in core)]
    return bool(held) and all(polarity(c, core) == 1 for c in held)


def statement_score(rule: Rule, text: str, toks: Sequence[str] | None = None) -> float:
    """The span's coverage of ``rule``, 0 when the span negates the rule."""
    score = span_score(rule, tokens(text) if toks is None else toks)
    return 0.0 if score and negates(rule, text) else score


@lru_cache(maxsize=256)
def _span_tokens(prompt: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((s.text, tokens(s.text)) for s in segment(prompt))


def best_span(rule: Rule, prompt: str) -> tuple[float, str]:
    """The rule's coverage in ``prompt`` and the text of the best-matching span ('' when none)."""
    best, text = 0.0, ""
    for span_text, toks in _span_tokens(prompt):
        s = statement_score(rule, span_text, toks)
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
