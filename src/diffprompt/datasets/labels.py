"""A model's reply → one label of the set, or None (unparseable; scored wrong and counted).

The rules, tried in order (the first that decides wins):

1. **exact**: the stripped reply equals a label.
2. **normalised**: after normalisation the reply equals a label's normal form. Normalisation:
   lower case; ``_`` and ``-`` become spaces; punctuation and quotes are dropped; whitespace is
   collapsed; a leading cue (``answer:``, ``label:``, ``sentiment:``, ``the answer is``, ...) and a
   trailing full stop are removed.
3. **cue**: a line of the form ``<cue>: X`` (``Answer: X``, ``Label = X``, ``Sentiment - X``; cues:
   answer, label, prediction, sentiment, relation, relationship, output, classification, category,
   final answer) whose X, normalised, starts with exactly one label.
4. **inside**: the label phrases that occur in the normalised reply as whole words. A label found
   only inside a longer label's occurrence does not count (``negative`` inside ``very negative``,
   ``equivalent`` inside ``not equivalent``). Exactly one distinct label → it; none or several
   different labels (``positive or negative``) → unparseable.

``parse_label`` returns ``(label or None, rule)`` where rule is one of exact, normalised, cue,
inside, none, ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

ParseRule = Literal["exact", "normalised", "cue", "inside", "none", "ambiguous"]

_CUES = (
    "final answer",
    "answer",
    "label",
    "prediction",
    "predicted label",
    "sentiment",
    "relation",
    "relationship",
    "output",
    "classification",
    "category",
)
_LEAD = re.compile(r"^(?:the\s+)?(?:" + "|".join(_CUES) + r")(?:\s+is)?\s*[:=\-]?\s+", re.I)
_CUE_LINE = re.compile(r"(?:^|\b)(?:" + "|".join(_CUES) + r")\s*(?:is\s*)?[:=\-]\s*(.+)", re.I)


def normalise(text: str) -> str:
    """The normal form used by rules 2–4 (see the module docstring)."""
    t = text.lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"[^\w\s]", " ", t)
    return " ".join(t.split())


def _strip_lead(norm: str) -> str:
    prev = None
    while prev != norm:
        prev, norm = norm, _LEAD.sub("", norm + " ").strip()
    return norm


def _inside(norm: str, labels: Sequence[str], forms: dict[str, str]) -> list[str]:
    padded = f" {norm} "
    hits: list[tuple[int, int, str]] = []
    for lb in labels:
        f = forms[lb]
        for m in re.finditer(rf"(?<= ){re.escape(f)}(?= )", padded):
            hits.append((m.start(), m.end(), lb))
    kept = [
        h for h in hits
        if not any(o is not h and o[0] <= h[0] and h[1] <= o[1] and (o[1] - o[0]) > (h[1] - h[0]) for o in hits)
    ]
    return list(dict.fromkeys(lb for _, _, lb in sorted(kept)))


def parse_label(reply: str, labels: Sequence[str]) -> tuple[str | None, ParseRule]:
    """Map ``reply`` to one of ``labels`` by the documented rules; ``(None, rule)`` if it cannot."""
    text = reply.strip()
    if text in labels:
        return text, "exact"
    forms = {lb: normalise(lb) for lb in labels}
    by_form = {f: lb for lb, f in forms.items()}
    norm = normalise(text)
    if norm in by_form:
        return by_form[norm], "normalised"
    lead = _strip_lead(norm)
    if lead in by_form:
        return by_form[lead], "normalised"
    for line in text.splitlines():
        m = _CUE_LINE.search(line)
        if m:
            value = _strip_lead(normalise(m.group(1)))
            starts = [lb for lb, f in forms.items() if value == f or value.startswith(f + " ")]
            longest = max(starts, key=lambda lb: len(forms[lb]), default=None)
            if longest is not None:
                return longest, "cue"
    found = _inside(norm, labels, forms)
    if len(found) == 1:
        return found[0], "inside"
    return None, "ambiguous" if found else "none"
