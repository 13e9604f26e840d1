"""Candidate validation before screening: cheap checks that cost no replay episode.

``validate_candidate`` cleans a raw candidate (drops insertion copies the editor left unfilled) and
checks, in order: empty, unchanged, duplicate of an earlier candidate, a removed or changed protected
span, length growth over the gate's limit, **malformed new spans** (``malformed_reason``), and a text
already rejected for that span. An invalid candidate carries its status and one reason; the round
counts them and records them, it never screens them.

A new span is malformed when it is cut off (ends on a function word, or lacks the closing punctuation
that the prompt's other spans of its kind have: "...booked within the last"), when it duplicates
another span of the candidate, or when it repeats itself ("the the", a four-word run written twice).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.record import CandidateRecord
from diffprompt.spans import changed_span_ids, diff_spans, normalize_text, render_diff, replace_spans, segment
from diffprompt.types import Candidate, PromptVersion, Span

CandidateStatus = str  # invalid | malformed | unchanged | duplicate | repeat | valid | screened | screen_lost

_WORD = re.compile(r"[A-Za-z0-9']+")
_END = re.compile(r"[.!?:;)\]\"'`»”’]\s*$")
# A sentence or rule does not end on these (a cut-off fill does: "...within the", "...and").
_DANGLING_WORDS = (
    "a an the and or but nor if of to in on at by for with within from into onto than that which who whose "
    "whom is are was were be been being has have had do does not no as so such their its your our my "
    "this these those any each every some can could should would will may must shall"
)
_DANGLING = frozenset(_DANGLING_WORDS.split())


@dataclass(frozen=True, kw_only=True, slots=True)
class ScreenedCandidate:
    """A candidate with its validation and screening outcome."""

    candidate: Candidate
    valid: bool
    status: CandidateStatus
    reason: str = ""
    screen_score: float | None = None
    accepted: bool = False
    new_texts: Mapping[str, str] = field(default_factory=dict)  # masked/changed span id -> new text
    iteration: int | None = None

    def as_record(self, incumbent: PromptVersion) -> CandidateRecord:
        c = self.candidate
        return CandidateRecord(
            editor=c.editor,
            seed=c.seed,
            status=self.status,
            reason=self.reason,
            screen_score=self.screen_score,
            accepted=self.accepted,
            text=c.text,
            masked_span_ids=tuple(c.masked_span_ids),
            changed_span_ids=tuple(c.changed_span_ids),
            new_texts=dict(self.new_texts),
            diff=render_diff(incumbent.spans, segment(c.text)),
            iteration=self.iteration,
        )


def _ends_cleanly(text: str) -> bool:
    return bool(_END.search(text))


def _house_style(spans: Sequence[Span]) -> dict[str, bool]:
    """Per span kind: do (nearly) all of the prompt's spans of that kind end with punctuation?"""
    out: dict[str, bool] = {}
    for kind in ("bullet", "sentence", "block"):
        same = [s for s in spans if s.kind == kind]
        out[kind] = bool(same) and sum(_ends_cleanly(s.text) for s in same) >= 0.8 * len(same)
    return out


def malformed_reason(new: Span, others: Sequence[Span], style: Mapping[str, bool]) -> str:
    """Why ``new`` (a span the editor wrote) is not well-formed, or ``""`` when it is.

    ``others`` are the candidate's other spans; ``style`` says per kind whether the prompt's spans end
    with punctuation (``_house_style`` of the prompt the editor was given).
    """
    body = normalize_text(new.text)
    words = _WORD.findall(body)
    if new.kind == "heading" or not words:
        return ""
    short = new.text.strip()[:60]
    if words[-1] in _DANGLING and not _ends_cleanly(new.text):
        return f"new span is cut off after {words[-1]!r}: {short!r}"
    if style.get(new.kind) and not _ends_cleanly(new.text):
        return f"new span is cut off (no closing punctuation): {short!r}"
    for a, b in itertools.pairwise(words):
        if a == b and not a.isdigit():
            return f"new span repeats the word {a!r}: {short!r}"
    grams = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    dup = next((g for i, g in enumerate(grams) if g in grams[i + 4 :]), None)
    if dup is not None:
        return f"new span repeats {dup!r}: {short!r}"
    if any(normalize_text(o.text) == body for o in others):
        return f"new span duplicates another span of the prompt: {short!r}"
    return ""


