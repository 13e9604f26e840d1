"""Import recorded tool-calling runs as traces with their rewards.

``import_tau_historical`` reads τ-bench "historical trajectory" files: a JSON list of
``{task_id, reward, info, traj, trial}`` records whose ``traj`` is the OpenAI chat-format conversation
(system prompt, user turns, assistant tool calls, tool results). Every record is validated before
anything is written; ids are derived from the slot and the record, so importing the same file twice
into a slot adds nothing, a record repeated in the file is one trace with one reward, and the same
file imported into a second slot is imported there too. ``openai-jsonl`` files are read by
``diffprompt.store.import_openai``; both share the message checks and size caps here.
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
MAX_MESSAGE_CHARS = 1_000_000  # one message's content (a longer one is a paste or a dump, not a turn)
MAX_RECORD_CHARS = 4_000_000  # one conversation as JSON
MAX_MESSAGES = 2_000  # turns per conversation


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
    records_repeated: int = 0  # records that repeat an earlier record of the same file (one trace)


def _fail(index: int, rec: Any, field: str, problem: str) -> ValidationError:
    task = rec.get("task_id") if isinstance(rec, Mapping) else None
    where = f"record {index}" + (f" (task_id {task!r})" if task is not None else "")
    return ValidationError(
        f"malformed tau-historical file: {where}, field {field!r}: {problem}; nothing was imported"
    )


def chat_message_problem(m: Any, f: str) -> tuple[str, str] | None:
    """``(field, problem)`` if ``m`` is not an OpenAI chat message (``f`` names it, e.g. ``traj[3]``)."""
    if not isinstance(m, Mapping):
        return f, "each message must be an object"
    if m.get("role") not in _ROLES:
        return f"{f}.role", f"must be one of {sorted(_ROLES)}, got {m.get('role')!r}"
    content = m.get("content")
    if content is not None and not isinstance(content, str | list):
        return f"{f}.content", "must be a string, a list of parts, or null"
    size = len(content) if isinstance(content, str) else len(json.dumps(content)) if content else 0
    if size > MAX_MESSAGE_CHARS:
        return f"{f}.content", f"{size:,} characters is over the {MAX_MESSAGE_CHARS:,}-character cap per message"
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return f"{f}.tool_calls", "must be a list"
        for k, c in enumerate(calls):
            fn = c.get("function") if isinstance(c, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                return f"{f}.tool_calls[{k}].function.name", "missing tool name"
    if m["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
        return f"{f}.tool_call_id", "a tool result needs the id of its tool call"
    return None


def conversation_problem(messages: Any, f: str) -> tuple[str, str] | None:
    """``(field, problem)`` for the first bad message, or an over-size conversation; None when fine."""
    if not isinstance(messages, list) or not messages:
        return f, "must be a non-empty list of chat messages"
    if len(messages) > MAX_MESSAGES:
        return f, f"{len(messages):,} messages is over the {MAX_MESSAGES:,}-message cap per conversation"
    for j, m in enumerate(messages):
        problem = chat_message_problem(m, f"{f}[{j}]")
        if problem is not None:
            return problem
    size = len(json.dumps(messages, ensure_ascii=False))
    if size > MAX_RECORD_CHARS:
        return f, f"{size:,} characters is over the {MAX_RECORD_CHARS:,}-character cap per conversation"
    return None


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
    problem = conversation_problem(traj, "traj")
    if problem is not None:
        raise _fail(i, rec, *problem)
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


def tau_ids(domain: str, split: str, rec: Mapping[str, Any], slot: str | None = None) -> tuple[str, str]:
    """(trace id, thread id) for a record: a function of slot, domain, split, task, trial and content.

    ``slot=None`` gives the id of imports made before ids named the slot (still recognised, so an
    old import is not duplicated by a re-import).
    """
    key = f"tau:{domain}:{split}:{rec['task_id']}:{rec.get('trial', 0)}"
    digest = hashlib.sha256(
        (key + "\0" + json.dumps(rec["traj"], sort_keys=True, ensure_ascii=False)).encode("utf-8")
    ).hexdigest()
    thread = f"{key}:{digest[:12]}"
    if slot is None:
        return f"tr_imp_{digest[:32]}", thread
    return "tr_imp_" + hashlib.sha256(f"{slot}\0{digest}".encode()).hexdigest()[:32], thread


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
    first: dict[str, int] = {}
    for i, rec in enumerate(records):  # before any write: a repeat must not contradict its original
        j = first.setdefault(tau_ids(domain, split, rec)[0], i)
        if j != i and float(records[j]["reward"]) != float(rec["reward"]):
            raise _fail(i, rec, "reward", f"repeats record {j} with a different reward")
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
    legacy = {t.id for t in store.list_traces(slot) if t.id.startswith("tr_imp_")} if not created else set()
    traces: list[Trace] = []
    rewards_by_trace: dict[str, float] = {}
    repeated = 0
    for i, rec in enumerate(records):
        trace_id, thread_id = tau_ids(domain, split, rec, slot)
        old_id = tau_ids(domain, split, rec)[0]
        if old_id in legacy:
            trace_id = old_id  # imported by an earlier diffprompt: the same trace
        if trace_id in rewards_by_trace:  # the record is repeated in the file: one trace, one reward
            repeated += 1
            continue
        rewards_by_trace[trace_id] = float(rec["reward"])
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
            value=rewards_by_trace[t.id],
            source="import",
            created_at=t.ended_at,
            text="",
        )
        for t in traces
        if t.id not in have
    ]
    store.add_feedback(fbs)
    rewards = list(rewards_by_trace.values())
    return ImportReport(
        slot=slot,
        records=len(records),
        traces_added=added,
        traces_skipped=len(traces) - added,
        feedback_added=len(fbs),
        version_ids=tuple(dict.fromkeys(versions.values())),
        mean_reward=sum(rewards) / len(rewards),
        slot_created=created,
        records_repeated=repeated,
    )
