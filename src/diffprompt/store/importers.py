"""Import recorded tool-calling runs as traces with their rewards.

``import_tau_historical`` reads τ-bench "historical trajectory" files: a JSON list of
``{task_id, reward, info, traj, trial}`` records whose ``traj`` is the OpenAI chat-format conversation
(system prompt, user turns, assistant tool calls, tool results). Every record is validated before
anything is written; ids are derived from the record, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from diffprompt.errors import NotFoundError, ValidationError
from diffprompt.store.base import Store
from diffprompt.types import Feedback, Trace, utcnow

_ROLES = {"system", "user", "assistant", "tool"}


@dataclass(frozen=True, kw_only=True, slots=True)
class ImportReport:
    """What an import did (re-importing the same file reports zero new traces and feedback)."""

    slot: str
    records: int
    traces_added: int
    traces_skipped: int
    feedback_added: int
    version_ids: tuple[str, ...]
    mean_reward: float | None
    slot_created: bool


def _fail(index: int, rec: Any, field: str, problem: str) -> ValidationError:
    task = rec.get("task_id") if isinstance(rec, Mapping) else None
    where = f"record {index}" + (f" (task_id {task!r})" if task is not None else "")
    return ValidationError(
        f"malformed tau-historical file: {where}, field {field!r}: {problem}; nothing was imported"
    )


def _check_message(i: int, rec: Mapping[str, Any], j: int, m: Any) -> None:
    f = f"traj[{j}]"
    if not isinstance(m, Mapping):
        raise _fail(i, rec, f, "each message must be an object")
    if m.get("role") not in _ROLES:
        raise _fail(i, rec, f"{f}.role", f"must be one of {sorted(_ROLES)}, got {m.get('role')!r}")
    content = m.get("content")
    if content is not None and not isinstance(content, str | list):
        raise _fail(i, rec, f"{f}.content", "must be a string, a list of parts, or null")
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _fail(i, rec, f"{f}.tool_calls", "must be a list")
        for k, c in enumerate(calls):
            fn = c.get("function") if isinstance(c, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                raise _fail(i, rec, f"{f}.tool_calls[{k}].function.name", "missing tool name")
    if m["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
        raise _fail(i, rec, f"{f}.tool_call_id", "a tool result needs the id of its tool call")


def validate_tau_record(i: int, rec: Any) -> None:
    """Raise ``ValidationError`` naming the record and field if ``rec`` is not a usable run."""
    if not isinstance(rec, Mapping):
        raise _fail(i, rec, "<record>", f"expected an object, got {type(rec).__name__}")
    for key in ("task_id", "reward", "traj"):
        if key not in rec:
            raise _fail(i, rec, key, "missing")
    if isinstance(rec["task_id"], bool) or not isinstance(rec["task_id"], int | str):
        raise _fail(i, rec, "task_id", "must be an integer or a string")
    r = rec["reward"]
    if isinstance(r, bool) or not isinstance(r, int | float) or math.isnan(r) or not 0.0 <= r <= 1.0:
        raise _fail(i, rec, "reward", f"must be a number in [0, 1], got {r!r}")
    trial = rec.get("trial", 0)
    if isinstance(trial, bool) or not isinstance(trial, int):
        raise _fail(i, rec, "trial", f"must be an integer, got {trial!r}")
    if "info" in rec and not isinstance(rec["info"], Mapping):
        raise _fail(i, rec, "info", "must be an object")
    traj = rec["traj"]
    if not isinstance(traj, list) or not traj:
        raise _fail(i, rec, "traj", "must be a non-empty list of chat messages")
    for j, m in enumerate(traj):
        _check_message(i, rec, j, m)
    if (
        traj[0]["role"] != "system"
        or not isinstance(traj[0].get("content"), str)
        or not traj[0]["content"].strip()
    ):
        raise _fail(
            i, rec, "traj[0]", "the first message must be the system prompt (role 'system', text content)"
        )


def load_tau_historical(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a whole file; raises ``ValidationError`` for the first bad record."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"import file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read import file {p}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"import file {p} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, list):
        raise ValidationError(f"import file {p}: expected a JSON list of runs, got {type(data).__name__}")
    for i, rec in enumerate(data):
        validate_tau_record(i, rec)
    return data


def tau_ids(domain: str, split: str, rec: Mapping[str, Any]) -> tuple[str, str]:
    """(trace id, thread id) for a record: a function of domain, split, task, trial and content."""
    key = f"tau:{domain}:{split}:{rec['task_id']}:{rec.get('trial', 0)}"
    digest = hashlib.sha256(
        (key + "\0" + json.dumps(rec["traj"], sort_keys=True, ensure_ascii=False)).encode("utf-8")
    ).hexdigest()
    return f"tr_imp_{digest[:32]}", f"{key}:{digest[:12]}"


def _count_calls(traj: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    model = sum(1 for m in traj if m.get("role") == "assistant")
    tools = sum(len(m.get("tool_calls") or ()) for m in traj if m.get("role") == "assistant")
    return model, tools


def import_tau_historical(
    store: Store,
    path: str | Path,
    slot: str,
    *,
    domain: str = "airline",
    split: str = "test",
    actor: str = "import",
    clock: Callable[[], datetime] = utcnow,
) -> ImportReport:
    """Import every record of ``path`` as one trace plus one ``reward`` feedback (source ``import``).

    The slot is created from the first record's system prompt if missing; each distinct system prompt
    becomes (or reuses) a version of the slot, never activated by the import. Validation of the whole
    file happens before any write. Idempotent: re-importing skips existing traces and only adds the
    reward of a trace that has none from an import.
    """
    records = load_tau_historical(path)
    if not records:
        raise ValidationError(f"import file {path} contains no runs")
    created = False
    try:
        store.slot_state(slot)
    except NotFoundError:
        store.create_slot(slot, records[0]["traj"][0]["content"], actor=actor)
        created = True
    parent = store.active_version(slot).id
    versions: dict[str, str] = {}
    for rec in records:
        text = rec["traj"][0]["content"]
        if text not in versions:
            v = store.add_version(
                slot, text, parent_id=parent, origin="import", note=f"imported from {Path(path).name}"
            )
            versions[text] = v.id
    base = clock()
    traces: list[Trace] = []
    for i, rec in enumerate(records):
        trace_id, thread_id = tau_ids(domain, split, rec)
        model_calls, tool_calls = _count_calls(rec["traj"])
        at = base + timedelta(microseconds=i)  # keeps file order
        traces.append(
            Trace(
                id=trace_id,
                slot=slot,
                version_id=versions[rec["traj"][0]["content"]],
                thread_id=thread_id,
                messages=tuple(rec["traj"]),
                started_at=at,
                ended_at=at,
                model_calls=model_calls,
                tool_calls=tool_calls,
                replay_key=f"tau:{domain}:{split}:{rec['task_id']}",
                metadata={
                    "source": "tau-historical",
                    "file": Path(path).name,
                    "domain": domain,
                    "split": split,
                    "task_id": rec["task_id"],
                    "trial": rec.get("trial", 0),
                    "info": rec.get("info", {}),
                },
            )
        )
    added = store.add_traces(traces)
    have = {
        f.trace_id
        for f in store.feedback_for([t.id for t in traces])
        if f.kind == "reward" and f.source == "import"
    }
    fbs = [
        Feedback(
            trace_id=t.id,
            kind="reward",
            value=float(rec["reward"]),
            source="import",
            created_at=t.ended_at,
            text="",
        )
        for t, rec in zip(traces, records, strict=True)
        if t.id not in have
    ]
    store.add_feedback(fbs)
    rewards = [float(r["reward"]) for r in records]
    return ImportReport(
        slot=slot,
        records=len(records),
        traces_added=added,
        traces_skipped=len(traces) - added,
        feedback_added=len(fbs),
        version_ids=tuple(dict.fromkeys(versions.values())),
        mean_reward=sum(rewards) / len(rewards),
        slot_created=created,
    )
