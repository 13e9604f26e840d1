"""Value types shared by the τ environments, the generator, the simulators and the runner.

The seam between parts is the **official data layout on disk**: a domain directory holds the
database JSON files, ``wiki.md`` (the policy), ``tools_info.json`` and ``tasks_<split>.json``.
Generated worlds are written in that same layout; their tasks carry extra keys (``intent``,
``family``) that official tasks lack, and the directory may hold ``rules.json`` (the policy's rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

DomainName = Literal["airline", "retail"]
DOMAINS: tuple[DomainName, ...] = ("airline", "retail")
STOP_TOKEN = "###STOP###"
TRANSFER_TOOL = "transfer_to_human_agents"
MAX_STEPS = 30


@dataclass(frozen=True, kw_only=True, slots=True)
class Action:
    """A tool call: name and keyword arguments (as in the official tasks' ``actions``)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Task:
    """One task of a domain's split.

    ``intent`` (generated worlds only) drives the scripted user: a JSON-able mapping with at least
    ``kind`` (e.g. ``cancel``), the facts the user knows, and what the user wants.
    """

    index: int
    user_id: str
    instruction: str
    actions: tuple[Action, ...]
    outputs: tuple[str, ...] = ()
    intent: Mapping[str, Any] | None = None
    family: str = ""  # task family for guarded slices (e.g. "cancel", "refuse")


@dataclass(frozen=True, kw_only=True, slots=True)
class StepResult:
    """The outcome of one tool call: the observation string and whether the episode ended."""

    observation: str
    done: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class RewardInfo:
    """The official reward: 1.0 iff ``db_hash == gold_hash`` and every required output was said.

    ``outputs`` maps each required output string to whether some agent reply contained it.
    """

    reward: float
    db_hash: str
    gold_hash: str
    outputs_ok: bool
    outputs: Mapping[str, bool] = field(default_factory=dict)


class UserSimulator(Protocol):
    """A simulated customer. Seeded; one instance per episode."""

    def reset(self, task: Task, *, seed: int) -> str:
        """Start the episode and return the user's first message."""
        ...

    def step(self, agent_message: str) -> str:
        """Reply to the agent's message; a reply containing ``###STOP###`` ends the episode."""
        ...


@runtime_checkable
class FeedbackUser(Protocol):
    """A user simulator that also gives feedback in words (its complaints), like a real user would."""

    def feedback(self) -> tuple[str, ...]:
        """The user's comments on the episode so far (recorded as ``comment`` feedback)."""
        ...
