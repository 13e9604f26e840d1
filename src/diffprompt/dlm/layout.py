"""The conditioning layout: (prompt, spans to mask, traces with feedback) → DLM input ids, and back.

Sequence: ``[BOS] instruction  trace_1 … trace_k  [BOS] prompt`` where the prompt's chosen spans are
runs of the mask id (``round(original token length × factor)``, at least 1). Every piece (instruction,
each trace, each gap and each span of the prompt) is tokenized on its own, so a mask run never merges
with neighbouring text into one token. Bullet and heading markers (``- ``, ``1. ``, ``## ``) stay
visible; only the span's content is masked. When the whole exceeds the model's ``max_length`` the
traces are truncated (then dropped), never the prompt. A *draft* (``drafts``) puts a given text into a
span's run instead of masks (the run is the draft's length); its positions are ``Layout.fixed`` until
``remask`` turns some of them back into masks (the DLM editor's draft rows, ``diffprompt.dlm.drafts``).

``decode_candidate`` turns filled ids back into a prompt: EOS/pad (and any special) tokens emitted
inside a run are stripped, so a span can shrink or vanish; every unmasked byte of the prompt is kept
(``diffprompt.spans.replace_spans``). Works with the built-in tokenizer and HF tokenizers alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from diffprompt.dlm.base import DiffusionLM, DLTokenizer
from diffprompt.dlm.redact import redact
from diffprompt.errors import ModelError, ValidationError
from diffprompt.spans import replace_spans, split_marker, squash_whitespace, strip_marker
from diffprompt.templating import render
from diffprompt.types import PromptVersion, Span, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """One DLM input row and what is needed to decode it.

    ``runs`` maps each masked span id to its ``(start, end)`` token positions in ``ids``;
    ``prefixes`` holds the visible marker (``"- "``) kept in front of each masked span's content;
    ``fixed`` the run positions that hold given draft tokens (not to be sampled).
    """

    ids: tuple[int, ...]
    runs: Mapping[str, tuple[int, int]]
    prefixes: Mapping[str, str]
    prompt_start: int
    traces_used: int
    factor: float
    fixed: frozenset[int] = frozenset()

    @property
    def mask_positions(self) -> list[int]:
        """The run positions the sampler fills (every run position but the ``fixed`` draft tokens)."""
        return [i for s, e in self.runs.values() for i in range(s, e) if i not in self.fixed]

    def __len__(self) -> int:
        return len(self.ids)


def _content(msg: Mapping[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    text = str(content or "").strip()
    calls = []
    for call in msg.get("tool_calls") or ():
        fn = call.get("function", call) if isinstance(call, Mapping) else {}
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            args = json.dumps(args, sort_keys=True)
        calls.append(f"{fn.get('name', '?')}({args})")
    if calls:
        text = (text + " " if text else "") + "calls " + "; ".join(calls)
    return " ".join(text.split())


def render_trace(t: TraceWithFeedback, n: int, *, max_chars: int = 400) -> str:
    """One trace as text: outcome and feedback first (truncation keeps them), then the turns, redacted."""
    r = t.reward
    outcome = "no score" if r is None else f"{'failed' if r < 0.5 else 'succeeded'} (reward {r:.2f})"
    roles = {"user": "User", "assistant": "Agent", "tool": "Tool result"}
    messages = []
    for m in t.trace.messages:
        role = str(m.get("role", ""))
        if role in roles:
            text = _content(m)
            if text:
                messages.append({"role": roles[role], "text": text[:max_chars]})
    out = render("dlm_trace.j2", n=n, outcome=outcome, comments=list(t.comments), messages=messages)
    return redact(out)


def _split_marker(span: Span) -> tuple[str, str]:
    return split_marker(span.text) if span.kind in ("bullet", "heading") else ("", span.text)


def span_pieces(tok: DLTokenizer, span: Span) -> tuple[str, list[int], list[int]]:
    """``(marker, visible marker ids, content ids)`` of a span as the layout masks it.

    The marker's trailing space goes with the content (``"-"`` + ``" Obtain ..."``), so the content
    is tokenized as it is inside the whole span (byte-level BPEs merge the space into the next word);
    that is also how the built-in model saw bullets in training.
    """
    marker, content = _split_marker(span)
    vis = marker.rstrip()
    gap = marker[len(vis) :]
    vis_ids = tok.encode(vis, add_special_tokens=False) if vis else []
    return marker, vis_ids, tok.encode(gap + content, add_special_tokens=False)


def _boundary(tok: DLTokenizer) -> list[int]:
    for attr in ("bos_id", "bos_token_id"):
        v = getattr(tok, attr, None)
        if isinstance(v, int):
            return [v]
    return tok.encode("\n\n", add_special_tokens=False)


def build_layout(
    dlm: DiffusionLM,
    prompt: PromptVersion,
    span_ids: Sequence[str],
    traces: Sequence[TraceWithFeedback],
    *,
    factor: float = 1.0,
    k_traces: int = 3,
    trace_tokens: int = 160,
    feedback: Sequence[str] = (),
    min_mask: int = 1,
    min_runs: Mapping[str, int] | None = None,
    drafts: Mapping[str, str] | None = None,
) -> Layout:
    """Lay out one DLM input row (see the module docstring).

    ``min_runs`` gives a floor on the mask-run length of some spans (insertion slots: the new rule may be
    longer than the neighbour it was copied from; unused positions are filled with EOS and stripped).
    ``drafts`` maps some of ``span_ids`` to a text written into the run instead of masks: the span's
    visible marker stays, the draft's own leading marker is dropped, the run is the draft's token length
    and its positions are ``fixed``. Raises ``ValidationError`` for unknown span ids and ``ModelError``
    when the prompt with its mask runs alone does not fit ``dlm.max_length``.
    """
    tok = dlm.tokenizer
    by_id = {s.id: s for s in prompt.spans}
    unknown = [i for i in span_ids if i not in by_id]
    if unknown:
        raise ValidationError(f"unknown span ids {unknown}; use ids from prompt.spans")
    chosen = set(span_ids)
    drafts = {k: v for k, v in (drafts or {}).items() if squash_whitespace(strip_marker(v))}
    stray = [k for k in drafts if k not in chosen]
    if stray:
        raise ValidationError(f"drafts for spans {stray} that are not masked; draft only span_ids")
    fixed: list[int] = []
    bnd = _boundary(tok)
    # the prompt: gap / marker / span pieces, tokenized separately
    body: list[int] = []
    runs: dict[str, tuple[int, int]] = {}
    prefixes: dict[str, str] = {}
    pos = 0
    text = prompt.text
    for s in sorted(prompt.spans, key=lambda s: s.start):
        if s.start > pos:
            body += tok.encode(text[pos : s.start], add_special_tokens=False)
        if s.id in chosen:
            prefixes[s.id], vis_ids, content_ids = span_pieces(tok, s)
            body += vis_ids
            if s.id in drafts:  # the marker's trailing space goes with the content, as in span_pieces
                gap = prefixes[s.id][len(prefixes[s.id].rstrip()) :]
                draft = tok.encode(gap + squash_whitespace(strip_marker(drafts[s.id])), add_special_tokens=False)
                fixed += range(len(body), len(body) + len(draft))
            else:
                n = max(min_mask, (min_runs or {}).get(s.id, 0), round(len(content_ids) * factor))
                draft = [dlm.mask_id] * n
            runs[s.id] = (len(body), len(body) + len(draft))
            body += draft
        else:
            body += tok.encode(s.text, add_special_tokens=False)
        pos = s.end
    if pos < len(text):
        body += tok.encode(text[pos:], add_special_tokens=False)
    instr = tok.encode(
        render("dlm_instruction.j2", feedback=[redact(f) for f in feedback]),
        add_special_tokens=False,
    )
    room = dlm.max_length - len(body) - 2 * len(bnd)
    if room < 0:
        raise ModelError(
            f"prompt with its mask runs is {len(body)} tokens, over the DLM's max_length {dlm.max_length}; "
            "mask fewer spans, use a smaller factor, or a model with a longer context"
        )
    if len(instr) > room:
        instr = []  # the instruction goes before the prompt would be cut
    room -= len(instr)
    ctx: list[int] = []
    used = 0
    for i, t in enumerate(list(traces)[:k_traces]):
        if room <= 8:
            break
        ids = tok.encode("\n" + render_trace(t, i + 1), add_special_tokens=False)[: min(trace_tokens, room)]
        ctx += ids
        room -= len(ids)
        used += 1
    head = [*bnd, *instr, *ctx, *bnd]
    off = len(head)
    return Layout(
        ids=tuple(head + body),
        runs={k: (s + off, e + off) for k, (s, e) in runs.items()},
        prefixes=prefixes,
        prompt_start=off,
        traces_used=used,
        factor=factor,
        fixed=frozenset(p + off for p in fixed),
    )


def remask(layout: Layout, positions: Sequence[int], mask_id: int) -> Layout:
    """``layout`` with the draft tokens at ``positions`` (some of ``layout.fixed``) turned into masks."""
    stray = [p for p in positions if p not in layout.fixed]
    if stray:
        raise ValidationError(f"positions {stray} hold no draft token; remask only layout.fixed positions")
    ids = list(layout.ids)
    for p in positions:
        ids[p] = mask_id
    return replace(layout, ids=tuple(ids), fixed=layout.fixed - set(positions))


# a fill that runs into a new heading or bullet (" ## Refunds", ". - Each ...") stops there: the model
# has left the span it was asked to write
_RUNAWAY = re.compile(r"-?#{1,6}\s|(?<=[.!?])\s+[-*+]\s")


def _clean(text: str) -> str:
    text = " ".join(text.split())
    m = _RUNAWAY.search(text)
    return text[: m.start()].strip() if m else text


def decode_fills(dlm: DiffusionLM, layout: Layout, filled: Sequence[int]) -> dict[str, str]:
    """The new text of every masked span: specials (EOS, pad, mask) dropped, whitespace normalised."""
    drop = {dlm.eos_id, dlm.pad_id, dlm.mask_id}
    special = getattr(dlm.tokenizer, "special_ids", None)
    if special:
        drop |= set(special)
    out: dict[str, str] = {}
    for sid, (s, e) in layout.runs.items():
        ids = [int(i) for i in filled[s:e] if int(i) not in drop]
        content = _clean(dlm.tokenizer.decode(ids, skip_special_tokens=True)) if ids else ""
        out[sid] = layout.prefixes.get(sid, "") + content if content else ""
    return out


def decode_candidate(
    dlm: DiffusionLM, prompt: PromptVersion, layout: Layout, filled: Sequence[int]
) -> tuple[str, tuple[str, ...]]:
    """``(new prompt text, ids of spans whose text changed)``; unmasked spans stay byte-identical."""
    if len(filled) != len(layout.ids):
        raise ValidationError(f"filled row has {len(filled)} ids, layout has {len(layout.ids)}")
    fills = decode_fills(dlm, layout, filled)
    by_id = {s.id: s for s in prompt.spans}
    changed = {sid: t for sid, t in fills.items() if t != by_id[sid].text}
    new_text = replace_spans(prompt.text, prompt.spans, changed) if changed else prompt.text
    order = [s.id for s in prompt.spans if s.id in changed]
    return new_text, tuple(order)
