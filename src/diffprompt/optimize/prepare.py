"""Pure helpers of the round between attribution and replay.

They split the replay cases (screening minibatch, held-out set, and what the blamer and the editor
may read), open insertion slots and build the editor's conditioning. Candidate checks are in
``optimize.validate``, the round's strategies in ``optimize.strategies``.

Insertion slots: when failures point at a rule that is *missing*, attribution blames the closest
editable span with ``insert=True``. Overwriting that span would delete a rule that is fine, so the
round inserts a copy of it right after it and masks only the copy: the editor writes a new span next
to the anchor. A copy that comes back unchanged is removed again.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.gate import fewest_wins
from diffprompt.optimize.replay import Case
from diffprompt.spans import (
    diff_spans,
    segment,
)
from diffprompt.types import Feedback, PromptVersion, Span, TraceWithFeedback

MIN_READ = 2  # readable failures a power-floored split keeps for the blamer and the editor


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


def stable_order(window: Sequence[TraceWithFeedback]) -> list[TraceWithFeedback]:
    """The window in an order that does not depend on when each episode happened to finish.

    Live traffic is recorded concurrently, so the store's time order differs from run to run; every
    seeded choice of the round (the case split, the traces the editor sees) starts from this order
    instead: by replay key, then by the episode's content (messages and feedback values).
    """

    def content(t: TraceWithFeedback) -> str:
        blob = json.dumps(
            [list(t.trace.messages), [(f.kind, f.value, f.text) for f in t.feedback]], sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    return sorted(window, key=lambda t: (t.trace.replay_key or "", content(t), t.trace.id))


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseSplit:
    """The round's replay cases: a screening minibatch and the gate's held-out set, disjoint.

    ``held_keys`` are the replay keys (and trace ids) of the held-out cases: no trace carrying one
    may reach the blamer or the editor (``readable``).
    """

    screen: tuple[Case, ...]
    holdout: tuple[Case, ...]
    held_keys: frozenset[str]

    def readable(self, traces: Sequence[TraceWithFeedback]) -> list[TraceWithFeedback]:
        """The traces the blamer and the editor may read: none of a held-out replay key."""
        return [
            t for t in traces if t.trace.id not in self.held_keys and (t.trace.replay_key or "") not in self.held_keys
        ]


def _tools_called(trace: TraceWithFeedback) -> set[str]:
    names = set()
    for m in trace.trace.messages:
        for call in m.get("tool_calls") or ():
            if not isinstance(call, Mapping):
                continue
            fn = call.get("function")
            name = (fn.get("name") if isinstance(fn, Mapping) else None) or call.get("name")
            if name:
                names.add(str(name))
    return names


def interleave_modes(fails: Sequence[Case], window: Sequence[TraceWithFeedback]) -> list[Case]:
    """``fails`` reordered round-robin over their failure modes (first members of every mode first).

    A failure's mode is its case's slice and the tools its episode called that at most half of the
    failing episodes call (the distinctive ones: a cancel, a certificate, a bag change; not the
    lookups every episode makes). Order within a mode, and of the modes, is the order of ``fails``.
    """
    by_id = {t.trace.id: t for t in window}
    called = {c.id: _tools_called(by_id[c.trace_id]) if c.trace_id in by_id else set() for c in fails}
    counts = Counter(name for names in called.values() for name in names)
    common = {name for name, k in counts.items() if k > len(fails) / 2}
    modes: dict[tuple[str, frozenset[str]], list[Case]] = {}
    for c in fails:
        modes.setdefault((c.slice, frozenset(called[c.id] - common)), []).append(c)
    groups = list(modes.values())
    return [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]


def split_cases(
    cases: Sequence[Case], window: Sequence[TraceWithFeedback], config: OptimizeConfig, rng: random.Random
) -> CaseSplit:
    """Seeded (screening minibatch, held-out set) split of the window's replay cases.

    Failing cases are shuffled and split: ``config.read_share`` of them stay readable — the blamer
    and the editor learn from them and the screening minibatch draws on them — and the rest are held
    out for the gate. Two floors move that share:

    * the gate's power: a gain is significant only with at least ``fewest_wins(alpha)`` held-out
      fixes (5 at α = 0.05 with binary rewards), so when the share would hold out fewer failures
      than that, more are held out as long as ``MIN_READ`` stay readable (7 failures: 2 read, 5
      held, where half would leave 3 — a round that could not promote any prompt);
    * the gate needs a failure to see a fix: with two or more failures at least one is held out.

    The readable failures are spread over the window's failure modes (``interleave_modes``): each
    mode gets a readable failure before any gets a second, so a mode is rarely held out whole —
    nothing could learn it, and its held-out failures would count against every candidate.

    The minibatch holds every readable failure up to half of ``config.screen_cases`` (so a fix of
    a readable failure is seen) and successes for the rest (a random minibatch of a mostly passing
    window often holds no failure). ``config.success_read_share`` of the successes (at least the
    minibatch's) stay readable too, so the judge compares what went wrong with enough of what went
    right; every other success is held out, up to ``holdout_cases`` in all.
    """
    reward = {t.trace.id: t.reward for t in window}
    fails = [
        c
        for c in cases
        if c.trace_id is not None and reward.get(c.trace_id) is not None and (reward.get(c.trace_id) or 0.0) < 1.0
    ]
    fail_ids = {c.id for c in fails}
    wins = [c for c in cases if c.id not in fail_ids]
    rng.shuffle(fails)
    rng.shuffle(wins)
    fails = interleave_modes(fails, window)
    n_read = min(len(fails), max(1, math.ceil(len(fails) * config.read_share))) if fails else 0
    need = fewest_wins(config.gate.alpha / config.finalists)
    if len(fails) - n_read < need <= len(fails) - MIN_READ:
        n_read = len(fails) - need
    if len(fails) >= 2:
        n_read = min(n_read, len(fails) - 1)
    n = min(config.screen_cases, max(1, len(cases) // 4))
    n_fail = min(n_read, (n + 1) // 2)
    n_ok = min(len(wins), max(n - n_fail, math.floor(len(wins) * config.success_read_share)))
    screen = fails[:n_fail] + wins[: n - n_fail]
    held = fails[n_read:] + wins[n_ok:]
    rng.shuffle(held)
    held = held[: config.holdout_cases]
    keys = {k for c in held for k in (c.replay_key or c.id, c.trace_id) if k}
    return CaseSplit(screen=tuple(screen), holdout=tuple(held), held_keys=frozenset(keys))


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


def feedback_summary(t: TraceWithFeedback) -> str:
    """What people and environments said about one trace, in one line: rewards, ratings, comments.

    E.g. ``"user rating 0 (thumbs down); user comment: you refunded without checking"``.
    """
    parts: list[str] = []
    for f in t.feedback:
        if f.kind == "rating" and f.value is not None:
            parts.append(f"user rating {f.value:g}" + (" (thumbs down)" if f.value <= 0 else ""))
        elif f.kind == "reward" and f.value is not None:
            parts.append(f"environment reward {f.value:g}")
        elif f.kind == "judge" and f.value is not None:
            parts.append(f"judge score {f.value:g}")
        if f.text:
            parts.append(f"{'user comment' if f.source == 'user' or f.kind == 'comment' else f.kind}: {f.text}")
    return "; ".join(dict.fromkeys(parts))


def feedback_history(fails: Sequence[TraceWithFeedback], ranking: Sequence[SpanScore], k: int) -> tuple[str, ...]:
    """Recent feedback for every editor's conditioning: blame reasons first, then failing traces'.

    Newest first; a rated trace contributes its whole ``feedback_summary`` (rating, reward, comments),
    others their comments. Editors' model calls and the DLM layout redact it before it leaves.
    """
    lines: list[str] = []
    for s in ranking:
        for e in s.evidence:
            if e.get("source") == "blame" and e.get("reason"):
                hint = f" (should state: {e['hint']})" if e.get("hint") else ""
                lines.append(f"{e['reason']}{hint}")
    for t in reversed(fails):
        if any(f.kind == "rating" for f in t.feedback):
            lines.append(feedback_summary(t))
        else:
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
