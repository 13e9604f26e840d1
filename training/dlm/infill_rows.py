"""Span-infill training rows for the built-in DLM, laid out exactly as the optimizer asks at inference.

A row is ``[BOS] instruction (+ feedback lines) (+ failing-trace snippets) [BOS] degraded policy``.
Training rows (``infill_row``) use generated corpus policies of the *training* domains only (telecom,
banking, hotel, ...): some rules are deleted, some garbled, and the masked slots are what the
optimizer masks:

- a **garbled** rule's span is masked in place; its target is the rule's sentence;
- a **deleted** rule gets an insertion slot after its closest editable neighbour (the same TF-IDF
  choice ``optimize.attribution`` makes); the slot is a mask run ``max(insert_min, neighbour length ×
  factor)`` long and its target is the deleted rule's sentence;
- some **present** rules are masked in place too (plain span infill, target = their own text).

The feedback is what the failure looks like from outside (``training.dlm.feedback``): a judge's
critique of the evidence and the user's complaint — never the rule's sentence. Positions past a
target's end target [EOS] (decoding strips it, which is how spans shrink).

``world_infill_row`` builds the same layout from the τ worlds' policies (airline, retail) with no
feedback; it is used only to *evaluate* the model on policies it never saw.

Pure: both are deterministic in the injected ``random.Random``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diffprompt.dlm.base import DLTokenizer
from diffprompt.spans import Span, segment, split_marker
from training.dlm.corpus import PolicyDraw, RuleDraw, draw_policy
from training.dlm.feedback import failure_turns, judge_critique, user_complaint


@dataclass(frozen=True, kw_only=True, slots=True)
class InfillRow:
    """One training row: input ids (masks in the slots) and the target id at every masked position."""

    ids: tuple[int, ...]
    targets: tuple[tuple[int, int], ...]  # (position, target id)


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    """A masked place in a degraded policy: after (insert) or instead of (replace) span ``index``."""

    index: int
    mode: str  # "insert" | "replace"
    target: str


def _split(text: str) -> tuple[str, str]:
    marker = split_marker(text)[0].rstrip()
    return marker, text[len(marker) :]  # the gap (space) goes with the content, as in the layout


def garble(text: str, rng: random.Random) -> str:
    """Scramble the inner letters of every word longer than three letters (a corrupted rule)."""

    def mix(m: re.Match[str]) -> str:
        w = m.group(0)
        inner = list(w[1:-1])
        rng.shuffle(inner)
        return w[0] + "".join(inner) + w[-1]

    return re.sub(r"[A-Za-z]{4,}", mix, text)


def degrade(policy: PolicyDraw, rng: random.Random) -> tuple[str, list[RuleDraw], list[RuleDraw], list[RuleDraw]]:
    """Delete and garble a few of the policy's bullet rules → (text, deleted, garbled, picked)."""
    bullets = [r for r in policy.rules if f"- {r.text}" in policy.text]
    if len(bullets) < 3:
        return policy.text, [], [], []
    k = min(len(bullets) - 2, rng.choice((1, 1, 2, 2, 3)))
    picked = rng.sample(bullets, k)
    n_garble = rng.choice((0, 0, 1))
    garbled, deleted = picked[:n_garble], picked[n_garble:]
    text = policy.text
    for r in deleted:
        text = re.sub(r"(\n\n|\n)?- " + re.escape(r.text) + r"[ \t]*(?=\n|$)", "", text, count=1)
    for r in garbled:
        text = text.replace(f"- {r.text}", f"- {garble(r.text, rng)}", 1)
    return text, deleted, garbled, picked


def _slots(
    text: str, spans: Sequence[Span], deleted: Sequence[RuleDraw], garbled: Sequence[RuleDraw], rng: random.Random,
    *, garbled_texts: dict[str, str],
) -> dict[int, Slot]:
    from diffprompt.optimize.attribution import closest_span

    editable = [s for s in spans if s.kind != "heading"]
    slots: dict[int, Slot] = {}
    for r in deleted:
        near, _ = closest_span(r.text, editable)
        if near is not None:
            i = spans.index(near)
            slots.setdefault(i, Slot(index=i, mode="insert", target=r.text))
    for r in garbled:
        g = garbled_texts.get(r.text)
        for i, s in enumerate(spans):
            if i not in slots and g is not None and _split(s.text)[1].strip() == g:
                slots[i] = Slot(index=i, mode="replace", target=r.text)
                break
    present = [i for i, s in enumerate(spans) if s.kind == "bullet" and i not in slots]
    for i in rng.sample(present, min(len(present), rng.choice((0, 0, 1)))):
        slots[i] = Slot(index=i, mode="replace", target=_split(spans[i].text)[1].strip())
    return slots


