"""Pure helpers of the round between attribution and replay.

They choose spans, open insertion slots, build the editor's conditioning, and validate candidates
(protected spans, rejected-edit memory, length).

Insertion slots: when failures point at a rule that is *missing*, attribution blames the closest
editable span with ``insert=True``. Overwriting that span would delete a rule that is fine, so the
round inserts a copy of it right after it and masks only the copy: the editor writes a new span next
to the anchor. A copy that comes back unchanged is removed again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.replay import Case
from diffprompt.spans import (
    changed_span_ids,
    diff_spans,
    normalize_text,
    render_diff,
    replace_spans,
    segment,
)
from diffprompt.types import Candidate, Feedback, PromptVersion, Span, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class ScreenedCandidate:
    """A candidate with its validation and screening outcome."""

    candidate: Candidate
    valid: bool
    status: str  # invalid | unchanged | duplicate | repeat | valid | screened | screen_lost
    reason: str = ""
    screen_score: float | None = None
    accepted: bool = False
    new_texts: Mapping[str, str] = field(default_factory=dict)  # masked/changed span id -> new text

    def as_record(self, incumbent: PromptVersion) -> dict[str, Any]:
        c = self.candidate
        return {
            "editor": c.editor,
            "seed": c.seed,
            "status": self.status,
            "reason": self.reason,
            "screen_score": self.screen_score,
            "accepted": self.accepted,
            "text": c.text,
            "masked_span_ids": list(c.masked_span_ids),
            "changed_span_ids": list(c.changed_span_ids),
            "new_texts": dict(self.new_texts),
            "diff": render_diff(incumbent.spans, segment(c.text)),
        }


def span_changes(old: Sequence[Span], new: Sequence[Span]) -> list[dict[str, Any]]:
    """The non-trivial rows of a span diff as JSON (kind, old id/text, new id/text)."""
    return [
        {
            "kind": c.kind,
            "old_id": c.old.id if c.old else None,
            "old": c.old.text if c.old else None,
            "new_id": c.new.id if c.new else None,
            "new": c.new.text if c.new else None,
        }
        for c in diff_spans(old, new)
        if c.kind != "unchanged"
    ]


def split_cases(
    cases: Sequence[Case], window: Sequence[TraceWithFeedback], config: OptimizeConfig, rng: random.Random
) -> tuple[list[Case], list[Case]]:
    """(screening minibatch, held-out set), disjoint and seeded.

    The minibatch is half recorded failures, half successes (a random minibatch of a mostly passing
    window often holds no failure at all, so it could not tell candidates apart); every other case,
    failures included, is held out for the gate, up to ``holdout_cases``.
    """
    reward = {t.trace.id: t.reward for t in window}
    fails = [
        c
        for c in cases
        if c.trace_id is not None and (reward.get(c.trace_id) or 0.0) < 1.0 and reward.get(c.trace_id) is not None
    ]
    fail_ids = {c.id for c in fails}
    wins = [c for c in cases if c.id not in fail_ids]
    rng.shuffle(fails)
    rng.shuffle(wins)
    n = min(config.screen_cases, max(1, len(cases) // 4))
    n_fail = min(len(fails) // 2, (n + 1) // 2)  # keep at least half of the failures for the gate
    screen = fails[:n_fail] + wins[: n - n_fail]
    held = fails[n_fail:] + wins[n - n_fail :]
    rng.shuffle(held)
    return screen, held[: config.holdout_cases]


def choose_spans(
    ranking: Sequence[SpanScore],
    parent: PromptVersion,
    budget: int,
    dropout: float,
    rng: random.Random,
    *,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[SpanScore]:
    """Top ``budget`` ranked spans still present in ``parent``, with DLPO span dropout.

    Each span but the first is skipped with probability ``dropout``.
    """
    present = {s.id for s in parent.spans}
    pool = [s for s in ranking if s.span_id in present and s.span_id not in exclude]
    out: list[SpanScore] = []
    for s in pool:
        if len(out) >= budget:
            break
        if out and dropout > 0 and rng.random() < dropout:
            continue
        out.append(s)
    return out


def insert_placeholders(
    parent: PromptVersion, chosen: Sequence[SpanScore]
) -> tuple[PromptVersion, list[str], dict[str, str]]:
    """The version to edit, the span ids to mask, and ``{placeholder id: anchor id}``.

    Spans chosen with ``insert=True`` get a copy inserted after them; the copy is masked instead.
    """
    by_id = {s.id: s for s in parent.spans}
    inserts = sorted((by_id[c.span_id] for c in chosen if c.insert), key=lambda s: s.start)
    if not inserts:
        return parent, [c.span_id for c in chosen], {}
    text, shift, starts = parent.text, 0, {}
    for s in inserts:
        sep = "\n" if s.kind == "bullet" or "\n" in parent.text[s.end : s.end + 2] else " "
        if s.kind == "bullet":
            line_start = parent.text.rfind("\n", 0, s.start) + 1
            sep += parent.text[line_start : s.start]  # keep the bullet's indentation
        at = s.end + shift
        text = text[:at] + sep + s.text + text[at:]
        starts[at + len(sep)] = s.id
        shift += len(sep) + len(s.text)
    spans = segment(text)
    placeholders = {sp.id: starts[sp.start] for sp in spans if sp.start in starts}
    base = replace(parent, text=text, spans=spans)
    anchor_of = {v: k for k, v in placeholders.items()}
    mask_ids = [anchor_of.get(c.span_id, c.span_id) if c.insert else c.span_id for c in chosen]
    return base, [m for m in mask_ids if m in {s.id for s in spans}], placeholders


def feedback_history(fails: Sequence[TraceWithFeedback], ranking: Sequence[SpanScore], k: int) -> tuple[str, ...]:
    """Recent feedback for the conditioning: blame reasons first, then comments, newest first."""
    lines: list[str] = []
    for s in ranking:
        for e in s.evidence:
            if e.get("source") == "blame" and e.get("reason"):
                hint = f" (should state: {e['hint']})" if e.get("hint") else ""
                lines.append(f"{e['reason']}{hint}")
    for t in reversed(fails):
        lines.extend(t.comments)
    return tuple(dict.fromkeys(lines))[:k]


def augment_traces(traces: Sequence[TraceWithFeedback], ranking: Sequence[SpanScore]) -> list[TraceWithFeedback]:
    """Attach each trace's blame reasons as ``comment`` feedback (so every editor is conditioned on them)."""
    notes: dict[str, list[str]] = {}
    for s in ranking:
        for e in s.evidence:
            if e.get("source") == "blame" and e.get("trace_id"):
                hint = f" The prompt should state: {e['hint']}" if e.get("hint") else ""
                notes.setdefault(e["trace_id"], []).append(f"{e.get('reason', '')}.{hint}".strip())
    out = []
    for t in traces:
        extra = tuple(
            Feedback(
                trace_id=t.trace.id,
                kind="comment",
                value=None,
                text=n,
                source="judge",
                created_at=t.trace.ended_at,
            )
            for n in dict.fromkeys(notes.get(t.trace.id, ()))
        )
        out.append(replace(t, feedback=t.feedback + extra) if extra else t)
    return out


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

    def bad(status: str, reason: str = "") -> ScreenedCandidate:
        return ScreenedCandidate(candidate=cand, valid=False, status=status, reason=reason, new_texts=new_texts)

    if not text.strip():
        return bad("invalid", "the candidate is empty")
    if text == parent.text or text == incumbent.text:
        return bad("unchanged", "the editor returned the prompt unchanged")
    if any(b.candidate.text == text for b in seen):
        return bad("duplicate", "same text as an earlier candidate")
    ids = {s.id for s in segment(text)}
    by_id = {s.id: s for s in incumbent.spans}
    for pid in protected:
        if pid in by_id and pid not in ids:
            return bad("invalid", f"removes or changes protected span {pid} ({by_id[pid].text[:60]!r})")
    limit = config.gate.max_length_growth
    if limit is not None and len(text) > len(incumbent.text) * (1 + limit):
        return bad("invalid", f"grows the prompt by {len(text) / len(incumbent.text) - 1:.0%} (limit {limit:.0%})")
    for sid, new in new_texts.items():
        if normalize_text(new) in {normalize_text(t) for t in rejected.get(sid, ())}:
            return bad("repeat", f"proposes a text already rejected for span {sid}")
    return ScreenedCandidate(candidate=cand, valid=True, status="valid", new_texts=new_texts)
