"""Load a τ domain (official data or a generated world) from a directory in the official layout.

Public API::

    load_domain(domain: "airline" | "retail", data_dir: Path, *, split="test",
                users_file: str | None = None) -> Domain

``data_dir`` is either the domain directory itself (holding the DB files) or its parent (holding
``airline/`` and ``retail/``). Required files: the DB (airline ``flights.json reservations.json
users.json``; retail ``orders.json products.json users.json``), ``wiki.md``, ``tools_info.json`` and
``tasks_<split>.json``; optional ``rules.json``. ``users_file`` replaces ``users.json`` (e.g.
``users_pre_404f33e_province.json`` for the historical airline runs). JSON keeps int vs float and
key order. Failures raise ``EnvError`` naming the domain, split, missing files or bad task index.

``Domain`` fields: ``name``, ``data_dir``, ``split``, ``policy`` (wiki text), ``tools_info`` (OpenAI
tool schemas), ``tasks`` (``list[Task]``), ``rules`` (``rules.json`` or ``[]``), ``tools``
(``ToolSet``). Methods: ``fresh_db() -> dict`` (a new deep copy per call, ~ms), ``make_env(task, *,
db=None) -> ToolEnv``, ``gold_hash(task) -> str`` (cached), ``replay(actions, db=None) -> (db,
observations)``, ``task(index) -> Task``.
"""

from __future__ import annotations

import json
import marshal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffprompt.errors import EnvError
from tau_envs.env import ToolEnv, replay_actions
from tau_envs.hashing import db_hash
from tau_envs.toolkit import JsonDict, ToolSet
from tau_envs.types import DOMAINS, TRANSFER_TOOL, Action, DomainName, Task

SPLITS = ("test", "train", "dev")
DB_FILES: Mapping[str, tuple[str, ...]] = {
    "airline": ("flights", "reservations", "users"),
    "retail": ("orders", "products", "users"),
}


