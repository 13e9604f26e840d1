"""Fill chosen spans of a user's own prompt with a diffusion LM: what ``diffprompt dlm infill`` runs.

The optimizer's own path, driven by hand: ``span_ids`` are masked in place; ``after_ids`` get a new
sentence or bullet inserted after them (``optimize.prepare.insert_placeholders``: a copy of the
anchor is put in place and masked, with a run floor so the new rule may outgrow its neighbour);
``feedback`` lines go into the instruction; the ``DLMEditor`` writes the candidates through one
``EditRequest``, exactly as in a round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diffprompt.dlm.base import DiffusionLM
from diffprompt.errors import ValidationError
from diffprompt.types import PromptVersion


@dataclass(frozen=True, kw_only=True, slots=True)
class InfillCandidate:
    """One filled prompt: its text, the ids of the spans it changed, and how it was made."""

    text: str
    changed: tuple[str, ...]
    seed: int
    meta: dict[str, object]


def infill_prompt(
    dlm: DiffusionLM,
    prompt: PromptVersion,
    *,
    span_ids: Sequence[str] = (),
    after_ids: Sequence[str] = (),
    feedback: Sequence[str] = (),
    candidates: int = 3,
    steps: int = 64,
    seed: int = 0,
    temperature: float = 0.6,
) -> list[InfillCandidate]:
    """Up to ``candidates`` filled versions of ``prompt`` (see the module docstring)."""
    from diffprompt.dlm.editor import DLMEditor
    from diffprompt.editing import EditRequest
    from diffprompt.optimize.attribution import SpanScore
    from diffprompt.optimize.prepare import insert_placeholders

    if not span_ids and not after_ids:
        raise ValidationError("nothing to fill: give at least one --span ID or --after ID")
    known = {s.id for s in prompt.spans}
    unknown = [i for i in (*span_ids, *after_ids) if i not in known]
    if unknown:
        raise ValidationError(f"unknown span ids {unknown}; `diffprompt dlm infill FILE --list` prints the ids")
    if candidates < 1 or steps < 1:
        raise ValidationError("--candidates and --steps must be at least 1")
    chosen = [SpanScore(span_id=i, score=1.0) for i in dict.fromkeys(span_ids)]
    chosen += [SpanScore(span_id=i, score=1.0, insert=True) for i in dict.fromkeys(after_ids)]
    base, mask_ids, placeholders = insert_placeholders(prompt, chosen)
    editor = DLMEditor(dlm, steps=steps, temperature=temperature)
    request = EditRequest(
        prompt=base,
        span_ids=tuple(mask_ids),
        insert_span_ids=tuple(p for p in mask_ids if p in placeholders),
        feedback=tuple(feedback),
        n=candidates,
        seed=seed,
    )
    return [
        InfillCandidate(text=c.text, changed=tuple(c.changed_span_ids), seed=c.seed, meta=dict(c.metadata))
        for c in editor.propose(request)
    ]
