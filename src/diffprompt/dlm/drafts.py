"""Draft rows of the DLM editor: a blamer's hints written into the masked slots, then partly re-masked.

This is the SDEdit / ReMDM-style "draft then denoise" refinement. A draft row does not start from
nothing: each slot that a hint fits (``diffprompt.optimize.oracle.assign_hints``, the ``HintFiller``
rule: an insertion slot takes the unused hint most similar to its neighbourhood, a span masked in
place only a hint that restates it; hints the visible prompt already states, or rejected for that
span, are skipped) gets the hint's tokens instead of a mask run (``build_layout(drafts=...)``). One
forward of the DLM over the draft rows then scores every draft token by the probability of its own
token, and the least-agreed fraction of each draft is masked again (``lowest_agreement``; by whole
words with ``word_groups``: a re-masked word piece alone comes back as a broken word); the sampler
rewrites only those positions, so the model edits the draft's wording in context instead of
inventing a rule.

Where the hints come from decides what this measures: an oracle blamer's hints are the deleted
rule's own sentence (a draft row then mostly pastes the answer: a labelled ceiling), the honest
judge's hints are its own wording induced from the evidence.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffprompt.dlm.base import DiffusionLM, DLTokenizer
from diffprompt.dlm.layout import Layout, remask
from diffprompt.editing import EditRequest
from diffprompt.optimize.editors import mask_slots
from diffprompt.optimize.oracle import assign_hints


def draft_assignments(
    request: EditRequest, rows: int, *, seed: int, explore: float = 0.3, replace_at: float = 0.45
) -> list[dict[str, str]]:
    """``{span_id: hint}`` for each of ``rows`` draft rows (an empty dict: that row has no draft).

    Row 0 takes the best hint for every slot; later rows take the second best with probability
    ``explore`` (seeded per row), so different rows try different hint-to-slot assignments.
    """
    if rows <= 0 or not any(h.strip() for h in request.hints) or not request.span_ids:
        return []
    masked, slots = mask_slots(request)
    span_of = {sl.n: sl.span_id for sl in slots}
    out = []
    for j in range(rows):
        rng = random.Random(seed * 1_000_003 + j)
        got = assign_hints(request, slots, rng, explore=explore if j else 0.0, replace_at=replace_at, context=masked)
        out.append({span_of[k]: h for k, h in sorted(got.items())})
    return out


def remask_count(n: int, fraction: float) -> int:
    """How many of a draft's ``n`` tokens ``fraction`` re-masks: ``floor(fraction * n)``, at least 1 when > 0."""
    if n <= 0 or fraction <= 0:
        return 0
    return min(n, max(1, int(fraction * n + 1e-9)))


def word_groups(tok: DLTokenizer, ids: Sequence[int]) -> list[list[int]]:
    """Indices of ``ids`` grouped into words.

    A token continues the previous word when the text it adds to the decoded prefix starts with a
    letter or digit right after one (works for byte-level BPE and SentencePiece alike).
    """
    groups: list[list[int]] = []
    before = ""
    for i in range(len(ids)):
        text = tok.decode([int(t) for t in ids[: i + 1]], skip_special_tokens=True)
        added = text[len(before) :]
        if groups and added[:1].isalnum() and before[-1:].isalnum():
            groups[-1].append(i)
        else:
            groups.append([i])
        before = text
    return groups


def lowest_agreement(
    logits: torch.Tensor,
    ids: Sequence[int],
    positions: Sequence[int],
    fraction: float,
    groups: Sequence[Sequence[int]] | None = None,
) -> list[int]:
    """The ``remask_count`` of ``positions`` whose own token ``ids[p]`` is least probable under ``logits[p]``.

    ``logits`` is one row's ``(L, V)``; ties go to the earlier position. Returned in position order.
    With ``groups`` (indices into ``positions``, e.g. ``word_groups``) whole groups are taken, scored by
    their least-agreed token, least agreed first, while the count stays within ``remask_count`` (the
    first group is always taken), so no word is left half re-masked.
    """
    k = remask_count(len(positions), fraction)
    if k == 0:
        return []
    pos = torch.tensor(list(positions), dtype=torch.long, device=logits.device)
    own = torch.tensor([int(ids[p]) for p in positions], dtype=torch.long, device=logits.device)
    lp = torch.log_softmax(logits[pos].float(), dim=-1).gather(1, own.unsqueeze(1)).squeeze(1).tolist()
    units = [list(g) for g in groups] if groups is not None else [[i] for i in range(len(positions))]
    order = sorted(range(len(units)), key=lambda u: min(lp[i] for i in units[u]))  # stable: earlier first
    taken: list[int] = []
    for u in order:
        if taken and len(taken) + len(units[u]) > k:
            continue
        taken += units[u]
        if len(taken) >= k:
            break
    return sorted(int(positions[i]) for i in taken)