def toolset(domain: str) -> ToolSet:
    """The tools of ``domain`` (imported lazily)."""
    if domain == "airline":
        from tau_envs.airline.tools import TOOLS

        return TOOLS
    if domain == "retail":
        from tau_envs.retail.tools import TOOLS as RETAIL_TOOLS

        return RETAIL_TOOLS
    raise EnvError(f"unknown τ domain {domain!r}; choose one of {', '.join(DOMAINS)}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Domain:
    """A loaded domain: policy, tool schemas, tasks, and a pristine DB snapshot to copy per episode."""

    name: DomainName
    data_dir: Path
    split: str
    policy: str
    tools_info: list[dict[str, Any]]
    tasks: list[Task]
    rules: list[Any]
    tools: ToolSet
    _snapshot: bytes = field(repr=False)
    _gold: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fresh_db(self) -> JsonDict:
        """A new, independent copy of the initial database."""
        return marshal.loads(self._snapshot)  # type: ignore[no-any-return]

    def task(self, index: int) -> Task:
        """The task at ``index`` (``EnvError`` if out of range)."""
        if not 0 <= index < len(self.tasks):
            raise EnvError(f"{self.name}/{self.split} has tasks 0..{len(self.tasks) - 1}; no task {index}")
        return self.tasks[index]

    def replay(self, actions: Sequence[Action], db: JsonDict | None = None) -> tuple[JsonDict, list[str]]:
        """Run ``actions`` on ``db`` (default: a fresh DB); return the DB and every observation."""
        data = self.fresh_db() if db is None else db
        return data, replay_actions(self.tools, data, actions)

    def gold_hash(self, task: Task) -> str:
        """DB hash after the task's gold actions (minus the transfer) on a fresh DB; cached."""
        key = json.dumps([[a.name, a.kwargs] for a in task.actions], sort_keys=True, default=str)
        cached = self._gold.get(key)
        if cached is None:
            data, _ = self.replay([a for a in task.actions if a.name != TRANSFER_TOOL])
            cached = db_hash(data)
            with self._lock:
                self._gold[key] = cached
        return cached

    def make_env(self, task: Task, *, db: JsonDict | None = None) -> ToolEnv:
        """A new episode of ``task`` on ``db`` (default: a fresh copy of the initial DB).

        With a custom ``db`` the reward's gold actions are replayed on a copy of that DB as it was
        when the episode started (the default DB's gold hashes are cached per task).
        """
        if db is None:
            return ToolEnv(tools=self.tools, task=task, db=self.fresh_db(), gold_hash=lambda: self.gold_hash(task))
        start = marshal.dumps(db)
        gold = [a for a in task.actions if a.name != TRANSFER_TOOL]

        def custom_gold_hash() -> str:
            data, _ = self.replay(gold, marshal.loads(start))
            return db_hash(data)

        return ToolEnv(tools=self.tools, task=task, db=db, gold_hash=custom_gold_hash)


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise EnvError(f"{path} is not valid JSON ({exc}); fix or regenerate the file") from exc


def _resolve_dir(domain: str, data_dir: Path) -> Path:
    nested = data_dir / domain
    if nested.is_dir():
        return nested
    markers = ["wiki.md", "tools_info.json", *(f"{name}.json" for name in DB_FILES[domain])]
    if any((data_dir / name).is_file() for name in markers):
        return data_dir
    raise EnvError(
        f"no {domain} data at {data_dir}: expected {nested}/ or a domain directory holding "
        f"{', '.join(f + '.json' for f in DB_FILES[domain])}, wiki.md, tools_info.json"
    )


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _parse_task(index: int, raw: Any, source: Path) -> Task:
    where = f"task {index} in {source}"
    if not isinstance(raw, dict):
        raise EnvError(f"{where} is not an object")
    for key in ("user_id", "instruction", "actions"):
        if key not in raw:
            raise EnvError(f"{where} lacks '{key}'")
    if not isinstance(raw["user_id"], str) or not isinstance(raw["instruction"], str):
        raise EnvError(f"{where}: 'user_id' and 'instruction' must be strings")
    if not isinstance(raw["actions"], list):
        raise EnvError(f"{where}: 'actions' must be a list of {{name, kwargs}}")
    actions = []
    for j, act in enumerate(raw["actions"]):
        if not (isinstance(act, dict) and isinstance(act.get("name"), str)) or not isinstance(
            act.get("kwargs", {}), dict
        ):
            raise EnvError(f"{where}: action {j} must be an object with a string 'name' and object 'kwargs'")
        actions.append(Action(name=act["name"], kwargs=act.get("kwargs", {})))
    outputs = raw.get("outputs", [])
    if not _str_list(outputs):
        raise EnvError(f"{where}: 'outputs' must be a list of strings")
    intent = raw.get("intent")
    if intent is not None and not isinstance(intent, dict):
        raise EnvError(f"{where}: 'intent' must be an object")
    family = raw.get("family", "")
    if not isinstance(family, str):
        raise EnvError(f"{where}: 'family' must be a string")
    return Task(
        index=index,
        user_id=raw["user_id"],
        instruction=raw["instruction"],
        actions=tuple(actions),
        outputs=tuple(outputs),
        intent=intent,
        family=family,
    )


def load_tasks(path: Path) -> list[Task]:
    """Parse a ``tasks_<split>.json`` file (``EnvError`` naming the bad task index)."""
    raw = _read_json(path)
    if not isinstance(raw, list):
        raise EnvError(f"{path} must hold a JSON list of tasks, got {type(raw).__name__}")
    return [_parse_task(i, item, path) for i, item in enumerate(raw)]


def load_domain(
    domain: str,
    data_dir: Path | str,
    *,
    split: str = "test",
    users_file: str | None = None,
) -> Domain:
    """Load ``domain`` from ``data_dir`` (see the module docstring for the layout and errors)."""
    if domain not in DOMAINS:
        raise EnvError(f"unknown τ domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    if split not in SPLITS:
        raise EnvError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    root = _resolve_dir(domain, Path(data_dir))
    db_names = {name: f"{name}.json" for name in DB_FILES[domain]}
    if users_file is not None:
        db_names["users"] = users_file
    tasks_name = f"tasks_{split}.json"
    needed = [*db_names.values(), "wiki.md", "tools_info.json", tasks_name]
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        have = sorted(p.name.removeprefix("tasks_").removesuffix(".json") for p in root.glob("tasks_*.json"))
        hint = f" (splits present: {', '.join(have)})" if tasks_name in missing and have else ""
        raise EnvError(f"{domain} data dir {root} is missing {', '.join(missing)}{hint}")
    db = {name: _read_json(root / fname) for name, fname in db_names.items()}
    for name, value in db.items():
        if not isinstance(value, dict):
            raise EnvError(f"{root / db_names[name]} must hold a JSON object keyed by id")
    tools_info = _read_json(root / "tools_info.json")
    if not isinstance(tools_info, list):
        raise EnvError(f"{root / 'tools_info.json'} must hold a JSON list of tool schemas")
    rules_path = root / "rules.json"
    rules = _read_json(rules_path) if rules_path.is_file() else []
    return Domain(
        name=domain,  # type: ignore[arg-type]
        data_dir=root,
        split=split,
        policy=(root / "wiki.md").read_text(encoding="utf-8"),
        tools_info=tools_info,
        tasks=load_tasks(root / tasks_name),
        rules=rules,
        tools=toolset(domain),
        _snapshot=marshal.dumps(db),
    )
