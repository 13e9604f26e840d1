"""Gold check: replay every task's gold actions with our tools and compare DB hashes.

``replay_gold(domain, task)`` runs the task's gold actions in order on one fresh DB (a failing step
is a no-op, as in the official reward; the transfer tool changes nothing, so the hash equals the
reward's gold hash) and returns each step's observation and the final hash. ``check_gold`` does it
for a whole split and compares with an expected ``{task index: hash}`` mapping, if given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffprompt.errors import EnvError
from tau_envs.domain import Domain
from tau_envs.hashing import db_hash
from tau_envs.types import Task


def is_error(observation: str) -> bool:
    """Whether a tool observation reports a failure."""
    return observation.startswith(("Error:", "Unknown action "))


@dataclass(frozen=True, kw_only=True, slots=True)
class GoldStep:
    """One gold action and what our tools answered."""

    name: str
    kwargs: Mapping[str, Any]
    observation: str
    is_error: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class GoldResult:
    """A task's replay: its index, final DB hash, steps, and the expected hash if one was given."""

    index: int
    hash: str
    steps: tuple[GoldStep, ...]
    expected: str | None = None

    @property
    def matched(self) -> bool | None:
        return None if self.expected is None else self.expected == self.hash


@dataclass(frozen=True, kw_only=True, slots=True)
class GoldReport:
    """All tasks' results of a gold check.

    ``compared`` counts tasks with an expected hash; ``unknown`` lists expected indices that are
    not tasks of the split (counted as compared and not matched).
    """

    results: tuple[GoldResult, ...]
    unknown: tuple[int, ...] = ()

    @property
    def compared(self) -> int:
        return sum(r.matched is not None for r in self.results) + len(self.unknown)

    @property
    def matched(self) -> int:
        return sum(r.matched is True for r in self.results)

    @property
    def ok(self) -> bool:
        return self.compared > 0 and self.matched == self.compared


def replay_gold(domain: Domain, task: Task, *, expected: str | None = None) -> GoldResult:
    """Replay ``task``'s gold actions on a fresh DB; observations and the final DB hash."""
    data, observations = domain.replay(task.actions)
    steps = tuple(
        GoldStep(name=a.name, kwargs=a.kwargs, observation=o, is_error=is_error(o))
        for a, o in zip(task.actions, observations, strict=True)
    )
    return GoldResult(index=task.index, hash=db_hash(data), steps=steps, expected=expected)


def load_hashes(path: Path | str) -> dict[int, str]:
    """Read ``{task index: hash}`` (or a gold-replay file ``{"tasks": {i: {"gold_hash": ...}}}``)."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EnvError(f"hash file {p} not found") from exc
    except json.JSONDecodeError as exc:
        raise EnvError(f"hash file {p} is not valid JSON ({exc})") from exc
    if isinstance(raw, dict) and isinstance(raw.get("tasks"), dict):
        raw = {k: v.get("gold_hash") if isinstance(v, dict) else v for k, v in raw["tasks"].items()}
    if not isinstance(raw, dict):
        raise EnvError(f"hash file {p} must map task indices to hex hashes")
    out: dict[int, str] = {}
    for key, value in raw.items():
        try:
            index = int(key)
        except ValueError as exc:
            raise EnvError(f"hash file {p}: key {key!r} is not a task index") from exc
        if not isinstance(value, str):
            raise EnvError(f"hash file {p}: task {key} has no hash string")
        out[index] = value
    return out


def check_gold(
    domain: Domain,
    expected: Mapping[int, str] | None = None,
    *,
    indices: Sequence[int] | None = None,
    on_result: Callable[[GoldResult], None] | None = None,
) -> GoldReport:
    """Replay every task (or ``indices``) of ``domain``; compare with ``expected`` where it has the task."""
    expected = expected or {}
    chosen = range(len(domain.tasks)) if indices is None else indices
    results = []
    for index in chosen:
        result = replay_gold(domain, domain.task(index), expected=expected.get(index))
        results.append(result)
        if on_result is not None:
            on_result(result)
    unknown = tuple(sorted(i for i in expected if not 0 <= i < len(domain.tasks)))
    return GoldReport(results=tuple(results), unknown=unknown)
