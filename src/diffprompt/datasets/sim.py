"""``--model sim`` for dataset envs: a deterministic lexical classifier behind ``CompletionClient``.

An offline stand-in for a frozen target model, labelled as simulated wherever it is used. It never
sees gold labels. It decides from the user message alone with crude lexical features (a small
sentiment lexicon; word overlap and negation for sentence pairs), and it follows the system prompt
only as far as the prompt tells it the answer format: it answers with a bare label only when the
system prompt names every label of the set; when the prompt names some, it picks among those; when
it names none it answers in prose that names no label (unparseable). So the prompt's wording of the
answer format changes its score, and an editor can earn a gain by stating it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from diffprompt.llm import CallMeter, Completion
from diffprompt.types import Usage

_POS = frozenset(
    [
        "good",
        "great",
        "fine",
        "best",
        "love",
        "loved",
        "lovely",
        "wonderful",
        "excellent",
        "brilliant",
        "beautiful",
        "fun",
        "funny",
        "moving",
        "charming",
        "delightful",
        "enjoyable",
        "engaging",
        "touching",
        "powerful",
        "remarkable",
        "superb",
        "smart",
        "witty",
        "fresh",
        "entertaining",
        "impressive",
        "gorgeous",
        "masterpiece",
        "hilarious",
        "heartfelt",
        "compelling",
        "solid",
    ]
)
_NEG = frozenset(
    [
        "bad",
        "worst",
        "boring",
        "dull",
        "awful",
        "terrible",
        "poor",
        "mess",
        "stupid",
        "flat",
        "tedious",
        "lame",
        "ugly",
        "waste",
        "fails",
        "failed",
        "predictable",
        "pointless",
        "unfunny",
        "bland",
        "tiresome",
        "annoying",
        "dumb",
        "weak",
        "mediocre",
        "disappointing",
        "incoherent",
        "painful",
        "lifeless",
        "hollow",
    ]
)
_NEGATORS = frozenset(["not", "no", "never", "nobody", "nothing", "none", "n't", "isn't", "doesn't"])
_WORD = re.compile(r"[a-z']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _field(user: str, *names: str) -> str:
    for name in names:
        m = re.search(rf"^{name}:\s*(.*)$", user, re.M | re.I)
        if m:
            return m.group(1)
    return user


class SimClassifier:
    """Deterministic lexical target model for a dataset of ``kind`` with ``labels`` (see module doc)."""

    model = "sim"

    def __init__(self, labels: Sequence[str], kind: str, *, meter: CallMeter | None = None) -> None:
        self.labels, self.kind, self.meter = tuple(labels), kind, meter

    def with_seed(self, seed: int | None) -> SimClassifier:
        return self  # greedy and seed-independent

    def _decide(self, user: str, allowed: Sequence[str]) -> str:
        if self.kind in ("sentiment2", "sentiment5"):
            ws = _words(_field(user, "review", "text"))
            score = sum(w in _POS for w in ws) - sum(w in _NEG for w in ws)
            if self.kind == "sentiment2":
                want = "positive" if score >= 0 else "negative"
            else:
                want = ("very negative", "negative", "neutral", "positive", "very positive")[
                    0 if score <= -2 else 1 if score == -1 else 2 if score == 0 else 3 if score == 1 else 4
                ]
        elif self.kind in ("paraphrase", "nli"):
            a = set(_words(_field(user, "sentence 1", "premise", "text a")))
            b = set(_words(_field(user, "sentence 2", "hypothesis", "text b")))
            overlap = len(a & b) / max(1, len(b))
            if self.kind == "paraphrase":
                want = "equivalent" if len(a & b) / max(1, len(a | b)) >= 0.5 else "not_equivalent"
            elif bool(a & _NEGATORS) != bool(b & _NEGATORS):
                want = "contradiction"
            else:
                want = "entailment" if overlap >= 0.75 else "neutral"
        else:
            h = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
            want = self.labels[h % len(self.labels)]
        if want in allowed:
            return want
        return allowed[int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % len(allowed)]

    def complete(
        self, messages: Sequence[Mapping[str, Any]], *, temperature: float = 0.0, max_tokens: int | None = None
    ) -> Completion:
        if self.meter is not None:
            self.meter.check()
        system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "system").lower()
        user = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        sys_norm = " " + " ".join(_words(system.replace("_", " "))) + " "
        named = [lb for lb in self.labels if f" {' '.join(_words(lb.replace('_', ' ')))} " in sys_norm]
        if not named:
            text = "Hard to say; it could go either way."
        else:
            text = self._decide(user, named)
            if len(named) < len(self.labels):
                text = f"I would say {text}"
        n_in = sum(len(str(m.get("content") or "").split()) for m in messages)
        n_out = len(text.split())
        usage = self.meter.record("sim", n_in, n_out) if self.meter else Usage(input_tokens=n_in, output_tokens=n_out)
        return Completion(text=text, usage=usage, model="sim", finish_reason="stop")
