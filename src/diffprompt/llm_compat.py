"""``ChatOpenAI`` for any OpenAI-compatible server, with the request fixes that local servers need.

Built by ``diffprompt.llm.make_chat_model``; the class is defined on first use (importing
``langchain_openai`` is slow, and nothing here may run at import). What it changes in each request:

* ``tool_choice`` (``settings.tool_choice``, default ``"auto"``) whenever tools are bound and the
  caller set none: llama.cpp's server ignores ``tools`` without it, and LangChain's ``create_agent``
  never sends one;
* ``content: ""`` instead of ``null`` on assistant messages that carry tool calls (llama.cpp's
  server rejects ``null``; OpenAI accepts both);
* the token limit as ``max_tokens`` (LangChain sends ``max_completion_tokens``, which older servers
  ignore, so a reply could run for minutes); every request has one;
* ``extra_body`` merged into every request.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def compat_class() -> type:
    """The ``ChatOpenAI`` subclass (defined once, lazily)."""
    from langchain_openai import ChatOpenAI

    class CompatChatOpenAI(ChatOpenAI):  # type: ignore[misc]
        """``ChatOpenAI`` with ``default_tool_choice`` and the null-content / token-limit fixes."""

        default_tool_choice: str | None = "auto"

        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            return fix_payload(payload, self.default_tool_choice)

    return CompatChatOpenAI


def fix_payload(payload: dict[str, Any], tool_choice: str | None) -> dict[str, Any]:
    """The request body with the fixes above applied (pure; returns a new dict)."""
    out = dict(payload)
    if out.get("tools") and "tool_choice" not in out and tool_choice is not None:
        out["tool_choice"] = tool_choice
    if "max_completion_tokens" in out and "max_tokens" not in out:
        out["max_tokens"] = out.pop("max_completion_tokens")
    msgs = out.get("messages")
    if isinstance(msgs, list):
        fixed = []
        for m in msgs:
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("content") is None:
                m = {**m, "content": ""}
            fixed.append(m)
        out["messages"] = fixed
    return out
