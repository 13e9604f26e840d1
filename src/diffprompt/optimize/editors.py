"""Baseline editors behind the shared ``Editor`` seam: AR infilling and TextGrad-style rewriting.

Every editor has ``propose(prompt, span_ids, traces, n, seed) -> list[Candidate]`` (the seam the
DLM editor in ``diffprompt.dlm.editor`` satisfies). Editors here also accept ``context=EditContext``
(``takes_context = True``): the round's recent feedback history, the concrete rule hints named by
attribution, the per-span memory of rejected texts, the best/worst past versions and a length cap.

* ``ARInfillEditor`` — an autoregressive model fills the *same* masked spans as the DLM (the
  paper's AR baseline). The filling strategy is a ``Filler``: ``LLMFiller`` (any ``CompletionClient``
  via ``optimize_ar_infill.j2``) or ``HintFiller`` (offline, deterministic: fills each mask with the
  attribution hint that best fits its neighbourhood).
* ``RewriteEditor`` — TextGrad-style: a ``Critic`` turns failures into textual feedback, a ``Writer``
  rewrites the whole prompt from it. ``LLMCritic``/``LLMWriter`` use a model through templates;
  ``HintCritic``/``HintWriter`` are the offline fallback (feedback = attribution hints; rewrite =
  replace the span most similar to each hint, or insert the hint next to it).

The offline fallbacks use only what attribution produced, i.e. the same evidence the DLM editor
is conditioned on; they are honest stand-ins for a chat model, not the target model's own knowledge.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from diffprompt.optimize.attribution import closest_span, tfidf_similarity
from diffprompt.optimize.templates import render, transcript
from diffprompt.spans import (
    changed_span_ids,
    normalize_text,
    replace_spans,
    segment,
    split_marker,
    squash_whitespace,
    strip_marker,
)
from diffprompt.types import Candidate, PromptVersion, Span, SpanKind, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class EditContext:
    """What the round knows beyond the traces; editors use what they can."""

    feedback: tuple[str, ...] = ()  # recent feedback history (comments, blame reasons), newest first
    hints: tuple[str, ...] = ()  # concrete texts attribution says the prompt should state
    rejected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # span id -> rejected texts
    best: tuple[str, float] | None = None  # (text, score) of the best past version
    worst: tuple[str, float] | None = None
    insert_span_ids: tuple[str, ...] = ()  # masked spans that are new insertions
    protected_texts: tuple[str, ...] = ()
    max_chars: int | None = None


class Editor(Protocol):
    """The editor seam: proposes candidates that rewrite only ``span_ids`` of ``prompt``.

    Same arguments and seed → same candidates. Returns at most ``n`` distinct candidates (possibly
    fewer: duplicates, no-op rewrites and rejected texts are dropped). Implementations: ``DLMEditor``
    (``diffprompt.dlm.editor``), ``ARInfillEditor``, ``RewriteEditor``, ``FakeEditor``.
    """

    def propose(
        self,
        prompt: PromptVersion,
        span_ids: Sequence[str],
        traces: Sequence[TraceWithFeedback],
        n: int,
        seed: int,
    ) -> list[Candidate]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class MaskSlot:
    """One masked span as an AR filler sees it."""

    n: int
    span_id: str
    words: int
    kind: SpanKind
    insert: bool = False
    context: str = ""  # the neighbouring visible text


class Filler(Protocol):
    """Fills numbered masks; returns ``{n: text}`` (missing numbers keep the original span)."""

    def fill(
        self, masked_prompt: str, slots: Sequence[MaskSlot], context: EditContext, *, seed: int
    ) -> dict[int, str]: ...


def _feedback_lines(traces: Sequence[TraceWithFeedback], context: EditContext, limit: int = 12) -> list[str]:
    lines = list(context.feedback)
    for t in traces:
        lines.extend(c for c in t.comments if c)
    seen: set[str] = set()
    out = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out[:limit]


def _bulletise(text: str, kind: SpanKind, like: str) -> str:
    text = squash_whitespace(text)
    if kind == "bullet":
        if split_marker(text, headings=False)[0]:
            return text
        return (split_marker(like, headings=False)[0] or "- ") + text
    return strip_marker(text, headings=False)


class LLMFiller:
    """Fills masks with any ``CompletionClient`` through ``optimize_ar_infill.j2`` (JSON answer)."""

    def __init__(self, client: Any, *, temperature: float = 0.7) -> None:
        self.client = client
        self.temperature = temperature

    def fill(self, masked_prompt: str, slots: Sequence[MaskSlot], context: EditContext, *, seed: int) -> dict[int, str]:
        import json

        rejected = [t for s in slots for t in context.rejected.get(s.span_id, ())]
        text = render(
            "optimize_ar_infill.j2",
            masked_prompt=masked_prompt,
            feedback=list(context.feedback),
            rejected=rejected,
            masks=[{"n": s.n, "words": s.words, "insert": s.insert} for s in slots],
        )
        reply = self.client.complete([{"role": "user", "content": text}], temperature=self.temperature).text
        m = re.search(r"\{.*\}", reply, re.DOTALL)
        try:
            fills = json.loads(m.group(0)).get("fills", {}) if m else {}
        except (json.JSONDecodeError, AttributeError):
            fills = {}
        out: dict[int, str] = {}
        for k, v in fills.items() if isinstance(fills, dict) else ():
            if str(k).isdigit() and isinstance(v, str) and v.strip():
                out[int(k)] = v.strip()
        return out


class HintFiller:
    """Offline filler: each mask gets the unused hint most similar to its neighbourhood.

    Hints already stated by the visible prompt, or already rejected for that span, are skipped.
    ``explore`` is the chance (seeded) of taking the second-best hint, so ``n`` candidates differ.
    """

    def __init__(self, *, explore: float = 0.3) -> None:
        self.explore = explore

    def fill(self, masked_prompt: str, slots: Sequence[MaskSlot], context: EditContext, *, seed: int) -> dict[int, str]:
        rng = random.Random(seed)
        visible = [s.text for s in segment(masked_prompt) if "[MASK_" not in s.text]
        hints = [h for h in dict.fromkeys(context.hints) if h.strip()]
        if visible and hints:
            stated = tfidf_similarity(hints, visible)
            hints = [h for h, row in zip(hints, stated, strict=True) if max(row) < 0.8]
        out: dict[int, str] = {}
        used: set[str] = set()
        for slot in slots:
            banned = {normalize_text(t) for t in context.rejected.get(slot.span_id, ())}
            pool = [h for h in hints if h not in used and normalize_text(h) not in banned]
            if not pool:
                continue
            sims = tfidf_similarity([slot.context or masked_prompt], pool)[0]
            ranked = sorted(range(len(pool)), key=lambda i: -sims[i])
            pick = ranked[1] if len(ranked) > 1 and rng.random() < self.explore else ranked[0]
            used.add(pool[pick])
            out[slot.n] = pool[pick]
        return out


class ARInfillEditor:
    """Autoregressive infilling of the same masked spans the DLM editor would fill."""

    takes_context = True

    def __init__(self, filler: Filler, *, name: str = "ar") -> None:
        self.filler = filler
        self.name = name

    def propose(
        self,
        prompt: PromptVersion,
        span_ids: Sequence[str],
        traces: Sequence[TraceWithFeedback],
        n: int,
        seed: int,
        *,
        context: EditContext | None = None,
    ) -> list[Candidate]:
        ctx = context or EditContext()
        ctx = EditContext(**{**_ctx_dict(ctx), "feedback": tuple(_feedback_lines(traces, ctx))})
        by_id = {s.id: s for s in prompt.spans}
        chosen = [by_id[i] for i in span_ids if i in by_id]
        marks = {s.id: f"[MASK_{k + 1}]" for k, s in enumerate(chosen)}
        masked = replace_spans(prompt.text, prompt.spans, marks)
        idx = {s.id: i for i, s in enumerate(prompt.spans)}
        slots = []
        for k, s in enumerate(chosen):
            i = idx[s.id]
            near = " ".join(x.text for x in prompt.spans[max(0, i - 1) : i + 2] if x.id != s.id and x.id not in marks)
            slots.append(
                MaskSlot(
                    n=k + 1,
                    span_id=s.id,
                    words=len(s.text.split()),
                    kind=s.kind,
                    insert=s.id in ctx.insert_span_ids,
                    context=near,
                )
            )
        out = []
        for j in range(n):
            fills = self.filler.fill(masked, slots, ctx, seed=seed + j)
            repl = {s.id: _bulletise(fills[k + 1], s.kind, s.text) for k, s in enumerate(chosen) if k + 1 in fills}
            text = replace_spans(prompt.text, prompt.spans, repl) if repl else prompt.text
            out.append(
                Candidate(
                    text=text,
                    parent_id=prompt.id,
                    masked_span_ids=tuple(s.id for s in chosen),
                    editor=self.name,
                    seed=seed + j,
                    changed_span_ids=changed_span_ids(prompt.text, text),
                    metadata={"fills": {s.id: repl.get(s.id) for s in chosen}},
                )
            )
        return out


def _ctx_dict(ctx: EditContext) -> dict[str, Any]:
    return {f: getattr(ctx, f) for f in EditContext.__dataclass_fields__}


# ----------------------------------------------------------------------------------------- rewrite
class Critic(Protocol):
    """Turns failing traces into textual feedback on the prompt (TextGrad's "gradient")."""

    def critique(self, prompt: PromptVersion, failures: Sequence[TraceWithFeedback], context: EditContext) -> str: ...


class Writer(Protocol):
    """Rewrites a whole prompt from a critique."""

    def rewrite(self, prompt: PromptVersion, critique: str, context: EditContext, *, seed: int) -> str: ...


class LLMCritic:
    """Critique with a model through ``optimize_rewrite_feedback.j2``."""

    def __init__(self, client: Any, *, max_failures: int = 4) -> None:
        self.client = client
        self.max_failures = max_failures

    def critique(self, prompt: PromptVersion, failures: Sequence[TraceWithFeedback], context: EditContext) -> str:
        shown = []
        for t in failures[: self.max_failures]:
            fb = "; ".join(f"{f.kind}={f.value} {f.text}".strip() for f in t.feedback)
            shown.append(transcript(t.trace.messages, max_chars=2500) + f"\nFeedback: {fb}")
        text = render("optimize_rewrite_feedback.j2", prompt=prompt.text, failures=shown)
        return str(self.client.complete([{"role": "user", "content": text}], temperature=0.0).text)


class LLMWriter:
    """Whole-prompt rewrite with a model through ``optimize_rewrite.j2``."""

    def __init__(self, client: Any, *, temperature: float = 0.7) -> None:
        self.client = client
        self.temperature = temperature

    def rewrite(self, prompt: PromptVersion, critique: str, context: EditContext, *, seed: int) -> str:
        best = {"text": context.best[0], "score": round(context.best[1], 3)} if context.best else None
        worst = {"text": context.worst[0], "score": round(context.worst[1], 3)} if context.worst else None
        text = render(
            "optimize_rewrite.j2",
            prompt=prompt.text,
            critique=critique,
            best=best,
            worst=worst,
            protected=list(context.protected_texts),
            max_chars=context.max_chars,
        )
        reply = str(self.client.complete([{"role": "user", "content": text}], temperature=self.temperature).text)
        return reply.strip().removeprefix("```").removesuffix("```").strip() or prompt.text


class HintCritic:
    """Offline critique: the attribution hints (and feedback) as bullets."""

    def critique(self, prompt: PromptVersion, failures: Sequence[TraceWithFeedback], context: EditContext) -> str:
        lines = [f"- The prompt should state: {h}" for h in dict.fromkeys(context.hints)]
        lines += [f"- Feedback: {f}" for f in _feedback_lines(failures, context, limit=6)]
        return "\n".join(lines)


class HintWriter:
    """Offline rewrite: for each hint in the critique, replace its closest span, or insert it after.

    A hint close to an existing span (TF-IDF cosine >= ``replace_at``, or a letter-scrambled copy of
    it) replaces that span; otherwise it is inserted after the closest span (it was missing). Hints already stated
    (cosine >= 0.8) are skipped. With ``dropout`` (seeded) a variant skips some hints.
    """

    def __init__(self, *, replace_at: float = 0.45, dropout: float = 0.25) -> None:
        self.replace_at = replace_at
        self.dropout = dropout

    def rewrite(self, prompt: PromptVersion, critique: str, context: EditContext, *, seed: int) -> str:
        rng = random.Random(seed)
        hints = [m.group(1).strip() for m in re.finditer(r"should state: (.+)", critique)]
        text = prompt.text
        protected = {" ".join(p.split()) for p in context.protected_texts}
        for k, hint in enumerate(hints):
            if k > 0 and rng.random() < self.dropout:
                continue
            spans = [s for s in segment(text) if s.kind != "heading"]
            target, sim = closest_span(hint, spans)
            if target is None or sim >= 0.8:
                continue
            scrambled, sim_a = closest_span(hint, spans, anagram=True)
            if (
                scrambled is not None
                and sim_a >= 0.6
                and sim_a - tfidf_similarity([hint], [scrambled.text])[0][0] >= 0.3
            ):
                target, sim = scrambled, 1.0  # a garbled statement of this hint: replace it
            new = _bulletise(hint, target.kind, target.text)
            if sim >= self.replace_at and " ".join(target.text.split()) not in protected:
                text = text[: target.start] + new + text[target.end :]
            else:
                sep = "\n" if target.kind == "bullet" else " "
                text = text[: target.end] + sep + new + text[target.end :]
        return text


class RewriteEditor:
    """TextGrad-style baseline: textual feedback, then a whole-prompt rewrite (n seeded variants)."""

    takes_context = True
    whole_prompt = True  # the round hands it the prompt itself, without masks or insertion slots

    def __init__(self, critic: Critic, writer: Writer, *, name: str = "rewrite") -> None:
        self.critic = critic
        self.writer = writer
        self.name = name

    def propose(
        self,
        prompt: PromptVersion,
        span_ids: Sequence[str],
        traces: Sequence[TraceWithFeedback],
        n: int,
        seed: int,
        *,
        context: EditContext | None = None,
    ) -> list[Candidate]:
        ctx = context or EditContext()
        failures = [t for t in traces if t.reward is not None and t.reward < 1.0] or list(traces)
        critique = self.critic.critique(prompt, failures, ctx)
        out = []
        for j in range(n):
            text = self.writer.rewrite(prompt, critique, ctx, seed=seed + j)
            out.append(
                Candidate(
                    text=text,
                    parent_id=prompt.id,
                    masked_span_ids=(),
                    editor=self.name,
                    seed=seed + j,
                    changed_span_ids=changed_span_ids(prompt.text, text),
                    metadata={"critique": critique[:2000]},
                )
            )
        return out


def span_texts(spans: Sequence[Span], ids: Sequence[str]) -> dict[str, str]:
    """``{span id: text}`` for the given ids (helper for records)."""
    by = {s.id: s.text for s in spans}
    return {i: by[i] for i in ids if i in by}
