"""Frozen value objects shared by every part of diffprompt.

These are the seams' currency: the store returns them, the middleware builds them, the optimizer
consumes them. SQL table classes stay inside ``diffprompt.store``; nothing outside the store sees them.
All objects are immutable (``frozen=True``) and keyword-only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SpanKind = Literal["heading", "bullet", "sentence", "block"]
FeedbackKind = Literal["reward", "rating", "judge", "comment"]
FeedbackSource = Literal["env", "user", "judge", "import", "api", "cli"]
DecisionKind = Literal["promote", "reject", "insufficient_data"]
AuditAction = Literal["create", "promote", "rollback", "canary", "canary_clear", "protect"]

FEEDBACK_KINDS: tuple[FeedbackKind, ...] = ("reward", "rating", "judge", "comment")


def utcnow() -> datetime:
    """Timezone-aware UTC now (the only clock the value objects use by default)."""
    return datetime.now(UTC)


def new_id(prefix: str = "") -> str:
    """A fresh random identifier, optionally prefixed (``tr_…`` for traces, ``run_…`` for runs)."""
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Span:
    """One editable unit of a prompt: a heading, a bullet, a sentence, or a block.

    ``start``/``end`` are character offsets into the prompt text (``text == prompt[start:end]``).
    ``id`` is stable across versions while the text (and its occurrence index) is unchanged.
    """

    id: str
    start: int
    end: int
    text: str
    kind: SpanKind


@dataclass(frozen=True, kw_only=True, slots=True)
class PromptVersion:
    """An immutable version of a slot's system prompt."""

    id: str
    slot: str
    text: str
    spans: tuple[Span, ...]
    parent_id: str | None
    created_at: datetime
    origin: str  # "seed", "manual", "optimizer:<run id>", "import"
    content_hash: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One move of a slot's active pointer or canary, with who and why."""

    id: int
    slot: str
    action: AuditAction
    from_version_id: str | None
    to_version_id: str | None
    actor: str
    reason: str
    created_at: datetime
    canary_share: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotState:
    """Where a slot's pointers stand: the active version and an optional canary."""

    slot: str
    active_version_id: str
    canary_version_id: str | None
    canary_share: float
    revision: int  # increases on every pointer move; a cheap "did anything change" check
    protected_span_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Token usage and cost of one model call or one whole episode."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class Trace:
    """One episode (a thread / conversation) served with one pinned prompt version.

    ``messages`` are OpenAI chat-format dicts (``role``, ``content``, ``tool_calls``,
    ``tool_call_id``, ``name``), tool calls and tool results included, in order.
    ``replay_key`` says how to replay the episode (e.g. ``tau:airline:test:17``), or ``None``.
    """

    id: str
    slot: str
    version_id: str | None
    thread_id: str
    messages: tuple[Mapping[str, Any], ...]
    started_at: datetime
    ended_at: datetime
    latency_ms: float = 0.0
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    tool_calls: int = 0
    replay_key: str | None = None
    error: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Feedback:
    """A piece of feedback on a trace; it may arrive long after the episode.

    ``value`` is in [0, 1] for ``reward``, ``rating`` and ``judge`` (ratings are normalised by the
    caller or the API), and ``None`` for ``comment`` (whose content is in ``text``).
    """

    trace_id: str
    kind: FeedbackKind
    value: float | None
    text: str = ""
    source: str = "api"
    created_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TraceWithFeedback:
    """A trace joined with all its feedback, as the optimizer reads a window."""

    trace: Trace
    feedback: tuple[Feedback, ...] = ()

    @property
    def reward(self) -> float | None:
        """The episode's score: latest ``reward``, else mean ``judge``, else mean ``rating``."""
        for kind in ("reward", "judge", "rating"):
            vals = [f.value for f in self.feedback if f.kind == kind and f.value is not None]
            if vals:
                return vals[-1] if kind == "reward" else sum(vals) / len(vals)
        return None

    @property
    def comments(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.feedback if f.text)


@dataclass(frozen=True, kw_only=True, slots=True)
class Candidate:
    """A proposed prompt produced by an editor from a parent version."""

    text: str
    parent_id: str | None
    masked_span_ids: tuple[str, ...]
    editor: str
    seed: int
    config_hash: str = ""
    changed_span_ids: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayResult:
    """The outcome of replaying one case with one prompt (one trial). Failures are data."""

    case_id: str
    version_id: str
    trial: int
    reward: float
    error: str | None = None
    trace: Trace | None = None
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    seconds: float = 0.0
    slice: str = ""  # guarded-slice label, e.g. the task family


@dataclass(frozen=True, kw_only=True, slots=True)
class GateDecision:
    """The gate's verdict on one candidate, with its statistics and human-readable reasons.

    (The simulated target's next move is a different thing: ``tau_envs.sim.agent_base``.)
    """

    kind: DecisionKind
    stats: Mapping[str, Any]
    reasons: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return self.kind == "promote"


def as_tuple(seq: Sequence[Any] | None) -> tuple[Any, ...]:
    """Normalise an optional sequence to a tuple (handy in frozen constructors)."""
    return tuple(seq) if seq is not None else ()
