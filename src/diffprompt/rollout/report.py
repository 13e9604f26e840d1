"""The report's live canary section: cumulative means per arm with their intervals, and the decision.

Reads the slot's ``rollout`` records (one per watched canary, written by ``monitor.watch_once``)
and renders ``templates/rollout_canary.html.j2`` with an inline SVG band chart. Pure apart from
one ``store.list_runs`` read; returns ``""`` when no canary of the slot was ever watched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from diffprompt.store.base import Store
from diffprompt.templating import render

COLORS = {"canary": "#ea580c", "incumbent": "#2563eb"}
Point = tuple[float, float | None, float | None, float | None]  # (x, mean, lo, hi)


def _sx(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a if hi == lo else a + (v - lo) * (b - a) / (hi - lo)


def band_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    width: int = 720,
    height: int = 300,
) -> str:
    """Lines of running means, each inside a shaded band for its interval (clipped to ``y_range``)."""
    pad_l, pad_r, pad_t, pad_b = 56, 150, 34, 44
    xs = [p[0] for pts in series.values() for p in pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = y_range
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b

    def px(x: float) -> float:
        return _sx(x, x0, x1, pad_l, pad_l + pw)

    def py(y: float) -> float:
        return _sx(min(max(y, y0), y1), y0, y1, pad_t + ph, pad_t)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="20" font-size="14" font-weight="600">{escape(title)}</text>',
        f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#f8fafc" stroke="#cbd5e1"/>',
    ]
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{py(yv) + 4:.1f}" font-size="11" text-anchor="end">{yv:.2f}</text>')
    for xv in (x0, (x0 + x1) / 2, x1):
        parts.append(
            f'<text x="{px(xv):.1f}" y="{pad_t + ph + 14}" font-size="11" text-anchor="middle">{xv:.0f}</text>'
        )
    parts.append(
        f'<text x="{pad_l + pw / 2}" y="{height - 8}" font-size="12" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{pad_t + ph / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {pad_t + ph / 2})">{escape(y_label)}</text>'
    )
    for k, (name, pts) in enumerate(series.items()):
        color = COLORS.get(name, "#4b5563")
        known = [p for p in pts if p[1] is not None]
        band = [(p[0], y1 if p[3] is None else p[3]) for p in known]
        band += [(p[0], y0 if p[2] is None else p[2]) for p in reversed(known)]
        if len(known) > 1:
            poly = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in band)
            parts.append(f'<polygon points="{poly}" fill="{color}" fill-opacity="0.15" stroke="none"/>')
            line = " ".join(f"{px(p[0]):.1f},{py(float(p[1] or 0)):.1f}" for p in known)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>')
        ly = pad_t + 14 + 18 * k
        parts.append(f'<rect x="{pad_l + pw + 12}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{pad_l + pw + 28}" y="{ly}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _iv(iv: Mapping[str, Any], digits: int = 3) -> str:
    if iv.get("mean") is None:
        return "-"
    lo = "-inf" if iv.get("lo") is None else f"{iv['lo']:.{digits}f}"
    hi = "inf" if iv.get("hi") is None else f"{iv['hi']:.{digits}f}"
    return f"{iv['mean']:.{digits}f} [{lo}, {hi}]"


def canary_views(store: Store, slot: str, *, limit: int = 3) -> list[dict[str, Any]]:
    """The slot's most recent watched canaries as plain values for the template, newest first."""
    out = []
    for rec in store.list_runs(slot):
        if rec.get("status") != "rollout" or not isinstance(rec.get("decision"), Mapping):
            continue
        dec, path = rec["decision"], list(rec.get("path") or [])
        st = dec.get("stats") or {}
        reward = st.get("reward") or {}
        series = {
            arm: [(float(p["t"]), p[arm]["mean"], p[arm]["lo"], p[arm]["hi"]) for p in path]
            for arm in ("canary", "incumbent")
        }
        alpha = float(reward.get("alpha") or 0.05)
        out.append(
            {
                "canary": rec.get("canary_version_id"),
                "incumbent": rec.get("incumbent_version_id"),
                "started": rec.get("started_at"),
                "kind": dec.get("kind"),
                "action": rec.get("action"),
                "reasons": list(dec.get("reasons") or []),
                "evaluations": len(rec.get("evaluations") or []),
                "arms": [
                    {
                        "arm": arm,
                        "threads": st.get(f"threads_{arm}"),
                        "scored": (reward.get(arm) or {}).get("n"),
                        "reward": _iv(reward.get(arm) or {}),
                    }
                    for arm in ("canary", "incumbent")
                ],
                "difference": _iv({"mean": reward.get("estimate"), "lo": reward.get("lo"), "hi": reward.get("hi")}),
                "confidence": f"{100 * (1 - alpha):.0f}%",
                "guardrails": [
                    {
                        "metric": g.get("metric"),
                        "canary": _iv(g.get("canary") or {}, 4),
                        "incumbent": _iv(g.get("incumbent") or {}, 4),
                        "tolerance": (
                            f"+{100 * g['tolerance']:.0f}%" if g.get("relative") else f"+{g.get('tolerance')}"
                        ),
                        "breach": bool(g.get("breach")),
                    }
                    for g in st.get("guardrails") or []
                ],
                "svg": band_chart(
                    series,
                    title=f"Cumulative mean reward per arm ({100 * (1 - alpha / 2):.1f}% always-valid band)",
                    x_label="scored threads (both arms, time order)",
                    y_label="reward",
                )
                if path
                else "",
            }
        )
        if len(out) >= limit:
            break
    return out


def canary_section(store: Store, slot: str) -> str:
    """The HTML section for the report ("" when the slot never had a watched canary)."""
    views = canary_views(store, slot)
    return render("rollout_canary.html.j2", canaries=views) if views else ""
