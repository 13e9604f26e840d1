"""The typed, versioned run record: what one optimization round decided and why.

The round writes a ``RunRecord`` with ``store.save_run(run_id, slot, record.to_json(), status=...)``;
every reader (the report, ``diffprompt runs``, the rejected-edit history, the scheduler, the demo)
turns the stored dict back with ``RunRecord.from_json`` and reads fields, never string keys.

Versions: ``SCHEMA_VERSION`` 2 is this layout. Records without ``schema_version`` (version 1, the
untyped dict the round wrote before) are read with the same field names; what version 1 did not
record (which traces the blamer and the editor read) is empty. Keys this module does not know —
the scheduler's ``job_id``/``tick``/``worker``, ``abandoned_by``, an ``error`` — are kept in
``extra`` and written back unchanged, so a record survives a read-modify-write by any reader.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from diffprompt.errors import ValidationError
from diffprompt.types import GateDecision

SCHEMA_VERSION = 2
STORE_KEYS = ("run_id", "slot", "status", "created_at", "updated_at")  # added by the store's run view
FINISHED = ("promoted", "canary", "rejected", "insufficient_data", "dry_run", "budget_exhausted")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class VersionRef:
    """A prompt version as the record keeps it (id and full text)."""

    id: str
    text: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowInfo:
    """The window of recorded traces the round started from."""

    key: str = ""
    n: int = 0
    failures: int = 0
    successes: int = 0
    trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CaseUse:
    """Which traces and replay keys each part of the round saw.

    The blamer and the editor read only traces whose replay key is not held out; the gate replays
    only held-out keys, so ``read_replay_keys`` and ``holdout_replay_keys`` are disjoint.
    """

    screen: tuple[str, ...] = ()  # case ids of the screening minibatch (read by the round, not the gate)
    holdout: tuple[str, ...] = ()  # case ids the gate replays
    blamer_trace_ids: tuple[str, ...] = ()
    editor_trace_ids: tuple[str, ...] = ()
    read_replay_keys: tuple[str, ...] = ()
    holdout_replay_keys: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class AttributionRow:
    """One ranked span of the incumbent with its signal components and evidence."""

    span_id: str
    score: float = 0.0
    components: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[Mapping[str, Any], ...] = ()
    insert: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class IterationRecord:
    """One edit iteration: the spans it masked, the insertion anchors and the masked prompt."""

    iteration: int
    edit_budget: int = 0
    masked_span_ids: tuple[str, ...] = ()
    inserted: tuple[str, ...] = ()  # anchor span ids that got an insertion slot
    masked_prompt: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CandidateRecord:
    """One proposed candidate with its validation and screening outcome."""

    editor: str = ""
    seed: int = 0
    status: str = ""  # invalid | malformed | unchanged | duplicate | repeat | valid | screened | screen_lost
    reason: str = ""
    screen_score: float | None = None
    accepted: bool = False
    text: str = ""
    masked_span_ids: tuple[str, ...] = ()
    changed_span_ids: tuple[str, ...] = ()
    new_texts: Mapping[str, str] = field(default_factory=dict)
    diff: str = ""
    iteration: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeRecord:
    """One replayed episode (no trace)."""

    case: str
    trial: int = 0
    reward: float = 0.0
    error: str | None = None
    calls: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class VersionReplay:
    """One prompt's side of a paired replay."""

    mean: float = 0.0
    errors: int = 0
    model_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    episodes: tuple[EpisodeRecord, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayCase:
    id: str
    replay_key: str | None = None
    slice: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayRecord:
    """A paired replay: every prompt (by its user-facing label) on the same cases and seeds."""

    cases: tuple[ReplayCase, ...] = ()
    trials: int = 1
    seed: int = 0
    seconds: float = 0.0
    versions: Mapping[str, VersionReplay] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanChangeRecord:
    kind: str
    old_id: str | None = None
    old: str | None = None
    new_id: str | None = None
    new: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FinalistRecord:
    """The finalist the gate decided on (promoted or not)."""

    index: int = 0
    label: str = "candidate"
    text: str = ""
    diff: str = ""
    changed_span_ids: tuple[str, ...] = ()
    span_changes: tuple[SpanChangeRecord, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CostRecord:
    """What the round spent (replay episodes and, with a meter, every model call)."""

    target_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    meter: Mapping[str, float] | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class StopRecord:
    """A budget that stopped the round."""

    budget: str
    limit: float = 0.0
    used: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRecord:
    """One optimizer run, as saved in the store (see the module docstring)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str = ""
    slot: str = ""
    status: str = ""
    created_at: str | None = None
    started_at: str | None = None
    updated_at: str | None = None
    ended_at: str | None = None
    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    editor: str = ""
    editor_capabilities: Mapping[str, bool] = field(default_factory=dict)
    env: str = ""
    dry_run: bool = False
    actor: str = ""
    incumbent: VersionRef | None = None
    window: WindowInfo | None = None
    attribution: tuple[AttributionRow, ...] = ()
    cases: CaseUse | None = None
    iterations: tuple[IterationRecord, ...] = ()
    candidates: tuple[CandidateRecord, ...] = ()
    screens: tuple[ReplayRecord, ...] = ()
    replay: ReplayRecord | None = None
    finalist: FinalistRecord | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    decision: GateDecision | None = None
    promoted_version: str | None = None
    rejected_edits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    stopped: StopRecord | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    cost: CostRecord | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """A round that ended (not running, abandoned, failed, nor a scheduler job row)."""
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``extra`` keys inlined at the top level; store keys left to the store)."""
        out = _encode(self)
        extra = out.pop("extra", {}) or {}
        for k in ("created_at",):
            out.pop(k, None)  # the store owns it
        return {**extra, **out}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Read a stored record of any schema version (the store's run view is accepted as is)."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"a run record must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValidationError(
                f"run record schema_version {version!r} is newer than this diffprompt reads "
                f"({SCHEMA_VERSION}); upgrade diffprompt"
            )
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names and k != "extra"}
        extra = {k: v for k, v in data.items() if k not in names}
        try:
            rec = _decode(cls, known)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"run record {data.get('run_id', '?')!r} is malformed: {exc}") from None
        return dataclasses.replace(rec, schema_version=SCHEMA_VERSION, extra={**extra, **dict(data.get("extra") or {})})


# ------------------------------------------------------------------------------------------- codec
def _encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _encode(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        import diffprompt.types as core_types

        _HINTS[cls] = typing.get_type_hints(cls, {**vars(core_types), **globals()})
    return _HINTS[cls]


def _decode(tp: Any, value: Any) -> Any:
    """Build a value of type ``tp`` from JSON data (lenient: unknown dataclass keys are dropped)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if value is None:
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValidationError(f"run record: expected an object for {tp.__name__}, got {value!r:.60}")
        hints = _hints(tp)
        kw = {f.name: _decode(hints[f.name], value[f.name]) for f in fields(tp) if f.name in value}
        if tp is GateDecision:
            kw.setdefault("stats", {})
            kw.setdefault("reasons", ())
        return tp(**kw)
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in (value or ()))
    if origin in (Mapping, dict):
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _decode(vt, v) for k, v in dict(value).items()}
    if tp is str:
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    if tp is bool:
        return bool(value)
    return value


def to_json(obj: Any) -> Any:
    """The JSON form of any record part (dataclasses to dicts, tuples to lists, datetimes to ISO)."""
    return _encode(obj)


def decode(tp: type[T], value: Any) -> T:
    """Decode one record part (e.g. ``ReplayRecord``) from its JSON form."""
    return typing.cast(T, _decode(tp, value))
