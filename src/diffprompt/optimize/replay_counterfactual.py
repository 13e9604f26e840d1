"""Counterfactual replay of one recorded conversation: the target model and the recorded tools.

The building blocks of ``--env recorded`` (``optimize.replay_recorded``):

* ``ToolChat``: a tool-calling chat model — OpenAI-format messages + tool schemas in, one assistant
  message out. ``OpenAIToolChat`` (any OpenAI-compatible server, with the local-server fixes: a token
  limit, ``tool_choice`` with tools, no ``content: null``) and ``PolicyToolChat`` (an in-process
  policy object, e.g. the simulated τ model or a test fake).
* ``replay_conversation``: from the recorded prefix (everything up to the first user message) with a
  given system prompt, let the target answer; serve its tool calls from the recording when the same
  call (name + arguments) was made there, else from a live toolkit when given, else an error result;
  feed the recorded user turns in order after each text reply. Garbage from the model ends the
  replay as a counted outcome with its reason — ``empty_reply`` (no text, no tool call),
  ``malformed_tool_call`` (arguments that are not a JSON object), ``context_overflow``,
  ``model_error`` — never an exception and never a success.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from diffprompt.types import Usage

Message = Mapping[str, Any]
Outcome = Literal["ok", "empty_reply", "malformed_tool_call", "context_overflow", "model_error", "max_steps"]
GARBAGE: frozenset[str] = frozenset({"empty_reply", "malformed_tool_call", "context_overflow", "model_error"})
NO_RESULT = "Error: this call was not made in the recorded conversation; no result is available."


class ToolChat(Protocol):
    """A tool-calling chat model: OpenAI-format messages + tool schemas → one assistant message."""

    def respond(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]:
        """One assistant message (``content``, optional ``tool_calls``) and its usage.

        Raises ``ContextOverflow`` when the request does not fit the model's context and
        ``ModelError`` for any other failed call.
        """
        ...


class ContextOverflow(Exception):
    """The conversation does not fit the model's context window."""


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
        settings: Any = None,
    ) -> None:
        from diffprompt.llm import ModelSettings

        self.model, self.base_url, self.api_key, self.meter = model, base_url, api_key, meter
        self.settings = settings or ModelSettings()
        self._client: Any = None

    def _sdk(self) -> Any:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self.api_key or "none",
                base_url=self.base_url,
                timeout=self.settings.timeout_s,
                max_retries=self.settings.max_retries,
            )
        return self._client

    def respond(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]:
        import openai

        from diffprompt.errors import ModelError

        if self.meter is not None:
            self.meter.check()
        msgs = [
            {**m, "content": ""} if m.get("role") == "assistant" and m.get("content") is None else dict(m)
            for m in messages
        ]
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": msgs,
            "seed": seed,
            "temperature": 0.0,
            "max_tokens": self.settings.max_tokens,
        }
        if tools:
            kw["tools"] = [dict(t) for t in tools]
            if self.settings.tool_choice is not None:
                kw["tool_choice"] = self.settings.tool_choice
        if self.settings.extra_body:
            kw["extra_body"] = dict(self.settings.extra_body)
        try:
            resp = self._sdk().chat.completions.create(**kw)
        except openai.BadRequestError as exc:
            text = str(exc).lower()
            if "context" in text or "too long" in text or ("maximum" in text and "token" in text):
                raise ContextOverflow(str(exc)[:300]) from exc
            raise ModelError(f"{self.model} rejected the request: {exc}") from exc
        except openai.OpenAIError as exc:
            from diffprompt.urls import mask_url, scrub

            raise ModelError(
                f"{self.model} at {mask_url(str(self.base_url))} failed: "
                f"{type(exc).__name__}: {scrub(str(exc), self.base_url)}"
            ) from exc
        if not resp.choices:
            raise ModelError(f"{self.model} returned no choices")
        msg = resp.choices[0].message.model_dump(exclude_none=True)
        if resp.choices[0].finish_reason:
            msg["finish_reason"] = resp.choices[0].finish_reason
        u = resp.usage
        n_in, n_out = (u.prompt_tokens or 0, u.completion_tokens or 0) if u is not None else (0, 0)
        usage = (
            self.meter.record(self.model, n_in, n_out)
            if self.meter is not None
            else Usage(input_tokens=n_in, output_tokens=n_out)
        )
        return msg, usage


