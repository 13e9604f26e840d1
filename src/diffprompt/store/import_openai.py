"""Import your own logs: ``openai-jsonl``, one conversation per line in OpenAI chat format.

Each non-blank line is one JSON object (schema version 1; the README shows an example)::

    {"messages": [...],                  # required: OpenAI chat messages, tool calls and results
     "thread_id": "t-42",                # optional: the conversation's id (default: from its content)
     "version_id": "pv_...",             # optional: the prompt version it was served with, or
     "prompt": "You are ...",            #   the system prompt text (matched to a version by hash)
     "reward": 1.0, "rating": 0.8,       # optional: numbers in [0, 1]; a rating may be true/false
     "comment": "solved it",             # optional: the user's words
     "started_at": "2025-03-01T10:00:00Z", "ended_at": "...",   # optional: ISO 8601
     "replay_key": "...", "metadata": {...}}                       # optional

Without ``version_id`` and ``prompt``, the first message's text is the prompt when it is a system
message. A prompt is matched to a version of the slot by content (the same text is the same
version; a new text becomes a new version, never activated); the system message is put first in the
stored conversation when the record lacks it. A slot that does not exist is created from the first
prompt of the file.

The whole file is validated before anything is written: a malformed line raises
``ValidationError`` naming its line number and field, and nothing is imported. Trace ids are a
function of the slot, the thread id and the conversation, so the import is idempotent per slot: a
re-import adds nothing, a line repeated in the file is one trace with one set of feedback, and the
same file imported into a second slot is imported there too.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from diffprompt.errors import NotFoundError, ValidationError
from diffprompt.store._logic import version_id as version_id_for
from diffprompt.store.base import Store
from diffprompt.store.importers import MAX_RECORD_CHARS, ImportReport, conversation_problem
from diffprompt.types import Feedback, FeedbackKind, Trace, utcnow

SCHEMA_VERSION = 1
FIELDS = frozenset(
    {
        "messages",
        "thread_id",
        "version_id",
        "prompt",
        "reward",
        "rating",
        "comment",
        "started_at",
        "ended_at",
        "replay_key",
        "metadata",
        "schema_version",
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Conversation:
    """One validated line of an ``openai-jsonl`` file."""

    line: int
    messages: tuple[dict[str, Any], ...]
    thread_id: str | None
    version_id: str | None
    prompt: str | None
    feedback: tuple[tuple[FeedbackKind, float | None, str], ...]
    started_at: datetime | None
    ended_at: datetime | None
    replay_key: str | None
    metadata: Mapping[str, Any]

    def key(self, slot: str) -> str:
        """The content key of this conversation in ``slot`` (equal keys are one trace)."""
        doc = json.dumps([self.thread_id, self.messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{slot}\0{doc}".encode()).hexdigest()


def _fail(line: int, field: str, problem: str) -> ValidationError:
    return ValidationError(
        f"malformed openai-jsonl file: line {line}, field {field!r}: {problem}; nothing was imported"
    )


def _time(line: int, field: str, v: Any) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _fail(line, field, "must be an ISO 8601 timestamp string")
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
    except ValueError:
        raise _fail(line, field, f"{v!r} is not an ISO 8601 timestamp") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # naive: UTC


def _unit(line: int, field: str, v: Any, *, thumbs: bool = False) -> float | None:
    if v is None:
        return None
    if thumbs and isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
        also = " or true/false" if thumbs else ""
        raise _fail(line, field, f"must be a number in [0, 1]{also}, got {v!r}")
    return float(v)


def _opt_str(line: int, field: str, v: Any) -> str | None:
    if v is not None and (not isinstance(v, str) or not v.strip()):
        raise _fail(line, field, "must be a non-empty string")
    return v


def parse_line(line: int, text: str) -> Conversation:
    """Validate one line; ``ValidationError`` names the line and the field."""
    if len(text) > MAX_RECORD_CHARS:
        raise _fail(line, "<line>", f"{len(text):,} characters is over the {MAX_RECORD_CHARS:,}-character cap")
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(line, "<line>", f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(rec, dict):
        raise _fail(line, "<line>", f"expected a JSON object, got {type(rec).__name__}")
    unknown = sorted(set(rec) - FIELDS)
    if unknown:
        raise _fail(line, unknown[0], f"unknown field; known fields: {', '.join(sorted(FIELDS))}")
    if rec.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise _fail(line, "schema_version", f"this diffprompt reads version {SCHEMA_VERSION}")
    if "messages" not in rec:
        raise _fail(line, "messages", "missing")
    problem = conversation_problem(rec["messages"], "messages")
    if problem is not None:
        raise _fail(line, *problem)
    messages = tuple(dict(m) for m in rec["messages"])
    prompt = _opt_str(line, "prompt", rec.get("prompt"))
    first = messages[0]
    if prompt is None and first["role"] == "system" and isinstance(first.get("content"), str):
        prompt = first["content"] if first["content"].strip() else None
    comment = rec.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise _fail(line, "comment", "must be a string")
    fb: list[tuple[FeedbackKind, float | None, str]] = []
    if (r := _unit(line, "reward", rec.get("reward"))) is not None:
        fb.append(("reward", r, ""))
    if (g := _unit(line, "rating", rec.get("rating"), thumbs=True)) is not None:
        fb.append(("rating", g, ""))
    if comment and comment.strip():
        fb.append(("comment", None, comment))
    meta = rec.get("metadata", {})
    if not isinstance(meta, dict):
        raise _fail(line, "metadata", "must be an object")
    started, ended = _time(line, "started_at", rec.get("started_at")), _time(line, "ended_at", rec.get("ended_at"))
    if started and ended and ended < started:
        raise _fail(line, "ended_at", "is before started_at")
    return Conversation(
        line=line,
        messages=messages,
        thread_id=_opt_str(line, "thread_id", rec.get("thread_id")),
        version_id=_opt_str(line, "version_id", rec.get("version_id")),
        prompt=prompt,
        feedback=tuple(fb),
        started_at=started,
        ended_at=ended,
        replay_key=_opt_str(line, "replay_key", rec.get("replay_key")),
        metadata=meta,
    )


def load_openai_jsonl(path: str | Path) -> list[Conversation]:
    """Read and validate a whole file (blank lines are skipped); raises for the first bad line."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            out = [parse_line(n, raw) for n, raw in enumerate(fh, 1) if raw.strip()]
    except FileNotFoundError:
        raise ValidationError(f"import file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"import file {p} is not UTF-8 text (byte {exc.start}); export it as UTF-8") from None
    except OSError as exc:
        raise ValidationError(f"cannot read import file {p}: {exc.strerror or exc}") from None
    if not out:
        raise ValidationError(f"import file {p} contains no conversations")
    return out


def _check_consistent(slot: str, convs: list[Conversation]) -> dict[str, Conversation]:
    """One conversation per key; a repeat must carry the same feedback and version."""
    by_key: dict[str, Conversation] = {}
    for c in convs:
        prev = by_key.setdefault(c.key(slot), c)
        if prev is not c and (prev.feedback, prev.version_id, prev.prompt) != (c.feedback, c.version_id, c.prompt):
            raise _fail(
                c.line,
                "messages",
                f"repeats the conversation of line {prev.line} with other feedback or prompt; "
                "give each conversation its own thread_id",
            )
    return by_key


def _resolve_versions(store: Store, slot: str, convs: list[Conversation], exists: bool) -> None:
    """Check every named ``version_id`` before any write (it must be a version of ``slot``)."""
    for c in convs:
        if c.version_id is None:
            continue
        if not exists:
            raise _fail(c.line, "version_id", f"slot {slot!r} does not exist yet, so it has no versions")
        try:
            v = store.get_version(c.version_id)
        except NotFoundError:
            raise _fail(c.line, "version_id", f"{c.version_id!r} is not a stored version") from None
        if v.slot != slot:
            raise _fail(c.line, "version_id", f"{c.version_id!r} belongs to slot {v.slot!r}, not {slot!r}")


def import_openai_jsonl(
    store: Store,
    path: str | Path,
    slot: str,
    *,
    actor: str = "import",
    clock: Callable[[], datetime] = utcnow,
) -> ImportReport:
    """Import an ``openai-jsonl`` file into ``slot`` (see the module docstring for the format)."""
    convs = load_openai_jsonl(path)
    by_key = _check_consistent(slot, convs)
    try:
        store.slot_state(slot)
        exists = True
    except NotFoundError:
        exists = False
    _resolve_versions(store, slot, convs, exists)
    created = False
    if not exists:
        seed = next((c.prompt for c in convs if c.prompt), None)
        if seed is None:
            raise ValidationError(
                f"slot {slot!r} does not exist and no line names a prompt; create it first "
                f"(`diffprompt prompts add {slot} FILE`) or give each line a 'prompt' or system message"
            )
        store.create_slot(slot, seed, actor=actor)
        created = True
    parent = store.active_version(slot).id
    texts: dict[str, str] = {}  # version id -> text (for the system message)
    note = f"imported from {Path(path).name}"
    for c in by_key.values():
        if c.version_id is None and c.prompt is not None and version_id_for(slot, c.prompt) not in texts:
            v = store.add_version(slot, c.prompt, parent_id=parent, origin="import", note=note)
            texts[v.id] = v.text
        elif c.version_id is not None and c.version_id not in texts:
            texts[c.version_id] = store.get_version(c.version_id).text
    base = clock()
    traces: list[Trace] = []
    wanted: dict[str, list[tuple[FeedbackKind, float | None, str]]] = {}
    for i, (key, c) in enumerate(by_key.items()):
        vid = c.version_id or (version_id_for(slot, c.prompt) if c.prompt is not None else None)
        messages = list(c.messages)
        if vid is not None and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": texts[vid]})
        started = c.started_at or c.ended_at or base + timedelta(microseconds=i)  # keeps file order
        ended = c.ended_at or started
        traces.append(
            Trace(
                id=f"tr_oai_{key[:32]}",
                slot=slot,
                version_id=vid,
                thread_id=c.thread_id or f"imp:{key[:16]}",
                messages=tuple(messages),
                started_at=started,
                ended_at=ended,
                latency_ms=(ended - started).total_seconds() * 1000.0,
                model_calls=sum(1 for m in messages if m["role"] == "assistant"),
                tool_calls=sum(len(m.get("tool_calls") or ()) for m in messages if m["role"] == "assistant"),
                replay_key=c.replay_key,
                metadata={**c.metadata, "source": "openai-jsonl", "file": Path(path).name, "line": c.line},
            )
        )
        wanted[traces[-1].id] = list(c.feedback)
    added = store.add_traces(traces)
    have = {(f.trace_id, f.kind, f.value, f.text) for f in store.feedback_for(list(wanted)) if f.source == "import"}
    fbs = [
        Feedback(trace_id=t.id, kind=kind, value=value, text=text, source="import", created_at=t.ended_at)
        for t in traces
        for kind, value, text in wanted[t.id]
        if (t.id, kind, value, text) not in have
    ]
    store.add_feedback(fbs)
    rewards = [v for fb in wanted.values() for k, v, _ in fb if k == "reward" and v is not None]
    return ImportReport(
        slot=slot,
        records=len(convs),
        traces_added=added,
        traces_skipped=len(traces) - added,
        feedback_added=len(fbs),
        version_ids=tuple(dict.fromkeys(t.version_id for t in traces if t.version_id)),
        mean_reward=sum(rewards) / len(rewards) if rewards else None,
        slot_created=created,
        records_repeated=len(convs) - len(by_key),
    )
