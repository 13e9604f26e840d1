"""Run reports: a self-contained HTML file (inline SVG plots, no external assets) and a terminal summary.

``build_report(store, run_id)`` gathers everything from the store — the run record the optimizer
saved, the slot's versions and audit trail, and the slot's traces with their rewards — into a
``ReportData`` value; ``render_html`` turns it into one HTML string (template
``templates/report.html.j2``); ``write_report`` writes it. Nothing here prints; the CLI renders the
terminal summary from ``summary_rows``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffprompt import report_svg
from diffprompt.optimize.record import RunRecord, to_json
from diffprompt.rollout.report import canary_section
from diffprompt.spans import diff_spans, segment
from diffprompt.store.base import Store
from diffprompt.templating import render
from diffprompt.types import PromptVersion, TraceWithFeedback


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything one report shows, as plain values."""

    run: RunRecord
    slot: str
    versions: tuple[PromptVersion, ...]
    audit: tuple[Mapping[str, Any], ...]
    reward_points: tuple[tuple[int, str, float], ...]  # (episode #, version id, reward), time order
    extra: Mapping[str, Any] = field(default_factory=dict)
    canary_html: str = ""  # the live canary section (diffprompt.rollout.report), "" when none

    @property
    def run_id(self) -> str:
        return self.run.run_id


def _short(version_id: str | None) -> str:
    return (version_id or "-")[:12]


def build_report(store: Store, run_id: str, *, extra: Mapping[str, Any] | None = None) -> ReportData:
    """Collect the report's data from the store (``NotFoundError`` for an unknown run id)."""
    record = RunRecord.from_json(store.get_run(run_id))
    slot = record.slot
    window: list[TraceWithFeedback] = store.window(slot)
    rewarded = sorted((w for w in window if w.reward is not None), key=lambda w: w.trace.ended_at)
    points = tuple((i, t.trace.version_id or "", float(t.reward or 0.0)) for i, t in enumerate(rewarded))
    audit = tuple(
        {
            "when": a.created_at.isoformat(timespec="seconds"),
            "action": a.action,
            "from": _short(a.from_version_id),
            "to": _short(a.to_version_id),
            "actor": a.actor,
            "reason": a.reason,
        }
        for a in store.audit_log(slot)
    )
    return ReportData(
        run=record,
        slot=slot,
        versions=tuple(store.list_versions(slot)),
        audit=audit,
        reward_points=points,
        extra=dict(extra or {}),
        canary_html=canary_section(store, slot),
    )


def reward_series(points: Sequence[tuple[int, str, float]], window: int = 20) -> dict[str, list[tuple[float, float]]]:
    """Per version: rolling mean reward (last ``window`` episodes of that version) at each episode #."""
    series: dict[str, list[tuple[float, float]]] = {}
    recent: dict[str, list[float]] = {}
    for i, vid, r in points:
        buf = recent.setdefault(vid, [])
        buf.append(r)
        del buf[:-window]
        series.setdefault(f"v {_short(vid)}", []).append((float(i), sum(buf) / len(buf)))
    return series


def _blame_rows(data: ReportData) -> list[dict[str, Any]]:
    incumbent = data.run.incumbent.text if data.run.incumbent is not None else ""
    spans = {s.id: s.text for s in segment(incumbent)}
    rows = []
    for a in data.run.attribution:
        rows.append(
            {
                "span_id": a.span_id,
                "text": spans.get(a.span_id, "(insertion point)" if a.insert else ""),
                "score": a.score,
                "components": ", ".join(f"{k}={v:.2f}" for k, v in a.components.items()),
                "evidence": "; ".join(_evidence_text(e) for e in a.evidence[:3]),
            }
        )
    return rows


def _diff_rows(data: ReportData) -> list[dict[str, str]]:
    incumbent = data.run.incumbent.text if data.run.incumbent is not None else ""
    finalist = data.run.finalist.text if data.run.finalist is not None else ""
    if not incumbent or not finalist:
        return []
    rows = []
    for c in diff_spans(segment(incumbent), segment(finalist)):
        rows.append({"kind": c.kind, "old": c.old.text if c.old else "", "new": c.new.text if c.new else ""})
    return rows


