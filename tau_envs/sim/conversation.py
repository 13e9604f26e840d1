"""A read-only view of an OpenAI-format conversation, and the facts the simulated agent extracts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

USER_ID = re.compile(r"\b[a-z]+_[a-z]+_\d{4}\b")
RES_ID = re.compile(r"\b(?!HAT\d{3,4}\b)(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b")
PAYMENT_ID = re.compile(r"\b(?:credit_card|gift_card|certificate|paypal)_\d+\b")
FLIGHT = re.compile(r"\bHAT\d{3,4}\b")
DATE = re.compile(r"\b2024-\d{2}-\d{2}\b")
AIRPORT = re.compile(r"\b[A-Z]{3}\b")
PERSON = re.compile(r"\b([A-Z][a-z]+) ([A-Z][a-z]+)\s*(?:,\s*|\(\s*)?(?:born\s+)?(\d{4}-\d{2}-\d{2})")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
ORDER_ID = re.compile(r"#W\d{7}\b")
ITEM_ID = re.compile(r"\b\d{10}\b")
ZIP = re.compile(r"\b\d{5}\b")

CONFIRM_MARK = "(yes/no)"
YES = re.compile(r"\b(yes|yeah|yep|sure|correct|go ahead|please do|confirm(ed)?|proceed)\b", re.I)
NO = re.compile(r"^\s*no\b|\b(don'?t|do not|changed my mind|not proceed|cancel that|never mind)\b", re.I)


@dataclass(frozen=True)
class Call:
    """One executed tool call and its observation ('' when not answered yet)."""

    name: str
    args: Mapping[str, Any]
    observation: str

    @property
    def ok(self) -> bool:
        """The tool succeeded."""
        return bool(self.observation) and not self.observation.startswith(("Error", "Unknown action"))

    def json(self) -> Any:
        """The observation parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.observation)
        except ValueError:
            return None


@dataclass(frozen=True)
class Conversation:
    """System prompt, user texts, assistant texts and tool calls of a message list."""

    system: str
    users: tuple[str, ...]
    assistants: tuple[str, ...]
    calls: tuple[Call, ...]
    last_role: str
    tool_names: frozenset[str] = field(default_factory=frozenset)

    @property
    def user_text(self) -> str:
        """Every user message, joined."""
        return "\n".join(self.users)

    @property
    def last_user(self) -> str:
        """The most recent user message ('' when none)."""
        return self.users[-1] if self.users else ""

    @property
    def last_assistant(self) -> str:
        """The most recent assistant text ('' when none)."""
        return self.assistants[-1] if self.assistants else ""

    def called(self, name: str, **args: Any) -> Call | None:
        """The latest call of ``name`` whose arguments include ``args``."""
        for c in reversed(self.calls):
            if c.name == name and all(c.args.get(k) == v for k, v in args.items()):
                return c
        return None

    def asked_confirmation(self) -> bool:
        """The agent's last text asked for a yes/no confirmation."""
        return CONFIRM_MARK in self.last_assistant

    def confirmation(self) -> str | None:
        """'yes' / 'no' when the last user message answers a confirmation question, else None."""
        if not self.asked_confirmation() or self.last_role != "user":
            return None
        if NO.search(self.last_user):
            return "no"
        return "yes" if YES.search(self.last_user) else None

    def last(self, pattern: re.Pattern[str]) -> str | None:
        """The last match of ``pattern`` in the user's messages."""
        found = pattern.findall(self.user_text)
        return found[-1] if found else None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def parse(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()) -> Conversation:
    """Build the view from OpenAI chat messages (system/user/assistant with tool_calls/tool)."""
    system, users, assistants = [], [], []
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    order: list[str] = []
    answers: dict[str, str] = {}
    last_role = ""
    for m in messages:
        role = m.get("role", "")
        if role in ("system", "developer"):
            system.append(_text(m.get("content")))
            continue
        last_role = role
        if role == "user":
            users.append(_text(m.get("content")))
        elif role == "assistant":
            text = _text(m.get("content"))
            if text:
                assistants.append(text)
            for i, tc in enumerate(m.get("tool_calls") or []):
                fn = tc.get("function", tc)
                raw = fn.get("arguments", fn.get("args", {}))
                try:
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
                except ValueError:
                    args = {}
                cid = str(tc.get("id") or f"call_{len(order)}_{i}")
                pending[cid] = (str(fn.get("name", "")), args if isinstance(args, dict) else {})
                order.append(cid)
        elif role == "tool":
            answers[str(m.get("tool_call_id", ""))] = _text(m.get("content"))
    calls = tuple(Call(pending[c][0], pending[c][1], answers.get(c, "")) for c in order)
    names = frozenset(str(t.get("function", t).get("name", "")) for t in tools)
    return Conversation("\n\n".join(system), tuple(users), tuple(assistants), calls, last_role, names)
