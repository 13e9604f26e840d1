"""The simulated model's move (``SimMove``) and helpers shared by the simulated airline and retail agents."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tau_envs.sim.conversation import CONFIRM_MARK, Conversation


@dataclass(frozen=True)
class SimMove:
    """The next assistant move: a text or one tool call, plus the naive branches it took."""

    text: str | None = None
    call: tuple[str, dict[str, Any]] | None = None
    naive: tuple[tuple[str, str], ...] = ()


@dataclass
class Ctx:
    """What one move sees: the conversation, the stated rules, a seeded rng, blame notes."""

    conv: Conversation
    stated: frozenset[str]
    rng: random.Random
    naive: list[tuple[str, str]] = field(default_factory=list)

    def follows(self, rule_id: str) -> bool:
        """The prompt states ``rule_id`` (so the agent follows it)."""
        return rule_id in self.stated

    def blame(self, rule_id: str, reason: str) -> None:
        """Record that the agent acted naively because ``rule_id`` is not stated."""
        if (rule_id, reason) not in self.naive:
            self.naive.append((rule_id, reason))

    def say(self, *options: str) -> SimMove:
        """A text reply, phrased by the seeded rng."""
        return SimMove(text=options[self.rng.randrange(len(options))], naive=tuple(self.naive))

    def call(self, name: str, **args: Any) -> SimMove:
        """A tool call."""
        return SimMove(call=(name, args), naive=tuple(self.naive))

    def lookup(self, name: str, **args: Any) -> tuple[SimMove | None, Any]:
        """Return (call move, None) until ``name(**args)`` has run, then (None, parsed observation).

        A failed lookup gives a text move asking the user to check the id.
        """
        done = self.conv.called(name, **args)
        if done is None:
            return self.call(name, **args), None
        if not done.ok:
            value = next(iter(args.values()), "")
            return self.say(
                f"I could not find {value} ({done.observation}). Could you check it and tell me again?"
            ), None
        return None, done.json()

    def write(self, confirm_rule: str, summary: str, name: str, args: Mapping[str, Any]) -> SimMove:
        """Ask for a yes/no confirmation first when ``confirm_rule`` is stated, then call the tool."""
        if self.follows(confirm_rule):
            answer = self.conv.confirmation()
            if answer is None:
                return self.say(
                    f"Here is what I will do: {summary}. Do you confirm {CONFIRM_MARK}?",
                    f"To be sure: {summary}. Shall I proceed {CONFIRM_MARK}?",
                )
            if answer == "no":
                return self.say("Understood, I will not make this change. No changes were made.")
        else:
            self.blame(confirm_rule, f"{name} was called without asking the user to confirm")
        return self.call(name, **dict(args))

    def refuse(self, why: str) -> SimMove:
        """A refusal that names the policy reason."""
        return self.say(f"I'm sorry, but I cannot do that: {why}.", f"Sorry, this is not possible: {why}.")


def after_write(ctx: Ctx, writes: tuple[str, ...]) -> SimMove | None:
    """Report the outcome once a write tool ran; None when no write has run yet."""
    done = [c for c in ctx.conv.calls if c.name in writes]
    if not done:
        return None
    last = done[-1]
    if ctx.conv.last_role == "tool" and ctx.conv.calls[-1] is last:
        if not last.ok:
            return ctx.say(f"The system could not complete the request: {last.observation}")
        return ctx.say(
            "All done: your request has been completed successfully. Is there anything else I can help with?",
            "The change has been made successfully. Is there anything else I can help with?",
        )
    return ctx.say("Is there anything else I can help you with?")


def refused_already(ctx: Ctx) -> bool:
    """The agent already turned the request down or stopped after a declined confirmation."""
    last = ctx.conv.last_assistant.lower()
    return last.startswith(
        ("i'm sorry, but i cannot", "sorry, this is not possible", "understood, i will not")
    )


def opening(
    ctx: Ctx, writes: tuple[str, ...], classify: Callable[[str], str], menu: str
) -> SimMove | str:
    """The moves every domain's agent makes first: greet, wrap up, find the request kind.

    Returns the move to make (greeting, wrap-up after a write or a refusal, the menu for an unknown
    request), or the request kind when the domain must act on it.
    """
    conv = ctx.conv
    if not conv.users:
        return ctx.say("Hello! How can I help you today?")
    done = after_write(ctx, writes)
    if done is not None:
        return done
    if refused_already(ctx):
        return ctx.say("Is there anything else I can help you with?")
    kind = classify(conv.users[0])
    if kind == "unknown":
        kind = classify(conv.user_text)
    if kind == "unknown":
        return ctx.say(menu)
    return kind
