"""Row ↔ value-object conversion for the SQL backend (table classes stay inside the store)."""

from __future__ import annotations

from typing import Any

from diffprompt.types import AuditEntry, PromptVersion, Span, Trace, Usage


def version_to_row(v: PromptVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "slot": v.slot,
        "text": v.text,
        "parent_id": v.parent_id,
        "origin": v.origin,
        "content_hash": v.content_hash,
        "note": v.note,
        "created_at": v.created_at,
        "spans": [
            {"id": s.id, "start": s.start, "end": s.end, "text": s.text, "kind": s.kind} for s in v.spans
        ],
    }


def version_from_row(r: Any) -> PromptVersion:
    return PromptVersion(
        id=r["id"],
        slot=r["slot"],
        text=r["text"],
        parent_id=r["parent_id"],
        origin=r["origin"],
        content_hash=r["content_hash"],
        note=r["note"] or "",
        created_at=r["created_at"],
        spans=tuple(
            Span(id=s["id"], start=s["start"], end=s["end"], text=s["text"], kind=s["kind"])
            for s in r["spans"]
        ),
    )


def trace_to_row(t: Trace) -> dict[str, Any]:
    return {
        "id": t.id,
        "slot": t.slot,
        "version_id": t.version_id,
        "thread_id": t.thread_id,
        "messages": [dict(m) for m in t.messages],
        "started_at": t.started_at,
        "ended_at": t.ended_at,
        "latency_ms": float(t.latency_ms),
        "input_tokens": t.usage.input_tokens,
        "output_tokens": t.usage.output_tokens,
        "cost_usd": float(t.usage.cost_usd),
        "model_calls": t.model_calls,
        "tool_calls": t.tool_calls,
        "replay_key": t.replay_key,
        "error": t.error,
        "meta": dict(t.metadata),
    }


def trace_from_row(r: Any) -> Trace:
    return Trace(
        id=r["id"],
        slot=r["slot"],
        version_id=r["version_id"],
        thread_id=r["thread_id"],
        messages=tuple(r["messages"]),
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        latency_ms=float(r["latency_ms"]),
        usage=Usage(
            input_tokens=r["input_tokens"], output_tokens=r["output_tokens"], cost_usd=float(r["cost_usd"])
        ),
        model_calls=r["model_calls"],
        tool_calls=r["tool_calls"],
        replay_key=r["replay_key"],
        error=r["error"],
        metadata=r["meta"] or {},
    )


def audit_from_row(r: Any) -> AuditEntry:
    return AuditEntry(
        id=int(r["id"]),
        slot=r["slot"],
        action=r["action"],
        from_version_id=r["from_version_id"],
        to_version_id=r["to_version_id"],
        actor=r["actor"],
        reason=r["reason"],
        created_at=r["created_at"],
        canary_share=r["canary_share"],
    )
