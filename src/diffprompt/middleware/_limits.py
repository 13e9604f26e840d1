"""Size caps for one recorded live trace (``TraceLimits``) and the truncation that enforces them.

A runaway agent (a model looping on tool calls, a tool returning a megabyte) must not write an
unbounded row. ``cap`` works on the OpenAI chat-format messages of a finished run:

1. every text (message content, text parts, tool-call arguments) longer than ``max_message_chars``
   is cut there and ends with ``…[diffprompt: N chars truncated]``;
2. if the trace still has more than ``max_messages`` messages or ``max_chars`` characters, the
   messages up to and including the first user message (the replay prefix) and the most recent ones
   that fit are kept, and one system message
   ``[diffprompt: N messages (C chars) truncated from the middle of this trace]`` replaces the rest
   (tool results whose call was dropped are dropped with it).

What was cut is reported back (``Trace.metadata["truncated"]``). The defaults are generous: a normal
conversation is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.errors import ConfigError

TEXT_MARK = "…[diffprompt: {n} chars truncated]"
MIDDLE_MARK = "[diffprompt: {n} messages ({c} chars) truncated from the middle of this trace]"


@dataclass(frozen=True, kw_only=True, slots=True)
class TraceLimits:
    """Caps on one recorded trace; ``ConfigError`` at construction for values that cannot work.

    ``max_messages`` (>= 4) and ``max_chars`` count the trace as stored (system message included);
    ``max_message_chars`` caps any single text and must leave room for two of them in ``max_chars``.
    """

    max_messages: int = 2_000
    max_chars: int = 2_000_000
    max_message_chars: int = 200_000

    def __post_init__(self) -> None:
        for name in ("max_messages", "max_chars", "max_message_chars"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"TraceLimits.{name} must be a positive integer, got {v!r}")
        if self.max_messages < 4:
            raise ConfigError(f"TraceLimits.max_messages must be at least 4, got {self.max_messages}")
        if self.max_chars < 2 * self.max_message_chars:
            raise ConfigError(
                f"TraceLimits.max_chars ({self.max_chars}) must be at least twice max_message_chars "
                f"({self.max_message_chars}); raise max_chars or lower max_message_chars"
            )


def _cut(text: str, limit: int) -> tuple[str, int]:
    if len(text) <= limit:
        return text, 0
    return text[:limit] + TEXT_MARK.format(n=len(text) - limit), len(text) - limit


def _cut_message(m: Mapping[str, Any], limit: int) -> tuple[dict[str, Any], int]:
    out, cut = dict(m), 0
    content = out.get("content")
    if isinstance(content, str):
        out["content"], cut = _cut(content, limit)
    elif isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, Mapping) and isinstance(p.get("text"), str):
                text, n = _cut(p["text"], limit)
                p, cut = {**p, "text": text}, cut + n
            parts.append(p)
        out["content"] = parts
    calls = out.get("tool_calls")
    if isinstance(calls, list):
        new_calls = []
        for c in calls:
            fn = c.get("function") if isinstance(c, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("arguments"), str):
                args, n = _cut(fn["arguments"], limit)
                c, cut = {**c, "function": {**fn, "arguments": args}}, cut + n
            new_calls.append(c)
        out["tool_calls"] = new_calls
    return out, cut


def size(m: Mapping[str, Any]) -> int:
    """Characters of text in one message (content, text parts, tool-call names and arguments)."""
    content, n = m.get("content"), 0
    if isinstance(content, str):
        n += len(content)
    elif isinstance(content, list):
        n += sum(len(p["text"]) for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    for c in m.get("tool_calls") or ():
        fn = c.get("function") if isinstance(c, Mapping) else None
        if isinstance(fn, Mapping):
            n += len(str(fn.get("name") or "")) + len(str(fn.get("arguments") or ""))
    return n


def _head_len(msgs: Sequence[Mapping[str, Any]]) -> int:
    """Messages up to and including the first user message (the replay prefix)."""
    for i, m in enumerate(msgs):
        if m.get("role") == "user":
            return i + 1
    return min(1, len(msgs))


def cap(
    messages: Sequence[Mapping[str, Any]], limits: TraceLimits
) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """``messages`` within ``limits`` and what was cut (None when nothing was)."""
    msgs, cut_chars, cut_msgs = [], 0, 0
    for m in messages:
        out, n = _cut_message(m, limits.max_message_chars)
        msgs.append(out)
        cut_chars, cut_msgs = cut_chars + n, cut_msgs + (n > 0)
    sizes = [size(m) for m in msgs]
    dropped, dropped_chars = 0, 0
    if len(msgs) > limits.max_messages or sum(sizes) > limits.max_chars:
        h = _head_len(msgs)
        # the marker's own length is small next to any budget that passed validation
        room_n, room_c = limits.max_messages - h - 1, limits.max_chars - sum(sizes[:h]) - 100
        start = len(msgs)
        while start > h and room_n > 0 and room_c >= sizes[start - 1]:
            start -= 1
            room_n, room_c = room_n - 1, room_c - sizes[start]
        while start < len(msgs) and msgs[start].get("role") == "tool":  # its call was dropped
            start += 1
        dropped, dropped_chars = start - h, sum(sizes[h:start])
        marker = {"role": "system", "content": MIDDLE_MARK.format(n=dropped, c=dropped_chars)}
        msgs = [*msgs[:h], marker, *msgs[start:]]
    if not (cut_msgs or dropped):
        return msgs, None
    return msgs, {
        "messages_dropped": dropped,
        "chars_dropped": dropped_chars + cut_chars,
        "messages_cut": cut_msgs,
    }