def call_key(name: str, args: Any) -> str:
    """``name:canonical JSON args`` — the identity of a tool call for matching against the recording."""
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
            by_id[str(c.get("id"))] = call_key(str(fn.get("name")), fn.get("arguments", "{}"))
    out: dict[str, str] = {}
    for m in messages:
        if m.get("role") == "tool" and str(m.get("tool_call_id")) in by_id:
            out.setdefault(by_id[str(m.get("tool_call_id"))], str(m.get("content") or ""))
    return out


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def infer_tool_schemas(conversations: Sequence[Sequence[Message]]) -> list[dict[str, Any]]:
    """OpenAI tool schemas inferred from the calls recorded in ``conversations`` (name, argument types).

    For recordings that kept no schemas: every argument seen becomes a property typed from its
    recorded values; an argument present in every call of the tool is required.
    """
    seen: dict[str, list[dict[str, Any]]] = {}
    for msgs in conversations:
        for m in msgs:
            for c in m.get("tool_calls") or ():
                fn = c.get("function", {})
                args = fn.get("arguments", "{}")
                try:
                    parsed = json.loads(args) if isinstance(args, str) else dict(args)
                except (json.JSONDecodeError, TypeError, ValueError):
                    parsed = {}
                seen.setdefault(str(fn.get("name")), []).append(parsed if isinstance(parsed, dict) else {})
    out = []
    for name, calls in sorted(seen.items()):
        props: dict[str, dict[str, str]] = {}
        for args in calls:
            for k, v in args.items():
                props.setdefault(k, {"type": _JSON_TYPES.get(type(v), "string")})
        required = sorted(k for k in props if all(k in a for a in calls))
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"{name} (as recorded)",
                    "parameters": {"type": "object", "properties": props, "required": required},
                },
            }
        )
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Replayed:
    """One counterfactual replay: the new turns (after the shared prefix), how it ended, what it cost."""

    turns: tuple[dict[str, Any], ...]
    outcome: Outcome
    reason: str = ""
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    tool_matches: int = 0
    tool_misses: int = 0
    truncated: int = 0  # replies cut off by the token limit

    @property
    def garbage(self) -> bool:
        return self.outcome in GARBAGE


def prefix_and_users(recorded: Sequence[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the shared prefix up to and including the first user message, the later user messages)."""
    convo = [dict(m) for m in recorded if m.get("role") != "system"]
    first = next((i for i, m in enumerate(convo) if m.get("role") == "user"), None)
    if first is None:
        return [], []
    later = [m for m in convo[first + 1 :] if m.get("role") == "user"]
    return convo[: first + 1], later


def _bad_call(msg: Mapping[str, Any]) -> str | None:
    for c in msg.get("tool_calls") or ():
        fn = c.get("function") or {}
        if not fn.get("name"):
            return "a tool call without a name"
        args = fn.get("arguments", "{}")
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError:
            return f"tool call {fn.get('name')} has arguments that are not JSON: {str(args)[:120]!r}"
        if not isinstance(parsed, dict):
            return f"tool call {fn.get('name')} has arguments that are not a JSON object: {str(args)[:120]!r}"
    return None


def replay_conversation(
    chat: ToolChat,
    system_prompt: str,
    recorded: Sequence[Message],
    *,
    tools: Sequence[Mapping[str, Any]],
    seed: int,
    max_steps: int = 8,
    max_user_turns: int = 1,
    live_tools: Mapping[str, Callable[..., Any]] | None = None,
) -> Replayed:
    """Replay ``recorded`` with ``system_prompt``; see the module docstring.

    ``max_steps`` bounds model calls; ``max_user_turns`` bounds how many recorded user messages are
    fed after the first (0: judge the answer to the opening message only).
    """
    from diffprompt.errors import BudgetExceeded

    prefix, later = prefix_and_users(recorded)
    results = recorded_tool_results(recorded)
    convo: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}, *prefix]
    start = len(convo)
    usage, calls, matches, misses, truncated = Usage(), 0, 0, 0, 0
    next_user = 0

    def done(outcome: Outcome, reason: str = "") -> Replayed:
        return Replayed(
            turns=tuple(convo[start:]),
            outcome=outcome,
            reason=reason,
            usage=usage,
            model_calls=calls,
            tool_matches=matches,
            tool_misses=misses,
            truncated=truncated,
        )

    for _ in range(max_steps):
        try:
            msg, u = chat.respond(convo, tools, seed=seed)
        except BudgetExceeded:
            raise
        except ContextOverflow as exc:
            return done("context_overflow", f"the conversation does not fit the target's context: {exc}")
        except Exception as exc:  # a failed target call is a recorded outcome, not a crash
            return done("model_error", f"{type(exc).__name__}: {exc}"[:300])
        calls += 1
        usage = usage + u
        truncated += msg.pop("finish_reason", None) == "length"
        msg = {k: v for k, v in msg.items() if k in ("role", "content", "tool_calls")}
        msg["role"] = "assistant"
        msg["content"] = msg.get("content") or ""
        convo.append(msg)
        bad = _bad_call(msg)
        if bad:
            return done("malformed_tool_call", bad)
        tool_calls = msg.get("tool_calls") or ()
        if not tool_calls and not str(msg["content"]).strip():
            return done("empty_reply", "the target replied with neither text nor a tool call")
        for c in tool_calls:
            fn = c.get("function", {})
            name, args = str(fn.get("name")), fn.get("arguments", "{}")
            key = call_key(name, args)
            if key in results:
                matches += 1
                content = results[key]
            elif live_tools and name in live_tools:
                misses += 1
                try:
                    parsed = json.loads(args) if isinstance(args, str) else dict(args)
                    content = str(live_tools[name](**parsed))
                except Exception as exc:  # a live tool that raises answers with its error, like a real agent
                    content = f"Error: {type(exc).__name__}: {exc}"
            else:
                misses += 1
                content = NO_RESULT
            convo.append({"role": "tool", "tool_call_id": c.get("id"), "content": content})
        if tool_calls:
            continue
        if next_user >= min(len(later), max_user_turns):
            return done("ok")
        convo.append(dict(later[next_user]))
        next_user += 1
    return done("max_steps", f"no final reply within {max_steps} model calls")
