"""Prompt → spans with stable ids; span replacement; span-level diffs. Pure functions.

A prompt is segmented into headings (markdown ``#`` lines), bullets (``-``, ``*``, ``+`` or
``1.`` items, with their indented continuation lines) and sentences (everything else, split at
sentence ends). Spans never include the whitespace between them, so replacing one span's text leaves
every other byte of the prompt untouched.

Span ids are ``sp_<hash of the span text>`` plus ``-<n>`` for the n-th repeat of the same text, so an
unchanged span keeps its id across versions even when its neighbours change, move or disappear.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from diffprompt.errors import ValidationError
from diffprompt.types import Span, SpanKind

# The one definition of a list marker (``-``, ``*``, ``+``, ``1.``, ``1)``) and a heading marker
# (``#`` .. ``######``). Every module that strips, keeps or compares markers uses the functions below.
BULLET_MARKER = r"[-*+]|\d{1,3}[.)]"
HEADING_MARKER = r"#{1,6}"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_BULLET = re.compile(rf"^(\s*)(?:{BULLET_MARKER})\s+\S")
_MARKER = re.compile(rf"^(\s*(?:{BULLET_MARKER}|{HEADING_MARKER}))(\s+)")
_BULLET_ONLY = re.compile(rf"^(\s*(?:{BULLET_MARKER}))(\s+)")
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and
# an upper-case letter, digit, quote or bracket. Abbreviations like "e.g." are protected below.
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|No|approx|incl)\.$", re.IGNORECASE)


def split_marker(text: str, *, headings: bool = True) -> tuple[str, str]:
    """``(marker, rest)`` with ``marker + rest == text``.

    ``marker`` is the leading list marker (``"- "``, ``"  12) "``) or, with ``headings``, the heading
    marker (``"## "``), including its indentation and the whitespace after it; ``""`` when the text
    starts with none (a marker needs whitespace after it: ``"-5 dollars"`` has none).
    """
    m = (_MARKER if headings else _BULLET_ONLY).match(text)
    return (m.group(0), text[m.end() :]) if m else ("", text)


def strip_marker(text: str, *, headings: bool = True) -> str:
    """``text`` without its leading list (or heading) marker; see ``split_marker``."""
    return split_marker(text, headings=headings)[1]


def squash_whitespace(text: str) -> str:
    """Runs of whitespace as one space, no leading or trailing whitespace."""
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """The comparison form of a span text: marker stripped, whitespace squashed, lower case.

    Two texts that differ only in bullet style, indentation, line wrapping or case normalise equally
    (the rejected-edit memory and duplicate checks compare this form). Idempotent.
    """
    out = text
    while (rest := strip_marker(out)) != out:  # "- 1. x" loses both markers: idempotent
        out = rest
    return squash_whitespace(out).lower()


def span_id(text: str, occurrence: int = 0) -> str:
    """The stable id of a span with this text, for its ``occurrence``-th repeat in the prompt."""
    digest = hashlib.sha1(squash_whitespace(text).encode("utf-8")).hexdigest()[:12]
    return f"sp_{digest}" if occurrence == 0 else f"sp_{digest}-{occurrence}"


def content_hash(text: str) -> str:
    """SHA-256 of a prompt's exact text (versions with equal text share it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _line_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, ``end`` excluding the newline."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        out.append((pos, pos + len(stripped)))
        pos += len(line)
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] into sentence (start, end) pairs."""
    out: list[tuple[int, int]] = []
    cur = start
    for m in _SENT_END.finditer(text, start, end):
        head = text[cur : m.start()]
        if _ABBREV.search(head):
            continue
        closing = len(m.group(0)) - len(m.group(0).lstrip("\"')]"))  # keep closing quotes
        s, e = _trim(text, cur, m.start() + closing)
        if e > s:
            out.append((s, e))
        cur = m.end()
    s, e = _trim(text, cur, end)
    if e > s:
        out.append((s, e))
    return out


def _blocks(text: str) -> list[tuple[int, int, SpanKind]]:
    """Raw (start, end, kind) ranges before sentence splitting of paragraphs."""
    lines = _line_offsets(text)
    out: list[tuple[int, int, SpanKind]] = []
    para: list[tuple[int, int]] = []
    bullet: tuple[int, int, int] | None = None  # start, end, indent

    def flush_para() -> None:
        if para:
            out.append((para[0][0], para[-1][1], "block"))
            para.clear()

    def flush_bullet() -> None:
        nonlocal bullet
        if bullet is not None:
            out.append((bullet[0], bullet[1], "bullet"))
            bullet = None

    for ls, le in lines:
        line = text[ls:le]
        if not line.strip():
            flush_para()
            flush_bullet()
            continue
        if _HEADING.match(line):
            flush_para()
            flush_bullet()
            out.append((ls, le, "heading"))
            continue
        m = _BULLET.match(line)
        if m:
            flush_para()
            flush_bullet()
            bullet = (ls, le, len(m.group(1)))
            continue
        indent = len(line) - len(line.lstrip())
        if bullet is not None and indent > bullet[2]:
            bullet = (bullet[0], le, bullet[2])  # continuation line of the bullet
            continue
        flush_bullet()
        para.append((ls, le))
    flush_para()
    flush_bullet()
    return out


def segment(text: str) -> tuple[Span, ...]:
    """Segment a prompt into spans with stable ids, in text order.

    Invariant: ``text[s.start:s.end] == s.text`` for every span, spans do not overlap, and every
    non-whitespace character of ``text`` belongs to exactly one span.
    """
    ranges: list[tuple[int, int, SpanKind]] = []
    for s, e, kind in _blocks(text):
        if kind == "block":
            ranges.extend((a, b, "sentence") for a, b in _sentences(text, s, e))
        else:
            a, b = _trim(text, s, e)
            ranges.append((a, b, kind))
    seen: dict[str, int] = {}
    spans = []
    for s, e, kind in ranges:
        piece = text[s:e]
        key = squash_whitespace(piece)
        n = seen.get(key, 0)
        seen[key] = n + 1
        spans.append(Span(id=span_id(piece, n), start=s, end=e, text=piece, kind=kind))
    return tuple(spans)


def replace_spans(text: str, spans: Sequence[Span], replacements: Mapping[str, str]) -> str:
    """Return ``text`` with the spans named in ``replacements`` replaced; all other bytes unchanged.

    A replacement of ``""`` deletes the span (and the whitespace run that followed it, so no blank
    gap is left). Raises ``ValidationError`` for an id that is not among ``spans``.
    """
    by_id = {s.id: s for s in spans}
    unknown = set(replacements) - set(by_id)
    if unknown:
        raise ValidationError(f"unknown span ids {sorted(unknown)}; use ids from segment(text)")
    out: list[str] = []
    pos = 0
    for s in sorted((by_id[i] for i in replacements), key=lambda s: s.start):
        out.append(text[pos : s.start])
        new = replacements[s.id]
        pos = s.end
        if not new.strip():
            # drop the following horizontal whitespace, or one newline, so deletions leave no hole
            m = re.match(r"[ \t]+|\r?\n", text[pos:])
            if m:
                pos += m.end()
        else:
            out.append(new)
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str, spans: Sequence[Span], span_ids: Sequence[str], token: str = "[MASK]") -> str:
    """Human-readable masked prompt: each chosen span replaced by ``token`` (for display and reports)."""
    return replace_spans(text, spans, {i: token for i in span_ids})


ChangeKind = Literal["unchanged", "changed", "added", "removed"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanChange:
    """One row of a span-level diff."""

    kind: ChangeKind
    old: Span | None
    new: Span | None


def diff_spans(old: Sequence[Span], new: Sequence[Span]) -> list[SpanChange]:
    """Span-level diff: align by id; replaced runs pair old/new spans positionally as ``changed``."""
    a = [s.id for s in old]
    b = [s.id for s in new]
    out: list[SpanChange] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(SpanChange(kind="unchanged", old=old[i], new=new[j]) for i, j in zip(
                range(i1, i2), range(j1, j2), strict=True))
            continue
        olds, news = list(old[i1:i2]), list(new[j1:j2])
        k = min(len(olds), len(news)) if tag == "replace" else 0
        out.extend(SpanChange(kind="changed", old=olds[i], new=news[i]) for i in range(k))
        out.extend(SpanChange(kind="removed", old=s, new=None) for s in olds[k:])
        out.extend(SpanChange(kind="added", old=None, new=s) for s in news[k:])
    return out


def changed_span_ids(old_text: str, new_text: str) -> tuple[str, ...]:
    """Ids (in the old text) of spans that a new text changed or removed."""
    return tuple(
        c.old.id for c in diff_spans(segment(old_text), segment(new_text)) if c.old and c.kind != "unchanged"
    )


def render_diff(old: Sequence[Span], new: Sequence[Span], *, context: bool = False) -> str:
    """A plain-text span diff (``-`` old, ``+`` new; unchanged spans only with ``context``)."""
    lines: list[str] = []
    for c in diff_spans(old, new):
        if c.kind == "unchanged":
            if context and c.new:
                lines.append(f"  {c.new.text}")
            continue
        if c.old:
            lines.append(f"- [{c.old.id}] {c.old.text}")
        if c.new:
            lines.append(f"+ [{c.new.id}] {c.new.text}")
    return "\n".join(lines)
