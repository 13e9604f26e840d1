"""Shared pieces of the world generators: name pools, id makers, deterministic JSON writing."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tau_envs.types import Action

FIRST_NAMES = (
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Emma",
    "Omar",
    "Sofia",
    "Yusuf",
    "Chen",
    "Aarav",
    "Lucas",
    "Amelia",
    "Ivan",
    "Fatima",
    "Raj",
    "Isabella",
    "Mei",
    "Ethan",
    "Harper",
    "Mateo",
    "Zara",
    "Daniel",
    "Nora",
    "Kenji",
    "Layla",
    "Mohamed",
    "Olivia",
    "Anya",
    "Juan",
    "Priya",
    "Sara",
    "Aisha",
    "James",
    "Lina",
    "Hugo",
    "Elena",
    "Tariq",
    "Grace",
    "Kofi",
    "Ingrid",
    "Diego",
    "Hana",
    "Victor",
    "Leila",
    "Arjun",
)
LAST_NAMES = (
    "Smith",
    "Garcia",
    "Khan",
    "Li",
    "Nguyen",
    "Brown",
    "Rossi",
    "Silva",
    "Kim",
    "Patel",
    "Muller",
    "Lopez",
    "Wilson",
    "Sato",
    "Ahmed",
    "Moore",
    "Taylor",
    "Ito",
    "Anderson",
    "Hernandez",
    "Kowalski",
    "Martin",
    "Novak",
    "Okafor",
    "Johansson",
    "Santos",
    "Jensen",
    "Cohen",
    "Haddad",
    "Dubois",
    "Park",
)
STREETS = (
    "Maple Ave",
    "Oak Street",
    "Pine Lane",
    "Cedar Road",
    "Elm Drive",
    "Lakeview Blvd",
    "Hill Street",
    "River Road",
    "Park Avenue",
    "Sunset Drive",
    "Willow Way",
    "Chestnut Street",
)
CITIES = (
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Seattle", "WA", "981"),
    ("Boston", "MA", "021"),
    ("Phoenix", "AZ", "850"),
    ("Chicago", "IL", "606"),
    ("Portland", "OR", "972"),
    ("Miami", "FL", "331"),
    ("Columbus", "OH", "432"),
    ("San Diego", "CA", "921"),
    ("Nashville", "TN", "372"),
)


def make_address(rng: random.Random) -> dict[str, str]:
    """A US address in the official key order."""
    city, state, zip3 = CITIES[rng.randrange(len(CITIES))]
    return {
        "address1": f"{rng.randint(10, 999)} {STREETS[rng.randrange(len(STREETS))]}",
        "address2": f"Suite {rng.randint(100, 999)}",
        "city": city,
        "country": "USA",
        "state": state,
        "zip": f"{zip3}{rng.randint(0, 99):02d}",
    }


def unique_user_id(rng: random.Random, taken: set[str]) -> tuple[str, str, str]:
    """(user_id, first, last) with ``user_id = first_last_NNNN`` unique in ``taken``."""
    while True:
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        uid = f"{first.lower()}_{last.lower()}_{rng.randint(1000, 9999)}"
        if uid not in taken:
            taken.add(uid)
            return uid, first, last


def unique_number(rng: random.Random, taken: set[int], lo: int = 1_000_000, hi: int = 9_999_999) -> int:
    """A random integer in [lo, hi] not in ``taken`` (added to it)."""
    while True:
        n = rng.randint(lo, hi)
        if n not in taken:
            taken.add(n)
            return n


def dob(rng: random.Random, lo: int = 1950, hi: int = 2004) -> str:
    """A date of birth."""
    return f"{rng.randint(lo, hi)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def action_json(a: Action) -> dict[str, Any]:
    """An action in the official task form."""
    return {"name": a.name, "kwargs": dict(a.kwargs)}


def write_json(path: Path, obj: Any, *, indent: int | None = None) -> None:
    """Deterministic JSON (key order as built; floats kept as floats)."""
    path.write_text(json.dumps(obj, indent=indent) + "\n", encoding="utf-8")


# Share of tasks whose gold actions leave the database unchanged (refusals, declines, questions),
# measured on the official τ-bench test splits (airline 20 of 50, retail 9 of 115; see
# ``tests/tau_world/test_task_mix.py``). Generated splits follow these proportions.
OFFICIAL_NO_WRITE_SHARE = {"airline": 20 / 50, "retail": 9 / 115}


def split_sizes(n_tasks: int) -> dict[str, int]:
    """How many tasks each split gets: test and train ``n_tasks`` each, dev a fifth (at least 1)."""
    return {"test": n_tasks, "train": n_tasks, "dev": max(1, n_tasks // 5)}


Invoke = Callable[[dict[str, Any], str, Mapping[str, Any]], str]


def run_gold(invoke: Invoke, data: dict[str, Any], actions: Sequence[Action], *, where: str) -> list[str]:
    """Run gold actions through the real tools on ``data`` (mutated); raise if any step errors."""
    from diffprompt.errors import EnvError

    observations = []
    for a in actions:
        obs = invoke(data, a.name, a.kwargs)
        if obs.startswith("Error") or obs.startswith("Unknown action"):
            raise EnvError(f"generator bug: gold action {a.name} of {where} failed: {obs}")
        observations.append(obs)
    return observations
