"""Language-model baseline editors behind the ``Editor`` seam (``diffprompt.editing``).

* ``ARInfillEditor`` — an autoregressive model fills the *same* masked spans the DLM editor would
  (the paper's AR baseline). The filling strategy is a ``Filler``; ``LLMFiller`` asks any
  ``CompletionClient`` through ``optimize_ar_infill.j2`` for a JSON answer.
* ``RewriteEditor`` — TextGrad style: a ``Critic`` turns failures into textual feedback, a ``Writer``
  rewrites the whole prompt from it (``LLMCritic`` / ``LLMWriter`` through templates).

Both need a language model. The strategies that paste the blamer's hints instead live in
``optimize.oracle`` and are only a labelled ceiling. A reply that cannot be parsed keeps the prompt
unchanged (the round counts that candidate as ``unchanged``), it never raises.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from diffprompt.editing import EditorCapabilities, EditRequest
from diffprompt.optimize.templates import render, transcript
from diffprompt.spans import changed_span_ids, replace_spans, split_marker, squash_whitespace, strip_marker
from diffprompt.types import Candidate, PromptVersion, SpanKind, TraceWithFeedback


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
        self, masked_prompt: str, slots: Sequence[MaskSlot], request: EditRequest, *, seed: int
    ) -> dict[int, str]: ...


def feedback_lines(request: EditRequest, traces: Sequence[TraceWithFeedback] = (), limit: int = 12) -> list[str]:
    """The request's feedback history, then the traces' comments; de-duplicated, at most ``limit``."""
    lines = [*request.feedback, *(c for t in (traces or request.traces) for c in t.comments if c)]
    return list(dict.fromkeys(lines))[:limit]


def bulletise(text: str, kind: SpanKind, like: str) -> str:
    """``text`` on one line, with ``like``'s list marker for a bullet and without one otherwise."""
    text = squash_whitespace(text)
    if kind == "bullet":
        if split_marker(text, headings=False)[0]:
            return text
        return (split_marker(like, headings=False)[0] or "- ") + text
    return strip_marker(text, headings=False)


def mask_slots(request: EditRequest) -> tuple[str, list[MaskSlot]]:
    """``(prompt with numbered [MASK_k] marks, one MaskSlot per requested span)`` (AR, oracle, DLM drafts)."""
    prompt = request.prompt
    by_id = {s.id: s for s in prompt.spans}
    chosen = [by_id[i] for i in request.span_ids]
    marks = {s.id: f"[MASK_{k + 1}]" for k, s in enumerate(chosen)}
    masked = replace_spans(prompt.text, prompt.spans, marks)
    idx = {s.id: i for i, s in enumerate(prompt.spans)}
    slots = []
    for k, s in enumerate(chosen):
        i = idx[s.id]
        near = " ".join(x.text for x in prompt.spans[max(0, i - 1) : i + 2] if x.id not in marks)
        slots.append(
            MaskSlot(
                n=k + 1,
                span_id=s.id,
                words=len(s.text.split()),
                kind=s.kind,
                insert=s.id in request.insert_span_ids,
                context=near,
            )
        )
    return masked, slots


def infill_candidates(request: EditRequest, filler: Filler, name: str) -> list[Candidate]:
    """``request.n`` candidates whose masked spans ``filler`` fills (shared by AR and the oracle)."""
    prompt = request.prompt
    by_id = {s.id: s for s in prompt.spans}
    chosen = [by_id[i] for i in request.span_ids]
    masked, slots = mask_slots(request)
    out: list[Candidate] = []
    for j in range(request.n):
        seed = request.seed + j
        fills = filler.fill(masked, slots, request, seed=seed)
        repl = {s.id: bulletise(fills[k + 1], s.kind, s.text) for k, s in enumerate(chosen) if k + 1 in fills}
        text = replace_spans(prompt.text, prompt.spans, repl) if repl else prompt.text
        if any(c.text == text for c in out):
            continue  # a model that gives the same answer again adds no candidate
        out.append(
            Candidate(
                text=text,
                parent_id=prompt.id,
                masked_span_ids=request.span_ids,
                editor=name,
                seed=seed,
                changed_span_ids=changed_span_ids(prompt.text, text),
                metadata={"fills": {s.id: repl.get(s.id) for s in chosen}},
            )
        )
    return out


