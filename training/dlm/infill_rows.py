"""Span-infill training rows for the built-in DLM, laid out exactly as the optimizer asks at inference.

A row is ``[BOS] instruction (+ feedback lines) [BOS] degraded policy`` where the policy is one of our
generated worlds' policies with some rules deleted and some garbled (``tau_envs`` ``degrade_policy``),
and the masked slots are what the optimizer masks:

- a **garbled** rule's span is masked in place; its target is the rule's sentence;
- a **deleted** rule gets an insertion slot after its closest editable neighbour (the same TF-IDF
  choice ``optimize.attribution`` makes); the slot is a mask run ``max(insert_min, neighbour length ×
  factor)`` long and its target is the deleted rule's sentence;
- some **present** rules are masked in place too (plain span infill, target = their own text).

Positions past a target's end target [EOS] (decoding strips it, which is how spans shrink). Feedback
lines follow the optimizer's format ``"<reason> (should state: <rule>)"`` for some of the blamed rules.

Pure: ``infill_row(tok, rng, ...)`` is deterministic in the injected ``random.Random``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from diffprompt.dlm.base import DLTokenizer
from diffprompt.spans import segment

_MARKER = re.compile(r"^(\s*(?:[-*+]|\d{1,3}[.)]|#{1,6}))(\s+)")
_REASONS = (
    "the agent broke a policy rule",
    "the agent did not follow the policy",
    "the task failed because the rule is missing",
    "the agent acted against the policy",
    "the user was not treated according to the rules",
)


_USER = (
    "Hi, I want to cancel my reservation {code}.",
    "I need to change the flights on reservation {code}.",
    "Can you add a checked bag to my booking {code}?",
    "I would like to return the items of order #W{num}.",
    "Please exchange the shoes in order #W{num} for a bigger size.",
    "My flight was delayed and I want compensation.",
    "Book a round trip for two passengers, please.",
)
_AGENT = (
    "calls cancel_reservation({{\"reservation_id\": \"{code}\"}})",
    "calls update_reservation_flights({{\"reservation_id\": \"{code}\"}})",
    "calls get_user_details({{\"user_id\": \"user_{num}\"}})",
    "calls return_delivered_order_items({{\"order_id\": \"#W{num}\"}})",
    "Your reservation {code} has been updated.",
    "I have processed your request.",
    "Sure, I can help with that. Could you give me your user id?",
)


def _trace_text(rng: random.Random, n: int, comments: list[str]) -> str:
    """A failing conversation rendered like ``layout.render_trace`` (synthetic turns, real comment format)."""
    from diffprompt.templating import render as render_template

    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
    num = rng.randrange(1000000, 9999999)
    messages = []
    for _ in range(rng.randint(1, 4)):
        messages.append({"role": "User", "text": rng.choice(_USER).format(code=code, num=num)})
        messages.append({"role": "Agent", "text": rng.choice(_AGENT).format(code=code, num=num)})
    outcome = "failed (reward 0.00)"
    return render_template("dlm_trace.j2", n=n, outcome=outcome, comments=comments, messages=messages)


@dataclass(frozen=True, kw_only=True, slots=True)
class InfillRow:
    """One training row: input ids (masks in the slots) and the target id at every masked position."""

    ids: tuple[int, ...]
    targets: tuple[tuple[int, int], ...]  # (position, target id)


def _world(domain: str) -> tuple[str, tuple[Any, ...]]:
    from tau_envs.generate.policy import policy_text
    from tau_envs.rules import rules_for

    return policy_text(domain), rules_for(domain)  # type: ignore[arg-type]


def _split(text: str) -> tuple[str, str]:
    m = _MARKER.match(text)
    if not m:
        return "", text
    return m.group(1), text[m.end(1) :]  # the gap (space) goes with the content, as in the layout


def infill_row(
    tok: DLTokenizer,
    rng: random.Random,
    *,
    domain: str,
    bos_id: int,
    mask_id: int,
    eos_id: int,
    insert_min: int = 48,
    max_len: int = 1024,
    traces: bool = False,
    trace_tokens: int = 160,
) -> InfillRow | None:
    """A degraded world policy with its slots masked (see the module docstring); None if it does not fit."""
    from diffprompt.optimize.attribution import closest_span
    from diffprompt.templating import render as render_template
    from tau_envs.generate.policy import degrade_policy

    policy, rules = _world(domain)
    rules = tuple(r for r in rules if r.text in policy)
    ids_all = [r.id for r in rules]
    by_id = {r.id: r for r in rules}
    k = rng.choice((1, 2, 3, 3, 4))
    picked = rng.sample(ids_all, k)
    n_garble = rng.choice((0, 0, 1)) if k > 1 else rng.choice((0, 1))
    garble, delete = picked[:n_garble], picked[n_garble:]
    text = degrade_policy(policy, rules, delete=delete, garble=garble, seed=rng.randrange(1 << 30))
    spans = segment(text)
    editable = [s for s in spans if s.kind != "heading"]
    slots: dict[int, tuple[str, str]] = {}  # span index -> (mode, target text)
    for rid in delete:
        near, _ = closest_span(by_id[rid].text, editable)
        if near is None:
            continue
        i = spans.index(near)
        if i not in slots:
            slots[i] = ("insert", by_id[rid].text)
    for rid in garble:
        rule_text = by_id[rid].text
        for i, s in enumerate(spans):
            if s.kind != "heading" and i not in slots and _garbled_of(s.text, rule_text):
                slots[i] = ("replace", rule_text)
                break
    present = [i for i, s in enumerate(spans) if s.kind == "bullet" and i not in slots]
    for i in rng.sample(present, min(len(present), rng.choice((0, 0, 1)))):
        slots[i] = ("replace", _split(spans[i].text)[1].strip())
    if not slots:
        return None
    factor = rng.choice((0.75, 1.0, 1.5))
    body: list[int] = []
    targets: list[tuple[int, int]] = []
    pos = 0
    for i, s in enumerate(spans):
        if s.start > pos:
            body += tok.encode(text[pos : s.start])
        body += tok.encode(s.text)
        pos = s.end
        if i in slots:
            mode, tgt = slots[i]
            marker, content = _split(s.text)
            if mode == "replace":
                body = body[: len(body) - len(tok.encode(s.text))]
            else:
                body += tok.encode("\n")
            body += tok.encode(marker) if marker else []
            n = max(1, round(len(tok.encode(content)) * factor))
            if mode == "insert":
                n = max(insert_min, n)
            tgt_ids = tok.encode((" " if marker else "") + tgt)[:n]
            tgt_ids += [eos_id] * (n - len(tgt_ids))
            targets += [(len(body) + j, t) for j, t in enumerate(tgt_ids)]
            body += [mask_id] * n
    if pos < len(text):
        body += tok.encode(text[pos:])
    hints = [by_id[r].text for r in picked if rng.random() < 0.7]
    rng.shuffle(hints)
    lines = [f"{rng.choice(_REASONS)} (should state: {h})" for h in hints][:4]
    instr = tok.encode(render_template("dlm_instruction.j2", feedback=lines))
    room = max_len - len(body) - len(instr) - 2
    for k in range(rng.choice((0, 1, 2, 3)) if traces else 0):
        comments = [f"{rng.choice(_REASONS)} (should state: {h})" for h in hints[k : k + 1]]
        t_ids = tok.encode("\n" + _trace_text(rng, k + 1, comments))[: min(trace_tokens, room)]
        if room <= 8:
            break
        instr += t_ids
        room -= len(t_ids)
    head = [bos_id, *instr, bos_id]
    if len(head) + len(body) > max_len:
        return None
    off = len(head)
    return InfillRow(ids=tuple(head + body), targets=tuple((p + off, t) for p, t in targets))


def _garbled_of(span_text: str, rule_text: str) -> bool:
    """Whether ``span_text`` is ``rule_text`` with letters scrambled inside words (same letter bags)."""
    a = re.findall(r"[A-Za-z]+", _split(span_text)[1])
    b = re.findall(r"[A-Za-z]+", rule_text)
    return len(a) == len(b) and all(sorted(x) == sorted(y) for x, y in zip(a, b, strict=True))
