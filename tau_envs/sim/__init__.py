"""The simulated target model: a deterministic, seeded tool-calling policy.

Its rule-following depends on whether the system prompt states each rule (see
:mod:`tau_envs.sim.matching`).

``SimulatedPolicy`` is the pure core (messages + tools → next assistant message);
``SimulatedChatModel`` wraps it as a LangChain chat model (import ``tau_envs.sim.chat_model``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tau_envs.sim.matching import DEFAULT_THRESHOLD, best_span, rule_coverage, stated_rules
from tau_envs.sim.policy import SimulatedPolicy

__all__ = [
    "DEFAULT_THRESHOLD",
    "SimulatedPolicy",
    "best_span",
    "explain_failure",
    "rule_coverage",
    "stated_rules",
]


def explain_failure(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = (), *, seed: int = 0
) -> list[tuple[str, str]]:
    """``[(rule_id, reason)]``: rules whose absence drove the simulated model in this episode.

    Used offline as the optimizer's 'judge blame' signal.
    """
    return SimulatedPolicy(seed=seed).explain_failure(messages, tools)


def __getattr__(name: str) -> Any:
    if name == "SimulatedChatModel":  # LangChain is imported only when asked for
        from tau_envs.sim.chat_model import SimulatedChatModel

        return SimulatedChatModel
    raise AttributeError(name)