class LLMFiller:
    """Fills masks with any ``CompletionClient`` through ``optimize_ar_infill.j2`` (JSON answer)."""

    def __init__(self, client: Any, *, temperature: float = 0.7, structured: bool = False) -> None:
        self.client = client
        self.temperature = temperature
        self.structured = structured  # the client is a StructuredClient: constrain the answer to the schema

    def fill(self, masked_prompt: str, slots: Sequence[MaskSlot], request: EditRequest, *, seed: int) -> dict[int, str]:
        text = render(
            "optimize_ar_infill.j2",
            masked_prompt=masked_prompt,
            feedback=feedback_lines(request),
            rejected=[t for s in slots for t in request.rejected_for(s.span_id)],
            masks=[{"n": s.n, "words": s.words, "insert": s.insert} for s in slots],
        )
        msgs = [{"role": "user", "content": text}]
        if self.structured:
            keys = [str(sl.n) for sl in slots]
            schema = {
                "type": "object",
                "properties": {
                    "fills": {
                        "type": "object",
                        "properties": {k: {"type": "string"} for k in keys},
                        "required": keys,
                    }
                },
                "required": ["fills"],
            }
            reply = self.client.complete_json(msgs, schema, name="fills", temperature=self.temperature).text
        else:
            reply = self.client.complete(msgs, temperature=self.temperature).text
        m = re.search(r"\{.*\}", str(reply), re.DOTALL)
        try:
            fills = json.loads(m.group(0)).get("fills", {}) if m else {}
        except (json.JSONDecodeError, AttributeError):
            fills = {}
        out: dict[int, str] = {}
        for k, v in fills.items() if isinstance(fills, dict) else ():
            if str(k).isdigit() and isinstance(v, str) and v.strip():
                out[int(k)] = html.unescape(v).strip()
        return out


class ARInfillEditor:
    """Autoregressive infilling of the same masked spans the DLM editor would fill."""

    capabilities = EditorCapabilities()

    def __init__(self, filler: Filler, *, name: str = "ar") -> None:
        self.filler = filler
        self.name = name

    def propose(self, request: EditRequest) -> list[Candidate]:
        if not request.span_ids:
            return []
        return infill_candidates(request, self.filler, self.name)


# ----------------------------------------------------------------------------------------- rewrite
class Critic(Protocol):
    """Turns failing traces into textual feedback on the prompt (TextGrad's "gradient")."""

    def critique(self, request: EditRequest, failures: Sequence[TraceWithFeedback]) -> str: ...


class Writer(Protocol):
    """Rewrites a whole prompt from a critique."""

    def rewrite(self, request: EditRequest, critique: str, *, seed: int) -> str: ...


class LLMCritic:
    """Critique with a model through ``optimize_rewrite_feedback.j2``."""

    def __init__(self, client: Any, *, max_failures: int = 4) -> None:
        self.client = client
        self.max_failures = max_failures

    def critique(self, request: EditRequest, failures: Sequence[TraceWithFeedback]) -> str:
        shown = []
        for t in failures[: self.max_failures]:
            fb = "; ".join(f"{f.kind}={f.value} {f.text}".strip() for f in t.feedback)
            shown.append(transcript(t.trace.messages, max_chars=2500) + f"\nFeedback: {fb}")
        text = render("optimize_rewrite_feedback.j2", prompt=request.prompt.text, failures=shown)
        return str(self.client.complete([{"role": "user", "content": text}], temperature=0.0).text)


def _unfence(reply: str) -> str:
    """A model's reply without code fences and HTML entities (small models write "&#39;")."""
    return html.unescape(reply).strip().removeprefix("```").removesuffix("```").strip()