# phrases of the editors' own meta-prompts (templates/optimize_*.j2): a candidate containing one
# is the model repeating its instruction, not a system prompt
_INSTRUCTION_ECHOES = (
    "rewrite the system prompt below",
    "answer with the new system prompt only",
    "you are a critic.",
    "[mask_",
    "answer with one json object only",
    "## critique",
)


def _echoed_instruction(text: str) -> str:
    low = " ".join(text.lower().split())
    return next((p for p in _INSTRUCTION_ECHOES if p in low), "")


def validate_candidate(
    raw: Candidate,
    *,
    incumbent: PromptVersion,
    parent: PromptVersion,
    base: PromptVersion,
    placeholders: Mapping[str, str],
    protected: Sequence[str],
    rejected: Mapping[str, Sequence[str]],
    config: OptimizeConfig,
    seen: Sequence[ScreenedCandidate] = (),
    iteration: int | None = None,
) -> ScreenedCandidate:
    """Clean up (drop unfilled insertion copies) and check one candidate; invalid ones carry a reason."""
    new_texts = {
        c.old.id: c.new.text
        for c in diff_spans(base.spans, segment(raw.text))
        if c.kind == "changed" and c.old is not None and c.new is not None
    }
    text = raw.text
    leftover = {s.id: "" for s in segment(text) if s.id in placeholders}
    if leftover:
        text = replace_spans(text, segment(text), leftover)
    cand = replace(raw, text=text, parent_id=incumbent.id, changed_span_ids=changed_span_ids(incumbent.text, text))

    def bad(status: CandidateStatus, reason: str) -> ScreenedCandidate:
        return ScreenedCandidate(
            candidate=cand, valid=False, status=status, reason=reason, new_texts=new_texts, iteration=iteration
        )

    if not text.strip():
        return bad("invalid", "the candidate is empty")
    if text == parent.text or text == incumbent.text:
        return bad("unchanged", "the editor returned the prompt unchanged")
    if any(b.candidate.text == text for b in seen):
        return bad("duplicate", "same text as an earlier candidate")
    spans = segment(text)
    ids = {s.id for s in spans}
    by_id = {s.id: s for s in incumbent.spans}
    for pid in protected:
        if pid in by_id and pid not in ids:
            return bad("invalid", f"removes or changes protected span {pid} ({by_id[pid].text[:60]!r})")
    if len(incumbent.text) >= 200 and len(text) < 0.2 * len(incumbent.text):
        # a rewrite that throws away most of the prompt is a broken reply, not an edit
        return bad("invalid", f"shrinks the prompt by {1 - len(text) / len(incumbent.text):.0%} (a truncated rewrite)")
    echo = _echoed_instruction(text)
    if echo:
        return bad("invalid", f"echoes the editor's instruction ({echo!r}) instead of writing a prompt")
    limit = config.gate.max_length_growth
    if limit is not None and len(text) > len(incumbent.text) * (1 + limit):
        return bad("invalid", f"grows the prompt by {len(text) / len(incumbent.text) - 1:.0%} (limit {limit:.0%})")
    style = _house_style(base.spans)
    known = {s.id for s in base.spans} | {s.id for s in incumbent.spans}
    for s in spans:
        if s.id in known:
            continue
        why = malformed_reason(s, [o for o in spans if o is not s], style)
        if why:
            return bad("malformed", why)
    for sid, new in new_texts.items():
        if normalize_text(new) in {normalize_text(t) for t in rejected.get(sid, ())}:
            return bad("repeat", f"proposes a text already rejected for span {sid}")
    return ScreenedCandidate(candidate=cand, valid=True, status="valid", new_texts=new_texts, iteration=iteration)
