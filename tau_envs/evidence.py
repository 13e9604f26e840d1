"""The environment's evidence about one τ episode: what the agent changed versus what was expected.

This is what a real τ evaluator can show a judge — it needs the task (its expected actions), the
domain's tools and initial database, and the recorded conversation, and nothing of the policy:

- the agent's tool calls that *changed the database* (a call is a write when replaying it changed the
  DB — no list of write tools is assumed), matched against the expected actions' writes: writes the
  agent made that were not expected, expected writes it never made, and writes of the same tool with
  other arguments (with the differing arguments);
- the database difference: leaf fields where the agent's final DB differs from the expected one;
- the required outputs the agent never said.

``tau_evidence(domain, task, messages)`` costs two replays of a fresh DB (the agent's calls and the
expected actions) plus one hash per call; it never raises for odd messages (unparseable arguments
are treated as empty).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tau_envs.env import outputs_found
from tau_envs.hashing import db_hash
from tau_envs.types import TRANSFER_TOOL, Action, Task

DiffKind = Literal["unexpected", "missing", "different"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Call:
    """One executed tool call of the agent: its position in the messages and its observation."""

    index: int  # index of the assistant message that made the call
    name: str
    args: Mapping[str, Any]
    observation: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionDiff:
    """One write that differs from the expected ones.

    ``unexpected``: the agent made it, no expected write of that tool is left to pair it with;
    ``missing``: expected, the agent never made it; ``different``: same tool, other arguments
    (``fields`` = ``(argument, agent's value, expected value)``).
    """

    kind: DiffKind
    name: str
    args: Mapping[str, Any]
    expected: Mapping[str, Any] | None = None
    fields: tuple[tuple[str, Any, Any], ...] = ()
    index: int = -1  # the agent's assistant message (unexpected / different), -1 for missing


@dataclass(frozen=True, kw_only=True, slots=True)
class DbChange:
    """A leaf where the agent's final database differs from the expected final database."""

    path: tuple[str, ...]
    actual: Any
    expected: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    """Everything the environment can say about an episode (see the module docstring)."""

    calls: tuple[Call, ...]
    actions: tuple[ActionDiff, ...]
    db: tuple[DbChange, ...]
    missing_outputs: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """The episode matches the expected outcome (no write, DB or output difference)."""
        return not (self.actions or self.db or self.missing_outputs)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def agent_calls(messages: Sequence[Mapping[str, Any]]) -> list[Call]:
    """The tool calls that were executed (answered by a tool message), in order."""
    pending: dict[str, tuple[int, str, dict[str, Any]]] = {}
    order: list[str] = []
    answers: dict[str, str] = {}
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            for j, tc in enumerate(m.get("tool_calls") or ()):
                fn = tc.get("function", tc)
                raw = fn.get("arguments", fn.get("args", {}))
                try:
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
                except (ValueError, TypeError):
                    args = {}
                cid = str(tc.get("id") or f"call_{i}_{j}")
                pending[cid] = (i, str(fn.get("name", "")), args if isinstance(args, dict) else {})
                order.append(cid)
        elif m.get("role") == "tool":
            answers[str(m.get("tool_call_id", ""))] = _text(m.get("content"))
    return [
        Call(index=pending[c][0], name=pending[c][1], args=pending[c][2], observation=answers[c])
        for c in order
        if c in answers
    ]


def observed(call: Call) -> dict[str, Any] | None:
    """The call's observation as a JSON object (a record the tool returned), else None."""
    try:
        obj = json.loads(call.observation)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def user_texts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The user's messages."""
    return [t for m in messages if m.get("role") == "user" and (t := _text(m.get("content")))]


def agent_texts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The agent's text replies."""
    return [t for m in messages if m.get("role") == "assistant" and (t := _text(m.get("content")))]


def _writes(tools: Any, db: dict[str, Any], steps: Sequence[tuple[int, str, Mapping[str, Any]]]) -> list[int]:
    """Run ``steps`` on ``db``; positions of the steps that changed it."""
    out, before = [], db_hash(db)
    for k, (_, name, args) in enumerate(steps):
        if name == TRANSFER_TOOL:
            continue
        tools.invoke(db, name, json.loads(json.dumps(dict(args))))
        after = db_hash(db)
        if after != before:
            out.append(k)
        before = after
    return out


def _canon(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=str)


def field_diffs(agent: Mapping[str, Any], expected: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    """``(argument, agent's value, expected value)`` for every argument whose values differ."""
    keys = list(dict.fromkeys([*expected, *agent]))
    return tuple(
        (k, agent.get(k), expected.get(k))
        for k in keys
        if _canon({"v": agent.get(k)}) != _canon({"v": expected.get(k)})
    )


def _pair(
    mine: list[tuple[int, str, Mapping[str, Any]]], gold: list[tuple[int, str, Mapping[str, Any]]]
) -> list[ActionDiff]:
    left = list(gold)
    unmatched = []
    for call in mine:  # exact matches first
        hit = next((g for g in left if g[1] == call[1] and _canon(g[2]) == _canon(call[2])), None)
        if hit is None:
            unmatched.append(call)
        else:
            left.remove(hit)
    out: list[ActionDiff] = []
    for idx, name, args in unmatched:
        same = [g for g in left if g[1] == name]
        if same:  # the expected write of that tool with the fewest differing arguments
            g = min(same, key=lambda s: len(field_diffs(args, s[2])))
            left.remove(g)
            out.append(ActionDiff(kind="different", name=name, args=args, expected=g[2],
                                  fields=field_diffs(args, g[2]), index=idx))
        else:
            out.append(ActionDiff(kind="unexpected", name=name, args=args, index=idx))
    out.extend(ActionDiff(kind="missing", name=name, args=args) for _, name, args in left)
    return out


def _db_diff(actual: Any, expected: Any, path: tuple[str, ...], out: list[DbChange], limit: int) -> None:
    if len(out) >= limit or actual == expected:
        return
    if isinstance(actual, dict) and isinstance(expected, dict):
        for k in dict.fromkeys([*expected, *actual]):
            _db_diff(actual.get(k), expected.get(k), (*path, str(k)), out, limit)
        return
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _db_diff(a, e, (*path, str(i)), out, limit)
        return
    out.append(DbChange(path=path, actual=actual, expected=expected))


def tau_evidence(
    domain: Any, task: Task, messages: Sequence[Mapping[str, Any]], *, db_limit: int = 12
) -> Evidence:
    """The evidence for ``task`` given the recorded ``messages`` (see the module docstring).

    ``domain`` needs ``fresh_db()`` and ``tools`` (a ``tau_envs.domain.Domain``); its policy and rules
    are not read.
    """
    calls = agent_calls(messages)
    mine_steps = [(c.index, c.name, c.args) for c in calls]
    gold_steps = [(-1, a.name, a.kwargs) for a in task.actions if isinstance(a, Action)]
    mine_db, gold_db = domain.fresh_db(), domain.fresh_db()
    mine_w = [mine_steps[k] for k in _writes(domain.tools, mine_db, mine_steps)]
    gold_w = [gold_steps[k] for k in _writes(domain.tools, gold_db, gold_steps)]
    changes: list[DbChange] = []
    _db_diff(mine_db, gold_db, (), changes, db_limit)
    found = outputs_found(task.outputs, agent_texts(messages))
    return Evidence(
        calls=tuple(calls),
        actions=tuple(_pair(mine_w, gold_w)),
        db=tuple(changes),
        missing_outputs=tuple(o for o, ok in found.items() if not ok),
    )
