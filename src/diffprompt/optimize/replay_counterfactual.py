"""Counterfactual replay of recorded episodes, for agents without a user simulator.

For each recorded trace: start from the logged conversation prefix (everything up to the first user
message), serve it with the *candidate* system prompt to a tool-calling chat model, answer its tool
calls from the recording when the same call (name + arguments) was made there, feed the recorded
user turns in order after each assistant reply, and stop when the recorded user turns run out (or
after ``max_turns``). A judge (``optimize_counterfactual_judge.j2``) then scores the replayed
continuation against the recorded one and its outcome; the score in [0, 1] is the reward.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from diffprompt.optimize.replay import Case
from diffprompt.optimize.templates import render, transcript
from diffprompt.types import ReplayResult, TraceWithFeedback, Usage

Message = Mapping[str, Any]


class ToolChat(Protocol):
    """A tool-calling chat model: OpenAI-format messages + tool schemas → one assistant message."""

    def respond(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]: ...


class PolicyToolChat:
    """``ToolChat`` over an object with ``respond(messages, tools) -> message`` (``SimulatedPolicy``)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def respond(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]:
        msg = dict(self.policy.respond(list(messages), list(tools)))
        n_in = sum(len(str(m.get("content") or "")) for m in messages) // 4
        return msg, Usage(input_tokens=n_in, output_tokens=len(json.dumps(msg)) // 4)


class OpenAIToolChat:
    """``ToolChat`` over the OpenAI SDK (any compatible ``base_url``); usage metered when given a meter."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        meter: Any = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.model, self.base_url, self.api_key, self.meter, self.timeout_s = (
            model,
            base_url,
            api_key,
            meter,
            timeout_s,
        )
        self._client: Any = None

    def respond(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self.api_key or "none", base_url=self.base_url, timeout=self.timeout_s
            )
        if self.meter is not None:
            self.meter.check()
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "seed": seed,
            "temperature": 0.0,
        }
        if tools:
            kw["tools"] = [dict(t) for t in tools]
        resp = self._client.chat.completions.create(**kw)
        msg = resp.choices[0].message.model_dump(exclude_none=True)
        u = resp.usage
        n_in, n_out = (u.prompt_tokens or 0, u.completion_tokens or 0) if u is not None else (0, 0)
        usage = (
            self.meter.record(self.model, n_in, n_out)
            if self.meter is not None
            else Usage(input_tokens=n_in, output_tokens=n_out)
        )
        return msg, usage


def _call_key(name: str, args: Any) -> str:
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return f"{name}:{args}"
    return f"{name}:{json.dumps(args, sort_keys=True, default=str)}"


def recorded_tool_results(messages: Sequence[Message]) -> dict[str, str]:
    """``{call key: recorded result}`` for every tool call of a recorded conversation."""
    by_id: dict[str, str] = {}
    for m in messages:
        for c in m.get("tool_calls") or ():
            fn = c.get("function", {})
            by_id[str(c.get("id"))] = _call_key(str(fn.get("name")), fn.get("arguments", "{}"))
    out: dict[str, str] = {}
    for m in messages:
        if m.get("role") == "tool" and str(m.get("tool_call_id")) in by_id:
            out.setdefault(by_id[str(m.get("tool_call_id"))], str(m.get("content") or ""))
    return out


class CounterfactualReplay:
    """Replay recorded episodes with a candidate prompt; judged against the recorded outcome."""

    name = "counterfactual"

    def __init__(
        self, chat: ToolChat, judge: Any, *, tools: Sequence[Mapping[str, Any]] = (), max_turns: int = 12
    ) -> None:
        self.chat = chat
        self.judge = judge
        self.tools = list(tools)
        self.max_turns = max_turns

    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]:
        out = []
        for t in traces:
            msgs = [dict(m) for m in t.trace.messages]
            if any(m.get("role") == "user" for m in msgs):
                out.append(
                    Case(
                        id=t.trace.id,
                        replay_key=t.trace.replay_key,
                        trace_id=t.trace.id,
                        slice=str(t.trace.metadata.get("slice", "")),
                        data={"messages": msgs, "outcome": t.reward},
                    )
                )
        return out

    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult:
        recorded = [m for m in case.data["messages"] if m.get("role") != "system"]
        users = [m for m in recorded if m.get("role") == "user"]
        results = recorded_tool_results(recorded)
        convo: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}, dict(users[0])]
        next_user, usage, calls = 1, Usage(), 0
        for _ in range(self.max_turns):
            msg, u = self.chat.respond(convo, self.tools, seed=seed)
            usage, calls = usage + u, calls + 1
            msg.setdefault("role", "assistant")
            convo.append(msg)
            tool_calls = msg.get("tool_calls") or ()
            for c in tool_calls:
                fn = c.get("function", {})
                key = _call_key(str(fn.get("name")), fn.get("arguments", "{}"))
                content = results.get(
                    key, "Error: this call was not made in the recorded episode; no result."
                )
                convo.append({"role": "tool", "tool_call_id": c.get("id"), "content": content})
            if tool_calls:
                continue
            if next_user >= len(users):
                break
            convo.append(dict(users[next_user]))
            next_user += 1
        outcome = case.data.get("outcome")
        text = render(
            "optimize_counterfactual_judge.j2",
            prompt=system_prompt,
            recorded=transcript(recorded, max_chars=4000),
            outcome="unknown" if outcome is None else f"reward {outcome}",
            replayed=transcript(convo, max_chars=4000),
        )
        reply = self.judge.complete([{"role": "user", "content": text}], temperature=0.0)
        usage = usage + getattr(reply, "usage", Usage())
        score = parse_score(reply.text)
        return ReplayResult(
            case_id=case.id,
            version_id="",
            trial=trial,
            reward=score if score is not None else 0.0,
            error=None if score is not None else f"judge reply had no score: {reply.text[:200]!r}",
            usage=usage,
            model_calls=calls,
        )


def parse_score(reply: str) -> float | None:
    """The ``score`` of a judge's JSON reply, clamped to [0, 1]; None when absent."""
    m = re.search(r"\{.*\}", reply, re.DOTALL)
    if not m:
        return None
    try:
        v = json.loads(m.group(0)).get("score")
        return min(1.0, max(0.0, float(v)))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
