"""The ``oracle`` editors: labelled ceilings that write the blamer's hints into the prompt.

A hint (``EditRequest.hints``) is the text a blamer says the prompt should state. Under an oracle
judge that is the deleted rule's own sentence, so an editor that pastes it measures how far a round
*could* go with a perfect editor — an upper bound for benchmarks, never a baseline and never the
default. With a blamer that names no text (an honest judge that only reports what went wrong) an
oracle editor has nothing to write: its candidates come back unchanged and the round says so.
Both editors declare ``EditorCapabilities(oracle=True)``; reports and benchmarks label them.

* ``OracleEditor`` (``--editor oracle``) fills each insertion slot with the unused hint most similar
  to its neighbourhood, and a span masked in place only with a hint that restates it (a garbled or
  contradicted copy), so it never writes over a correct neighbouring rule (``HintFiller``) — like an
  AR editor that already knows the answer;
* ``OracleRewriteEditor`` (``--editor oracle-rewrite``) rewrites the whole prompt: each hint
  replaces its closest span, or is inserted after it when missing (``HintCritic`` + ``HintWriter``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from diffprompt.editing import EditorCapabilities, EditRequest
from diffprompt.optimize.attribution import closest_span, restates, tfidf_similarity
from diffprompt.optimize.editors import (
    MaskSlot,
    bulletise,
    feedback_lines,
    infill_candidates,
    rewrite_candidates,
)
from diffprompt.spans import normalize_text, segment, squash_whitespace
from diffprompt.types import Candidate, TraceWithFeedback


class HintFiller:
    """Insertion slots get the hints most similar to their neighbourhood; in-place masks only their own.

    A span masked in place gets a hint only when the hint is a corrected version of it (``restates``).
    A span masked in place may be a correct rule (picked by feedback similarity, not blame): writing
    an unrelated hint over it would delete that rule, so it keeps its text unless some hint restates
    it (a garbled or contradicted copy). In-place slots are served first, then insertion slots.
    Hints already stated by the visible prompt, or already rejected for that span, are skipped.
    ``explore`` is the chance (seeded) of taking the second-best hint, so ``n`` candidates differ.
    """

    def __init__(self, *, explore: float = 0.3, replace_at: float = 0.45) -> None:
        self.explore = explore
        self.replace_at = replace_at

    def fill(self, masked_prompt: str, slots: Sequence[MaskSlot], request: EditRequest, *, seed: int) -> dict[int, str]:
        return assign_hints(
            request, slots, random.Random(seed), explore=self.explore, replace_at=self.replace_at, context=masked_prompt
        )


def assign_hints(
    request: EditRequest,
    slots: Sequence[MaskSlot],
    rng: random.Random,
    *,
    explore: float = 0.3,
    replace_at: float = 0.45,
    context: str = "",
) -> dict[int, str]:
    """``{slot.n: hint}``: the ``HintFiller`` rule (shared with the DLM editor's draft rows).

    ``context`` is the text a slot without neighbours is compared with (the masked prompt).
    """
    masked = set(request.span_ids)  # the request's spans, not the masked text: a mask run into a
    visible = [s.text for s in request.prompt.spans if s.id not in masked]  # sentence hides it
    hints = [h for h in dict.fromkeys(request.hints) if h.strip()]
    if visible and hints:
        stated = tfidf_similarity(hints, visible)
        hints = [h for h, row in zip(hints, stated, strict=True) if max(row) < 0.8]
    original = {s.id: s.text for s in request.prompt.spans}
    out: dict[int, str] = {}
    used: set[str] = set()
    for slot in sorted(slots, key=lambda sl: (sl.insert, sl.n)):
        banned = {normalize_text(t) for t in request.rejected_for(slot.span_id)}
        pool = [h for h in hints if h not in used and normalize_text(h) not in banned]
        if not slot.insert:
            pool = [h for h in pool if restates(h, original.get(slot.span_id, ""), at=replace_at)]
        if not pool:
            continue
        sims = tfidf_similarity([slot.context or context], pool)[0]
        ranked = sorted(range(len(pool)), key=lambda i: -sims[i])
        pick = ranked[1] if len(ranked) > 1 and rng.random() < explore else ranked[0]
        used.add(pool[pick])
        out[slot.n] = pool[pick]
    return out


class HintCritic:
    """The hints (and feedback) as the critique's bullets."""

    def critique(self, request: EditRequest, failures: Sequence[TraceWithFeedback]) -> str:
        lines = [f"- The prompt should state: {h}" for h in dict.fromkeys(request.hints)]
        lines += [f"- Feedback: {f}" for f in feedback_lines(request, failures, limit=6)]
        return "\n".join(lines)


class HintWriter:
    """For each hint in the critique, replace its closest span, or insert it after it.

    A hint close to an existing span (TF-IDF cosine >= ``replace_at``, or a letter-scrambled copy of
    it) replaces that span; otherwise it is inserted after the closest span (it was missing). Hints
    already stated (cosine >= 0.8) are skipped. With ``dropout`` (seeded) a variant skips some hints.
    """

    def __init__(self, *, replace_at: float = 0.45, dropout: float = 0.25) -> None:
        self.replace_at = replace_at
        self.dropout = dropout

    def rewrite(self, request: EditRequest, critique: str, *, seed: int) -> str:
        rng = random.Random(seed)
        hints = [m.group(1).strip() for m in re.finditer(r"should state: (.+)", critique)]
        text = request.prompt.text
        protected = {squash_whitespace(p) for p in request.protected_texts}
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
            new = bulletise(hint, target.kind, target.text)
            if sim >= self.replace_at and squash_whitespace(target.text) not in protected:
                text = text[: target.start] + new + text[target.end :]
            else:
                sep = "\n" if target.kind == "bullet" else " "
                text = text[: target.end] + sep + new + text[target.end :]
        return text


class OracleEditor:
    """Ceiling: fills the masked spans with the blamer's hints (``HintFiller``)."""

    name = "oracle"
    capabilities = EditorCapabilities(reads_traces=False, oracle=True)

    def __init__(self, *, explore: float = 0.3) -> None:
        self.filler = HintFiller(explore=explore)

    def propose(self, request: EditRequest) -> list[Candidate]:
        if not request.span_ids:
            return []
        return infill_candidates(request, self.filler, self.name)


class OracleRewriteEditor:
    """Ceiling: rewrites the whole prompt so that it states every hint (``HintCritic`` + ``HintWriter``)."""

    name = "oracle-rewrite"
    capabilities = EditorCapabilities(whole_prompt=True, oracle=True)

    def __init__(self, *, replace_at: float = 0.45, dropout: float = 0.25) -> None:
        self.critic = HintCritic()
        self.writer = HintWriter(replace_at=replace_at, dropout=dropout)

    def propose(self, request: EditRequest) -> list[Candidate]:
        return rewrite_candidates(request, self.critic, self.writer, self.name)