def _replay_rows(data: ReportData) -> list[dict[str, Any]]:
    versions = data.run.replay.versions if data.run.replay is not None else {}
    return [
        {
            "version": name,
            "mean": v.mean,
            "episodes": len(v.episodes),
            "errors": v.errors,
            "calls": v.model_calls,
            "tokens": v.tokens,
            "cost": v.cost_usd,
        }
        for name, v in versions.items()
    ]


def summary_rows(data: ReportData) -> list[tuple[str, str]]:
    """(label, value) pairs for the terminal summary and the report's header table."""
    run = data.run
    stats = run.decision.stats if run.decision is not None else {}
    rows = [
        ("run", data.run_id),
        ("slot", data.slot),
        ("status", run.status),
        ("editor", run.editor + (" (oracle: a labelled ceiling)" if run.editor_capabilities.get("oracle") else "")),
        ("decision", run.decision.kind if run.decision is not None else ""),
        ("p-value", f"{stats['p_value']:.4g}" if isinstance(stats.get("p_value"), int | float) else "-"),
        ("mean gain", f"{stats['mean_gain']:+.3f}" if isinstance(stats.get("mean_gain"), int | float) else "-"),
        ("scores", ", ".join(f"{_short(k)}={v:.3f}" for k, v in run.scores.items())),
        ("promoted version", _short(run.promoted_version)),
        ("reasons", " | ".join(run.decision.reasons if run.decision is not None else ())),
    ]
    if run.cases is not None:
        c = run.cases
        both = len(set(c.holdout_replay_keys) & set(c.read_replay_keys))
        seen = "none of them" if not both else f"{both} of them also"
        rows.append(
            (
                "held-out cases",
                f"{len(c.holdout_replay_keys)} replay keys replayed by the gate, {seen} read by the blamer "
                f"({len(c.blamer_trace_ids)} traces) or the editor ({len(c.editor_trace_ids)} traces)",
            )
        )
    rows += [(str(k), str(v)) for k, v in data.extra.items()]
    return rows


def render_html(data: ReportData) -> str:
    """The whole report as one self-contained HTML string."""
    run = data.run
    series = reward_series(data.reward_points)
    blame = _blame_rows(data)
    timings = run.timings
    plots = {
        "reward": report_svg.line_chart(
            series,
            title="Reward over time per prompt version (rolling mean of 20)",
            x_label="episode (time order)",
            y_label="reward",
            y_range=(0.0, 1.0),
        ),
        "blame": report_svg.bar_chart(
            [(f"{b['span_id'][:10]} {b['text'][:40]}", b["score"]) for b in blame[:12]],
            title="Per-span blame (attribution score)",
            value_label="score",
        )
        if blame
        else "",
        "timings": report_svg.bar_chart(
            [(k, float(v)) for k, v in timings.items()],
            title="Time per stage",
            value_label="seconds",
            color=report_svg.PALETTE[0],
        )
        if timings
        else "",
    }
    return render(
        "report.html.j2",
        data=data,
        summary=summary_rows(data),
        plots=plots,
        blame=blame,
        diff=_diff_rows(data),
        replay=_replay_rows(data),
        stats=dict(run.decision.stats) if run.decision is not None else {},
        cost=to_json(run.cost) if run.cost is not None else {},
        versions=[
            {
                "id": v.id,
                "origin": v.origin,
                "created": v.created_at.isoformat(timespec="seconds"),
                "parent": _short(v.parent_id),
                "chars": len(v.text),
            }
            for v in data.versions
        ],
        iterations=run.iterations,
        candidates=run.candidates,
        canary=data.canary_html,
    )


def write_report(store: Store, run_id: str, path: Path, *, extra: Mapping[str, Any] | None = None) -> Path:
    """Build and write the HTML report for ``run_id``; returns the path."""
    data = build_report(store, run_id, extra=extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def _evidence_text(e: Mapping[str, Any]) -> str:
    """One piece of blame evidence as words: its reason or text, else its fields — never a raw dict."""
    if e.get("reason") or e.get("text"):
        return str(e.get("reason") or e.get("text"))
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in e.items())