def encode_slots(
    tok: DLTokenizer, text: str, spans: Sequence[Span], slots: dict[int, Slot], rng: random.Random,
    *, mask_id: int, eos_id: int, insert_min: int,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Tokenize the policy span by span with each slot as a mask run; targets padded with [EOS]."""
    factor = rng.choice((0.75, 1.0, 1.5))
    body: list[int] = []
    targets: list[tuple[int, int]] = []
    pos = 0
    for i, s in enumerate(spans):
        if s.start > pos:
            body += tok.encode(text[pos : s.start])
        body += tok.encode(s.text)
        pos = s.end
        slot = slots.get(i)
        if slot is None:
            continue
        marker, content = _split(s.text)
        if slot.mode == "replace":
            body = body[: len(body) - len(tok.encode(s.text))]
        else:
            body += tok.encode("\n")
        body += tok.encode(marker) if marker else []
        n = max(1, round(len(tok.encode(content)) * factor))
        if slot.mode == "insert":
            n = max(insert_min, n)
        tgt_ids = tok.encode((" " if marker else "") + slot.target)[:n]
        tgt_ids += [eos_id] * (n - len(tgt_ids))
        targets += [(len(body) + j, t) for j, t in enumerate(tgt_ids)]
        body += [mask_id] * n
    if pos < len(text):
        body += tok.encode(text[pos:])
    return body, targets


def _assemble(
    tok: DLTokenizer, feedback: Sequence[str], trace_texts: Sequence[str], body: list[int],
    targets: list[tuple[int, int]], *, bos_id: int, max_len: int, trace_tokens: int,
) -> InfillRow | None:
    from diffprompt.templating import render as render_template

    instr = tok.encode(render_template("dlm_instruction.j2", feedback=list(feedback)))
    room = max_len - len(body) - len(instr) - 2
    for t in trace_texts:
        if room <= 8:
            break
        t_ids = tok.encode("\n" + t)[: min(trace_tokens, room)]
        instr += t_ids
        room -= len(t_ids)
    head = [bos_id, *instr, bos_id]
    if len(head) + len(body) > max_len:
        return None
    off = len(head)
    return InfillRow(ids=tuple(head + body), targets=tuple((p + off, t) for p, t in targets))


def infill_row(
    tok: DLTokenizer,
    rng: random.Random,
    *,
    bos_id: int,
    mask_id: int,
    eos_id: int,
    insert_min: int = 48,
    max_len: int = 1024,
    traces: bool = False,
    trace_tokens: int = 160,
) -> InfillRow | None:
    """A degraded corpus policy with its slots masked (see the module docstring); None if it does not fit."""
    from diffprompt.templating import render as render_template

    policy = draw_policy(rng, bullets=True)
    g_rng = random.Random(rng.randrange(1 << 30))
    text, deleted, garbled, picked = degrade(policy, g_rng)
    if not picked:
        return None
    garbled_texts = {r.text: _split(line)[1].strip() for r in garbled for line in text.splitlines()
                     if _garbled_of(line, r.text)}
    spans = segment(text)
    slots = _slots(text, spans, deleted, garbled, rng, garbled_texts=garbled_texts)
    if not slots:
        return None
    body, targets = encode_slots(tok, text, spans, slots, rng, mask_id=mask_id, eos_id=eos_id, insert_min=insert_min)
    d = policy.domain
    lines: list[str] = []
    for r in picked:
        if rng.random() < 0.8:
            lines.append(judge_critique(d, r, rng) if rng.random() < 0.6 else user_complaint(d, r, rng))
    rng.shuffle(lines)
    trace_texts: list[str] = []
    if traces:
        for k, r in enumerate(rng.sample(picked, min(len(picked), rng.choice((0, 1, 2, 3))))):
            comments = [user_complaint(d, r, rng)] if rng.random() < 0.7 else []
            trace_texts.append(render_template("dlm_trace.j2", n=k + 1, outcome="failed (reward 0.00)",
                                               comments=comments, messages=failure_turns(d, r, rng)))
    return _assemble(tok, lines[:4], trace_texts, body, targets, bos_id=bos_id, max_len=max_len,
                     trace_tokens=trace_tokens)


def world_infill_row(
    tok: DLTokenizer,
    rng: random.Random,
    *,
    domain: str,
    bos_id: int,
    mask_id: int,
    eos_id: int,
    insert_min: int = 48,
    max_len: int = 1024,
) -> InfillRow | None:
    """Evaluation only: a degraded τ-world policy (never trained on) with its slots masked, no feedback."""
    from tau_envs.generate.policy import degrade_policy, policy_text
    from tau_envs.rules import rules_for

    policy = policy_text(domain)  # type: ignore[arg-type]
    rules = tuple(r for r in rules_for(domain) if r.text in policy)  # type: ignore[arg-type]
    picked = rng.sample(rules, rng.choice((1, 2, 3)))
    n_garble = rng.choice((0, 1)) if len(picked) > 1 else 0
    garbled = [RuleDraw(kind="", text=r.text) for r in picked[:n_garble]]
    deleted = [RuleDraw(kind="", text=r.text) for r in picked[n_garble:]]
    text = degrade_policy(policy, rules, delete=[r.id for r in picked[n_garble:]],
                          garble=[r.id for r in picked[:n_garble]], seed=rng.randrange(1 << 30))
    garbled_texts = {r.text: _split(line)[1].strip() for r in garbled for line in text.splitlines()
                     if _garbled_of(line, r.text)}
    spans = segment(text)
    slots = _slots(text, spans, deleted, garbled, rng, garbled_texts=garbled_texts)
    if not slots:
        return None
    body, targets = encode_slots(tok, text, spans, slots, rng, mask_id=mask_id, eos_id=eos_id, insert_min=insert_min)
    return _assemble(tok, [], [], body, targets, bos_id=bos_id, max_len=max_len, trace_tokens=0)


def _garbled_of(span_text: str, rule_text: str) -> bool:
    """Whether ``span_text`` is ``rule_text`` with letters scrambled inside words (same letter bags)."""
    a = re.findall(r"[A-Za-z]+", _split(span_text)[1])
    b = re.findall(r"[A-Za-z]+", rule_text)
    return len(a) == len(b) and all(sorted(x) == sorted(y) for x, y in zip(a, b, strict=True))
