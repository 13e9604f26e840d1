"""Seeded generator of airline and retail worlds in the official τ-bench data layout.

``generate_world(domain, seed=, n_users=, n_tasks=, out_dir=)`` writes the database files
(airline: ``users.json``, ``flights.json``, ``reservations.json``; retail: ``users.json``,
``orders.json``, ``products.json``), ``wiki.md`` (our policy, one rule per bullet), ``tools_info.json``
(our descriptions of the official tools), ``rules.json`` and ``tasks_{test,train,dev}.json``.

Tasks carry ``user_id``, ``instruction``, gold ``actions`` (computed and checked with the real tools),
``outputs``, and the generated-world extras ``intent`` (structured, for the scripted user) and
``family``. Each split holds the official share of refusal tasks (gold actions that change nothing:
``OFFICIAL_NO_WRITE_SHARE``, airline 0.40, retail 0.078), so an agent that does nothing passes no
more than that share. Same seed and sizes → byte-identical files. Cost is linear in ``n_users``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError
from tau_envs.generate.common import OFFICIAL_NO_WRITE_SHARE, action_json, split_sizes, write_json
from tau_envs.generate.policy import degrade_policy, policy_text
from tau_envs.generate.tools_info import tools_info
from tau_envs.rules import rules_for
from tau_envs.types import DOMAINS, DomainName

__all__ = ["GENERATOR_VERSION", "degrade_policy", "generate_world", "policy_text"]

# Bumped whenever the same seed and sizes generate a different world (cached worlds are keyed by it).
GENERATOR_VERSION = 2  # 2: official share of refusal tasks per split


def _airline(rng: random.Random, n_users: int, n_tasks: int) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    from tau_envs.generate.airline_db import build_airline_db
    from tau_envs.generate.airline_tasks import KINDS, REFUSAL_KINDS

    db = build_airline_db(rng, n_users)
    tasks = _make_tasks(rng, list(db.users), n_tasks, KINDS, db, REFUSAL_KINDS, OFFICIAL_NO_WRITE_SHARE["airline"])
    return {"flights": db.flights, "reservations": db.reservations, "users": db.users}, tasks


def _retail(rng: random.Random, n_users: int, n_tasks: int) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    from tau_envs.generate.retail_db import build_retail_db
    from tau_envs.generate.retail_tasks import KINDS, REFUSAL_KINDS

    db = build_retail_db(rng, n_users)
    tasks = _make_tasks(rng, list(db.users), n_tasks, KINDS, db, REFUSAL_KINDS, OFFICIAL_NO_WRITE_SHARE["retail"])
    return {"orders": db.orders, "products": db.products, "users": db.users}, tasks


def _mix(rng: random.Random, size: int, kinds: list[str], refusals: frozenset[str], share: float) -> list[str]:
    """``size`` task kinds: ``round(size * share)`` refusal kinds, the rest write kinds.

    Each group is cycled in shuffled rounds, so every kind of a group appears before any repeats.
    """
    out: list[str] = []
    for group, n in (
        ([k for k in kinds if k in refusals], round(size * share)),
        ([k for k in kinds if k not in refusals], size - round(size * share)),
    ):
        order: list[str] = []
        for _ in range(n if group else 0):
            if not order:
                order = group[:]
                rng.shuffle(order)
            out.append(order.pop())
    rng.shuffle(out)
    return out


def _make_tasks(
    rng: random.Random,
    user_ids: list[str],
    n_tasks: int,
    kinds: Any,
    db: Any,
    refusals: frozenset[str],
    share: float,
) -> dict[str, list[Any]]:
    sizes = split_sizes(n_tasks)
    total = sum(sizes.values())
    pool = rng.sample(user_ids, min(len(user_ids), total + 1))
    out: dict[str, list[Any]] = {}
    names = sorted(kinds)
    k = 0
    for split, size in sizes.items():
        tasks = []
        for kind in _mix(rng, size, names, refusals, share):
            uid, other = pool[k % len(pool)], pool[(k + 1) % len(pool)]
            k += 1
            intent, instruction, gold, family = kinds[kind](rng, db, uid, other)
            intent = {"task_kind": kind, **intent}
            tasks.append(
                {
                    "annotator": "generated",
                    "user_id": uid,
                    "instruction": instruction,
                    "actions": [action_json(a) for a in gold],
                    "outputs": [],
                    "intent": intent,
                    "family": family,
                }
            )
        out[split] = tasks
    return out


def generate_world(
    domain: DomainName,
    *,
    seed: int,
    n_users: int,
    n_tasks: int,
    out_dir: Path | str,
) -> Path:
    """Generate a world and write it to ``out_dir`` (created); return the directory.

    ``n_users`` >= 2 (any size up to 100k+); ``n_tasks`` >= 1 tasks in the test and train splits each
    (dev gets a fifth). Raises ``ConfigError`` for an unknown domain or bad sizes.
    """
    if domain not in DOMAINS:
        raise ConfigError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    if n_users < 2 or n_tasks < 1:
        raise ConfigError(f"need n_users >= 2 and n_tasks >= 1 (got {n_users}, {n_tasks})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{domain}:{seed}")
    db, tasks = (_airline if domain == "airline" else _retail)(rng, n_users, n_tasks)
    for name, table in db.items():
        write_json(out / f"{name}.json", table)
    rules = rules_for(domain)
    (out / "wiki.md").write_text(policy_text(domain, rules), encoding="utf-8")
    write_json(out / "tools_info.json", tools_info(domain), indent=2)
    write_json(out / "rules.json", [r.to_json() for r in rules], indent=2)
    for split, items in tasks.items():
        write_json(out / f"tasks_{split}.json", items, indent=1)
    return out


def timed_generate(domain: DomainName, *, seed: int, n_users: int, n_tasks: int, out_dir: Path) -> float:
    """Generate and return the wall time in seconds (used by ``bench/tau_world.py``)."""
    t0 = time.perf_counter()
    generate_world(domain, seed=seed, n_users=n_users, n_tasks=n_tasks, out_dir=out_dir)
    return time.perf_counter() - t0
