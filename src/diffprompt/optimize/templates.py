"""Rendering of the optimizer's own prompts (``templates/optimize_*.j2``) and trace transcripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from diffprompt.templating import render

__all__ = ["render", "transcript"]


def transcript(messages: Sequence[Mapping[str, Any]], *, max_chars: int = 6000) -> str:
    """A compact, readable transcript of OpenAI-format messages (system prompt left out), truncated."""
    lines: list[str] = []
    for m in messages:
        role = str(m.get("role", "?"))
        if role == "system":
            continue
        content = m.get("content") or ""
        if not isinstance(content, str):
            content = json.dumps(content, default=str)
        if role == "tool":
            lines.append(f"TOOL RESULT: {content[:400]}")
            continue
        if content:
            lines.append(f"{role.upper()}: {content}")
        for call in m.get("tool_calls") or ():
            fn = call.get("function", call) if isinstance(call, Mapping) else {}
            lines.append(f"{role.upper()} CALLS {fn.get('name')}({fn.get('arguments', fn.get('args', ''))})")
    text = "\n".join(lines)
    if len(text) > max_chars:
        half = max_chars // 2
        text = text[:half] + "\n[...]\n" + text[-half:]
    return text
