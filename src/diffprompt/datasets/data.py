"""Labelled JSONL datasets: loading with line-precise validation, task kinds, the seeded split.

Format (one object a line): ``{"text": ..., "label": ...}`` (single text) or
``{"text_a": ..., "text_b": ..., "label": ...}`` (pair); labels are strings. The label set is read
from the data unless given. Any malformed line, missing or non-string field, label outside a given
set, mixed single/pair rows or an empty file raises ``DatasetError`` naming the file and line; a
dataset either loads whole or not at all.

Every example has a stable id (its 0-based line index among rows plus a content hash) and belongs to
one of two parts, decided by a seeded hash of its content: ``window`` (served with ``--record``, read
by the blamer and the editor) or ``holdout`` (only ever replayed by the gate). The parts are disjoint
by construction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from diffprompt.errors import ConfigError

TaskKind = Literal["sentiment2", "sentiment5", "paraphrase", "nli", "single", "pair"]
TASK_KINDS: tuple[TaskKind, ...] = ("sentiment2", "sentiment5", "paraphrase", "nli", "single", "pair")
Part = Literal["window", "holdout"]

# Known label sets → task kind (the four tasks of the paper); anything else is generic.
_KNOWN: dict[frozenset[str], TaskKind] = {
    frozenset({"negative", "positive"}): "sentiment2",
    frozenset({"very negative", "negative", "neutral", "positive", "very positive"}): "sentiment5",
    frozenset({"not_equivalent", "equivalent"}): "paraphrase",
    frozenset({"entailment", "neutral", "contradiction"}): "nli",
}
# Display order of the known label sets (the data's first-seen order otherwise).
_ORDER: dict[TaskKind, tuple[str, ...]] = {
    "sentiment2": ("negative", "positive"),
    "sentiment5": ("very negative", "negative", "neutral", "positive", "very positive"),
    "paraphrase": ("not_equivalent", "equivalent"),
    "nli": ("entailment", "neutral", "contradiction"),
}


class DatasetError(ConfigError):
    """A dataset file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    """One labelled example. ``text_b`` is None for single-text tasks."""

    index: int
    line: int  # 1-based line in the file (for messages)
    text_a: str
    text_b: str | None
    label: str
    digest: str  # content hash (texts only), 12 hex digits

    @property
    def id(self) -> str:
        return f"{self.index}-{self.digest[:8]}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Dataset:
    """A loaded dataset: its examples in file order, label set and task kind."""

    name: str
    path: Path
    examples: tuple[Example, ...]
    labels: tuple[str, ...]
    kind: TaskKind
    pair: bool

    def part_of(self, example: Example, *, holdout_share: float, split_seed: int) -> Part:
        """``holdout`` for a seeded ``holdout_share`` of examples (by content hash), else ``window``."""
        h = hashlib.sha256(f"{split_seed}:{example.digest}:{example.index}".encode()).digest()
        return "holdout" if int.from_bytes(h[:8], "big") / 2**64 < holdout_share else "window"


def _digest(a: str, b: str | None) -> str:
    return hashlib.sha256(json.dumps([a, b]).encode()).hexdigest()[:12]


def infer_kind(labels: Sequence[str], pair: bool) -> TaskKind:
    """The task kind of a label set: one of the four known tasks, else ``single`` / ``pair``."""
    return _KNOWN.get(frozenset(labels), "pair" if pair else "single")


def _field(obj: dict[str, object], key: str, where: str) -> str:
    if key not in obj:
        raise DatasetError(f"{where}: missing field {key!r}")
    val = obj[key]
    if not isinstance(val, str):
        raise DatasetError(f"{where}: field {key!r} must be a string, got {type(val).__name__}")
    if key != "label" and not val.strip():
        raise DatasetError(f"{where}: field {key!r} is empty")
    return val


def load_dataset(
    path: str | Path, *, labels: Sequence[str] | None = None, kind: TaskKind | None = None
) -> Dataset:
    """Load and validate a JSONL dataset (see the module docstring); raises ``DatasetError``."""
    p = Path(path).expanduser()
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"dataset {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read dataset {p}: {exc}") from None
    given = tuple(labels) if labels else None
    if given is not None and (len(set(given)) != len(given) or any(not lb.strip() for lb in given)):
        raise DatasetError(f"the given label set {list(given)} has duplicates or empty labels")
    if kind is not None and kind not in TASK_KINDS:
        raise DatasetError(f"unknown task kind {kind!r}; choose one of {', '.join(TASK_KINDS)}")
    out: list[Example] = []
    pair: bool | None = None
    seen: dict[str, None] = {}
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        row_pair = "text_a" in obj or "text_b" in obj
        if pair is None:
            pair = row_pair
        elif row_pair != pair:
            first = "pair" if pair else "single-text"
            raise DatasetError(f"{where}: mixes single-text and pair rows (the first row is {first})")
        label = _field(obj, "label", where)
        if not label.strip():
            raise DatasetError(f"{where}: field 'label' is empty")
        if given is not None and label not in given:
            raise DatasetError(f"{where}: label {label!r} is not in the label set {list(given)}")
        a = _field(obj, "text_a" if pair else "text", where)
        b = _field(obj, "text_b", where) if pair else None
        seen.setdefault(label)
        out.append(Example(index=len(out), line=n, text_a=a, text_b=b, label=label, digest=_digest(a, b)))
    if not out:
        raise DatasetError(f"dataset {p} is empty: no JSONL rows")
    found = tuple(seen)
    if given is None and len(found) < 2:
        raise DatasetError(f"dataset {p} has a single label {found[0]!r}; give the label set explicitly")
    task = kind or infer_kind(given or found, bool(pair))
    if given:
        label_set = given
    elif set(_ORDER.get(task, ())) == set(found):
        label_set = _ORDER[task]
    else:
        label_set = found
    return Dataset(
        name=p.parent.name + "-" + p.stem if p.parent.name else p.stem,
        path=p,
        examples=tuple(out),
        labels=tuple(label_set),
        kind=task,
        pair=bool(pair),
    )
