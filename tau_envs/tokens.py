"""Token estimates of the simulated model (``ceil(chars / 4)``), shared by its HTTP server and chat model.

A leaf module: both ``tau_envs.serve`` and ``tau_envs.sim.chat_model`` import it, so neither imports
the other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def estimate_tokens(obj: Any) -> int:
    """``ceil(chars / 4)`` of the text in ``obj`` (strings, or JSON of anything else)."""
    if obj is None:
        return 0
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return math.ceil(len(text) / 4)


def prompt_tokens(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of a chat request: every message's content and tool calls, + the tool schemas."""
    n = sum(estimate_tokens(m.get("content")) + estimate_tokens(m.get("tool_calls")) + 3 for m in messages)
    return n + (estimate_tokens(list(tools)) if tools else 0)


def completion_tokens(message: Mapping[str, Any]) -> int:
    """Estimated tokens of one assistant message (content + tool calls)."""
    return estimate_tokens(message.get("content")) + estimate_tokens(message.get("tool_calls"))