@dataclass(frozen=True, kw_only=True, slots=True)
class Remasked:
    """One re-masked unit of a draft: its positions, the draft's tokens there and their scoring log-probs."""

    positions: tuple[int, ...]
    draft_ids: tuple[int, ...]
    logprobs: torch.Tensor  # (len(positions), V): the scoring forward's log-probabilities


def keep_preferred(ids: list[int], units: Sequence[Remasked], *, confident: float = 0.5) -> int:
    """Put a draft's own unit back unless the model clearly prefers the one it sampled.

    The model rewrites a draft word only where, under the scoring forward, its own word is likelier
    (sum of the unit's token log-probabilities) and every token of it has probability >=
    ``confident``: a small model's low-confidence guesses do not overwrite the draft. ``ids`` (one
    filled row, layout positions) is changed in place. Returns how many units were put back.
    """
    back = 0
    for u in units:
        new = [int(ids[p]) for p in u.positions]
        if new == list(u.draft_ids):
            continue
        idx = torch.arange(len(u.positions))
        new_lp = u.logprobs[idx, torch.tensor(new)]
        gain = float(new_lp.sum() - u.logprobs[idx, torch.tensor(u.draft_ids)].sum())
        if gain <= 0 or float(new_lp.exp().min()) < confident:
            for p, t in zip(u.positions, u.draft_ids, strict=True):
                ids[p] = t
            back += 1
    return back


def remask_rows(
    dlm: DiffusionLM, layouts: Sequence[Layout], fractions: Sequence[float], *, unit: str = "token"
) -> list[tuple[Layout, list[Remasked]]]:
    """Each draft layout with the ``fraction`` least-agreed tokens of every draft masked again.

    One forward of ``dlm`` over all ``layouts`` (left-padded into one batch); a run's draft tokens are
    its ``fixed`` positions. ``unit="word"`` re-masks whole words (``word_groups``). With each layout
    come its re-masked units (for ``keep_preferred``).
    """
    if not layouts:
        return []
    width = max(len(lay) for lay in layouts)
    ids = torch.full((len(layouts), width), dlm.pad_id, dtype=torch.long)
    attn = torch.zeros((len(layouts), width), dtype=torch.long)
    for b, lay in enumerate(layouts):
        ids[b, width - len(lay) :] = torch.tensor(lay.ids)
        attn[b, width - len(lay) :] = 1
    dev = dlm.device
    logits = dlm.logits(ids.to(dev), attn.to(dev) if bool((attn == 0).any()) else None)
    out = []
    for b, (lay, frac) in enumerate(zip(layouts, fractions, strict=True)):
        row = logits[b, width - len(lay) :]
        picks: list[int] = []
        units: list[Remasked] = []
        lp = torch.log_softmax(row.float(), dim=-1).cpu()
        for s, e in lay.runs.values():
            pos = [p for p in range(s, e) if p in lay.fixed]
            groups = word_groups(dlm.tokenizer, [lay.ids[p] for p in pos]) if unit == "word" else None
            got = lowest_agreement(row, lay.ids, pos, frac, groups)
            picks += got
            for g in groups if groups is not None else [[k] for k in range(len(pos))]:
                ps = tuple(pos[k] for k in g)
                if ps and ps[0] in got:
                    units.append(Remasked(positions=ps, draft_ids=tuple(lay.ids[p] for p in ps),
                                          logprobs=lp[list(ps)]))
        out.append((remask(lay, picks, dlm.mask_id), units))
    return out
