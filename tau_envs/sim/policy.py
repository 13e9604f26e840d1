"""``SimulatedPolicy``: the pure core of the simulated target model.

Given the OpenAI-format messages (system prompt first) and the tools list, it returns the next
assistant message — a text or exactly one tool call — deterministically for a given seed. Which rules
it follows is decided from the system prompt alone (:mod:`tau_envs.sim.matching`): a rule the prompt
does not state clearly enough is not followed, and the agent acts naively where it matters.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.errors import ConfigError
from tau_envs.rules import Rule, rules_for
from tau_envs.sim.agent_base import Ctx, SimMove
from tau_envs.sim.conversation import parse
from tau_envs.sim.matching import DEFAULT_THRESHOLD, stated_rules
from tau_envs.types import DomainName

Message = Mapping[str, Any]


def _domain_of(tool_names: frozenset[str], system: str) -> DomainName:
    if "get_reservation_details" in tool_names or "book_reservation" in tool_names:
        return "airline"
    if "get_order_details" in tool_names or "find_user_id_by_email" in tool_names:
        return "retail"
    return "retail" if "order" in system.lower() and "flight" not in system.lower() else "airline"


def _decider(domain: DomainName) -> Callable[[Ctx], SimMove]:
    if domain == "airline":
        from tau_envs.sim import airline

        return airline.decide
    from tau_envs.sim import retail  # type: ignore[attr-defined]

    return retail.decide  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True, kw_only=True)
class SimulatedPolicy:
    """A deterministic, seeded tool-calling policy for the airline and retail worlds.

    ``threshold``: rule-matching threshold (see :mod:`tau_envs.sim.matching`). ``error_rate``: per
    decision, the probability (seeded by ``seed`` and the conversation so far) that the model forgets
    every rule for that turn (acts naively). ``domain`` is inferred from the tools when None. ``rules``: the rule
    catalogue (default: the domain's built-in catalogue).
    """

    seed: int = 0
    threshold: float = DEFAULT_THRESHOLD
    error_rate: float = 0.0
    domain: DomainName | None = None
    rules: tuple[Rule, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigError(f"error_rate must be in [0, 1], got {self.error_rate}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")

    def _rng(self, messages: Sequence[Message]) -> random.Random:
        digest = hashlib.sha256(json.dumps(list(messages), sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        return random.Random(f"{self.seed}:{digest}")

    def decide(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] = ()) -> SimMove:
        """The next move with the naive branches it took (``SimMove.naive``)."""
        conv = parse(messages, tools)
        domain = self.domain or _domain_of(conv.tool_names, conv.system)
        rules = self.rules if self.rules is not None else rules_for(domain)
        stated = stated_rules(conv.system, rules, self.threshold)
        rng = self._rng(messages)
        if self.error_rate and stated and rng.random() < self.error_rate:
            stated = frozenset()
        return _decider(domain)(Ctx(conv=conv, stated=stated, rng=rng))

    def respond(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The next assistant message in OpenAI format (``content`` or one ``tool_calls`` entry)."""
        d = self.decide(messages, tools)
        if d.call is None:
            return {"role": "assistant", "content": d.text or ""}
        name, args = d.call
        call_id = (
            "call_"
            + hashlib.sha1(f"{len(messages)}:{name}:{json.dumps(args, sort_keys=True)}".encode()).hexdigest()[
                :20
            ]
        )
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            ],
        }

    def explain_failure(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] = ()
    ) -> list[tuple[str, str]]:
        """Which missing rules drove the model's behaviour in an episode: ``[(rule_id, reason)]``.

        Re-derives every assistant turn of ``messages`` from its prefix and collects the naive branches
        taken (deterministic, so it matches what the model did when the prompt is the same).
        """
        out: list[tuple[str, str]] = []
        for i, m in enumerate(messages):
            if m.get("role") == "assistant" and i > 0:
                for item in self.decide(messages[:i], tools).naive:
                    if item not in out:
                        out.append(item)
        return out