class LLMWriter:
    """Whole-prompt rewrite with a model through ``optimize_rewrite.j2``.

    One span at a time through ``optimize_rewrite_span.j2`` when the whole prompt would not fit the
    writer's ``max_output_tokens``.
    """

    def __init__(self, client: Any, *, temperature: float = 0.7, max_output_tokens: int | None = None) -> None:
        self.client = client
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens  # the writer's reply limit (its max_tokens setting)

    def rewrite_span(self, request: EditRequest, critique: str, span_text: str, *, seed: int) -> str:
        text = render("optimize_rewrite_span.j2", prompt=request.prompt.text, critique=critique,
                      span=span_text, max_chars=max(80, 2 * len(span_text)))
        reply = str(self.client.complete([{"role": "user", "content": text}], temperature=self.temperature).text)
        return _unfence(reply)

    def rewrite(self, request: EditRequest, critique: str, *, seed: int) -> str:
        best = {"text": request.best[0], "score": round(request.best[1], 3)} if request.best else None
        worst = {"text": request.worst[0], "score": round(request.worst[1], 3)} if request.worst else None
        text = render(
            "optimize_rewrite.j2",
            prompt=request.prompt.text,
            critique=critique,
            best=best,
            worst=worst,
            protected=list(request.protected_texts),
            max_chars=request.max_chars,
        )
        reply = str(self.client.complete([{"role": "user", "content": text}], temperature=self.temperature).text)
        return _unfence(reply) or request.prompt.text


# characters per token of English prompt text (a conservative estimate for BPE tokenizers)
CHARS_PER_TOKEN = 3.5


def whole_rewrite_fits(writer: Any, text: str) -> bool:
    """Whether the writer can reply with all of ``text`` within its output limit (90% of it)."""
    budget = getattr(writer, "max_output_tokens", None)
    return budget is None or len(text) / CHARS_PER_TOKEN <= 0.9 * budget


def _span_rewrites(request: EditRequest, critique: str, writer: Any, name: str) -> list[Candidate]:
    """``request.n`` candidates, each rewriting only the request's spans (a prompt too long to rewrite whole)."""
    prompt = request.prompt
    by_id = {s.id: s for s in prompt.spans}
    chosen = [by_id[i] for i in request.span_ids if i in by_id]
    out: list[Candidate] = []
    for j in range(request.n):
        seed = request.seed + j
        repl = {s.id: writer.rewrite_span(request, critique, s.text, seed=seed) for s in chosen}
        repl = {k: v for k, v in repl.items() if v}
        if not repl:
            continue
        text = replace_spans(prompt.text, prompt.spans, repl)
        if text == prompt.text or any(c.text == text for c in out):
            continue
        out.append(Candidate(
            text=text, parent_id=prompt.id, masked_span_ids=tuple(repl), editor=name, seed=seed,
            changed_span_ids=changed_span_ids(prompt.text, text),
            metadata={"critique": critique[:2000], "mode": "spans", "fills": repl},
        ))
    return out


def rewrite_candidates(request: EditRequest, critic: Critic, writer: Writer, name: str) -> list[Candidate]:
    """One critique of the request's failures, then ``request.n`` seeded rewrites.

    A prompt longer than the writer's output limit is not rewritten whole (the reply would be cut
    short): each candidate then rewrites only the request's weak spans, in place.
    """
    prompt: PromptVersion = request.prompt
    traces = request.traces
    failures = [t for t in traces if t.reward is not None and t.reward < 1.0] or list(traces)
    critique = critic.critique(request, failures)
    if request.span_ids and not whole_rewrite_fits(writer, prompt.text) and hasattr(writer, "rewrite_span"):
        return _span_rewrites(request, critique, writer, name)
    out: list[Candidate] = []
    for j in range(request.n):
        text = writer.rewrite(request, critique, seed=request.seed + j)
        if any(c.text == text for c in out):
            continue
        out.append(
            Candidate(
                text=text,
                parent_id=prompt.id,
                masked_span_ids=(),
                editor=name,
                seed=request.seed + j,
                changed_span_ids=changed_span_ids(prompt.text, text),
                metadata={"critique": critique[:2000]},
            )
        )
    return out


class RewriteEditor:
    """TextGrad-style baseline: textual feedback, then a whole-prompt rewrite (n seeded variants)."""

    capabilities = EditorCapabilities(whole_prompt=True)

    def __init__(self, critic: Critic, writer: Writer, *, name: str = "rewrite") -> None:
        self.critic = critic
        self.writer = writer
        self.name = name

    def propose(self, request: EditRequest) -> list[Candidate]:
        return rewrite_candidates(request, self.critic, self.writer, self.name)
