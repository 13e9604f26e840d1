"""Pure rules shared by every store backend: ids, validation, rollback history, statistics.

Backends do I/O; the decisions (what a version id is, which values are valid, where a rollback goes,
what ``stats`` reports) live here once so memory and SQL cannot drift apart.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from diffprompt.errors import ConflictError, ValidationError
from diffprompt.spans import content_hash, segment
from diffprompt.types import FEEDBACK_KINDS, Feedback, PromptVersion, Trace

_SLOT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,127}$")
SCORED_KINDS = ("reward", "rating", "judge")


def check_slot_name(slot: str) -> None:
    """Slot names are 1-128 chars of letters, digits and ``_ . : - /``, starting alphanumeric."""
    if not isinstance(slot, str) or not _SLOT_RE.match(slot):
        raise ValidationError(
            f"invalid slot name {slot!r}: use 1-128 letters, digits or '_.:-/', "
            "starting with a letter or digit"
        )


def version_id(slot: str, text: str) -> str:
    """Deterministic version id: the same text under the same slot is the same version."""
    return "pv_" + hashlib.sha256(f"{slot}\0{text}".encode()).hexdigest()[:20]


def make_version(
    slot: str, text: str, *, parent_id: str | None, origin: str, note: str, created_at: datetime
) -> PromptVersion:
    """Build (not store) a version: spans from ``segment``, content hash, deterministic id."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"prompt text for slot {slot!r} is empty; give the system prompt text")
    if not origin:
        raise ValidationError("a version needs an origin (seed, manual, optimizer:<run id>, import)")
    return PromptVersion(
        id=version_id(slot, text),
        slot=slot,
        text=text,
        spans=segment(text),
        parent_id=parent_id,
        created_at=created_at,
        origin=origin,
        content_hash=content_hash(text),
        note=note,
    )


def check_protected(version: PromptVersion, span_ids: Sequence[str]) -> tuple[str, ...]:
    """Protected span ids must name spans of the active version; returns them de-duplicated, in order."""
    known = {s.id for s in version.spans}
    unknown = [s for s in span_ids if s not in known]
    if unknown:
        raise ValidationError(
            f"unknown span ids {unknown} for slot {version.slot!r}; "
            f"see `diffprompt prompts show {version.slot} --spans`"
        )
    return tuple(dict.fromkeys(span_ids))


def check_actor(actor: str) -> None:
    """Every registry move is audited with who made it."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError("every registry move needs an actor (who); pass actor=... / --actor")


def check_share(version_id_: str | None, share: float) -> None:
    """A canary share must be strictly between 0 and 1 (ignored when clearing)."""
    if version_id_ is None:
        return
    if not isinstance(share, int | float) or math.isnan(share) or not 0.0 < share < 1.0:
        raise ValidationError(f"canary share must be strictly between 0 and 1, got {share!r}")


def check_same_slot(slot: str, version: PromptVersion, what: str) -> None:
    if version.slot != slot:
        raise ConflictError(
            f"cannot {what} slot {slot!r} to version {version.id}: it belongs to slot {version.slot!r}"
        )


def check_expected_active(slot: str, active: str, expected: str | None, what: str) -> None:
    """Compare-and-set: with ``expected`` given, the pointer moves only if it still points there."""
    if expected is not None and active != expected:
        raise ConflictError(
            f"cannot {what} in slot {slot!r}: the active version is now {active}, not {expected}; "
            "someone moved it meanwhile, so this change was not applied"
        )


def rollback_target(history: Sequence[str], active: str, requested: str | None) -> str:
    """Where a rollback goes: ``requested``, else the version active before the current one."""
    if requested is not None:
        return requested
    stack = list(history)
    while stack and stack[-1] == active:
        stack.pop()
    if not stack:
        raise ConflictError("no earlier active version to roll back to; name one with --to VERSION_ID")
    return stack[-1]


def push_history(history: Sequence[str], target: str, *, rollback: bool) -> list[str]:
    """Active-version history after a move. A rollback unwinds to ``target`` if it is on the stack."""
    stack = list(history)
    if rollback and target in stack:
        return stack[: len(stack) - stack[::-1].index(target)]
    if not stack or stack[-1] != target:
        stack.append(target)
    return stack[-64:]  # bounded: history deeper than this is still in the audit log


def validate_feedback(items: Sequence[Feedback], known_trace_ids: Iterable[str]) -> None:
    """Check kinds and value ranges; unknown trace ids are the caller's NotFoundError."""
    del known_trace_ids  # existence is checked by the backend, in its transaction
    for i, fb in enumerate(items):
        where = f"feedback #{i} (trace {fb.trace_id!r})"
        if not isinstance(fb.text, str):
            raise ValidationError(f"{where}: text must be a string, got {type(fb.text).__name__}")
        if fb.kind not in FEEDBACK_KINDS:
            raise ValidationError(
                f"{where}: unknown kind {fb.kind!r}; use one of {', '.join(FEEDBACK_KINDS)}"
            )
        if fb.kind == "comment":
            if fb.value is not None:
                raise ValidationError(f"{where}: a comment carries text, not a value")
            if not fb.text.strip():
                raise ValidationError(f"{where}: a comment needs non-empty text")
            continue
        v = fb.value
        if v is None or isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
            raise ValidationError(f"{where}: {fb.kind} needs a numeric value in [0, 1], got {v!r}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValidationError(
                f"{where}: {fb.kind} value {v!r} is outside [0, 1] (normalise ratings first)"
            )
        if not fb.source:
            raise ValidationError(f"{where}: source must not be empty")


def validate_trace(tr: Trace) -> None:
    """Minimal shape checks of a trace before insertion."""
    if not tr.id or not tr.thread_id:
        raise ValidationError(f"trace {tr.id!r}: id and thread_id are required")
    if not tr.slot:
        raise ValidationError(f"trace {tr.id!r}: slot is required")


def latest_rewards(feedback: Iterable[Feedback]) -> dict[str, float]:
    """Per trace, the latest ``reward`` value (by created_at, then id)."""
    best: dict[str, tuple[datetime, int, float]] = {}
    for fb in feedback:
        if fb.kind != "reward" or fb.value is None:
            continue
        key = (fb.created_at, fb.id or 0, float(fb.value))
        cur = best.get(fb.trace_id)
        if cur is None or key[:2] >= cur[:2]:
            best[fb.trace_id] = key
    return {t: v[2] for t, v in best.items()}


def summarize(
    *,
    slot: str | None,
    traces: int,
    feedback: Sequence[Feedback],
    errors: int,
    versions: int,
    first: datetime | None,
    last: datetime | None,
    by_kind: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The ``stats`` dict: counts, mean reward over rewarded traces, feedback per kind."""
    rewards = latest_rewards(feedback)
    kinds = by_kind if by_kind is not None else {}
    if by_kind is None:
        for fb in feedback:
            kinds[fb.kind] = kinds.get(fb.kind, 0) + 1
    mean = (sum(rewards.values()) / len(rewards)) if rewards else None
    return {
        "slot": slot,
        "traces": traces,
        "feedback": sum(kinds.values()),
        "feedback_by_kind": dict(sorted(kinds.items())),
        "rewarded_traces": len(rewards),
        "mean_reward": round(mean, 6) if mean is not None else None,
        "errors": errors,
        "versions": versions,
        "first_trace_at": first.isoformat() if first else None,
        "last_trace_at": last.isoformat() if last else None,
    }
