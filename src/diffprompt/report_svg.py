"""Dependency-free SVG charts for the self-contained HTML report (pure functions → SVG strings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777")


def _scale(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a if hi == lo else a + (v - lo) * (b - a) / (hi - lo)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    width: int = 720,
    height: int = 300,
) -> str:
    """A multi-series line chart with points; each series is a list of (x, y)."""
    pad_l, pad_r, pad_t, pad_b = 56, 150, 34, 44
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in series.values() for _, y in pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(ys), max(ys))
    if x0 == x1:
        x1 = x0 + 1
    if y0 == y1:
        y1 = y0 + 1
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="20" font-size="14" font-weight="600">{escape(title)}</text>',
        f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#f8fafc" stroke="#cbd5e1"/>',
    ]
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        yp = _scale(yv, y0, y1, pad_t + ph, pad_t)
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + pw}" y1="{yp:.1f}" y2="{yp:.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{yp + 4:.1f}" font-size="11" text-anchor="end">{yv:.2f}</text>')
    parts.append(
        f'<text x="{pad_l + pw / 2}" y="{height - 8}" font-size="12" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{pad_t + ph / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {pad_t + ph / 2})">{escape(y_label)}</text>'
    )
    for k, (name, pts) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        coords = [
            (_scale(x, x0, x1, pad_l, pad_l + pw), _scale(y, y0, y1, pad_t + ph, pad_t)) for x, y in pts
        ]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords)
        ly = pad_t + 14 + 18 * k
        parts.append(f'<rect x="{pad_l + pw + 12}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{pad_l + pw + 28}" y="{ly}" font-size="11">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    value_label: str,
    width: int = 720,
    bar_height: int = 22,
    color: str = PALETTE[1],
) -> str:
    """A horizontal bar chart (label, value), values >= 0, longest bar = max value."""
    pad_l, pad_r, pad_t = 230, 60, 34
    height = pad_t + bar_height * max(len(bars), 1) + 30
    vmax = max((v for _, v in bars), default=1.0) or 1.0
    pw = width - pad_l - pad_r
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="8" y="20" font-size="14" font-weight="600">{escape(title)}</text>',
    ]
    for i, (label, v) in enumerate(bars):
        y = pad_t + i * bar_height
        w = max(1.0, pw * v / vmax)
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text x="{pad_l - 6}" y="{y + bar_height * 0.65:.1f}" font-size="11" '
                     f'text-anchor="end">{escape(short)}</text>')
        parts.append(f'<rect x="{pad_l}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" fill="{color}"/>')
        parts.append(f'<text x="{pad_l + w + 4:.1f}" y="{y + bar_height * 0.65:.1f}" font-size="11">{v:.3g}</text>')
    parts.append(f'<text x="{pad_l + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 f'{escape(value_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
