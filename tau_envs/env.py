"""``ToolEnv``: one episode's database and tool calls, and the official reward.

The conversation (user turns, ``###STOP###``, the 30-step limit, first tool call per model turn) is
the runner's; the environment executes tool actions and scores the final state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from tau_envs.hashing import db_hash
from tau_envs.toolkit import JsonDict, ToolSet
from tau_envs.types import TRANSFER_TOOL, Action, RewardInfo, StepResult, Task


def outputs_found(outputs: Sequence[str], agent_texts: Sequence[str]) -> dict[str, bool]:
    """Each required output -> whether it occurs (lower-cased) in some reply lower-cased without commas."""
    replies = [text.lower().replace(",", "") for text in agent_texts if isinstance(text, str)]
    return {out: any(out.lower() in reply for reply in replies) for out in outputs}


def replay_actions(tools: ToolSet, db: JsonDict, actions: Sequence[Action]) -> list[str]:
    """Run ``actions`` on ``db`` in order (a failing step is a no-op); return each observation."""
    return [tools.invoke(db, a.name, _copy_args(a.kwargs)) for a in actions]


def _copy_args(kwargs: Any) -> Any:
    # Tools may store argument objects in the DB; never alias the caller's (e.g. a task's) objects.
    try:
        return copy.deepcopy(dict(kwargs))
    except (TypeError, ValueError):
        return kwargs


class ToolEnv:
    """A τ episode's tool side: a fresh database, the task, the tool calls made so far.

    ``step`` never raises for a bad call: unknown tools, missing or wrong arguments and rule
    violations are observations (``Unknown action <name>`` / ``Error: ...``). ``done`` becomes true
    when ``transfer_to_human_agents`` is called. ``reward`` may be called at any time.
    """

    def __init__(self, *, tools: ToolSet, task: Task, db: JsonDict, gold_hash: Callable[[], str]) -> None:
        self.tools = tools
        self.task = task
        self.db = db
        self.actions: list[Action] = []
        self.observations: list[str] = []
        self.done = False
        self._gold_hash = gold_hash
        self._gold: str | None = None

    def step(self, action: Action) -> StepResult:
        """Execute one tool call; ``done`` is true after a transfer to a human agent."""
        observation = self.tools.invoke(self.db, action.name, _copy_args(action.kwargs))
        self.actions.append(action)
        self.observations.append(observation)
        if action.name == TRANSFER_TOOL:
            self.done = True
        return StepResult(observation=observation, done=self.done)

    def reward(self, agent_texts: Sequence[str]) -> RewardInfo:
        """The official reward for the current DB and the agent's replies (its text messages)."""
        current = db_hash(self.db)
        if self._gold is None:
            self._gold = self._gold_hash()
        gold = self._gold
        found = outputs_found(self.task.outputs, agent_texts)
        ok = all(found.values())
        return RewardInfo(
            reward=1.0 if current == gold and ok else 0.0,
            db_hash=current,
            gold_hash=gold,
            outputs_ok=ok,
            outputs=found,
        )
