"""Markdown tables and SVG plots of experiment rows (pure functions → strings)."""

from __future__ import annotations

from collections.abc import Sequence

from diffprompt.experiments.harness import ArmResult, ArmSummary, summarise
from diffprompt.report_svg import bar_chart, line_chart


def summaries(rows: Sequence[ArmResult]) -> list[ArmSummary]:
    """One summary per arm, in first-seen order."""
    arms = list(dict.fromkeys(r.arm for r in rows))
    return [summarise(a, [r for r in rows if r.arm == a]) for a in arms]


def table(rows: Sequence[ArmResult], *, title: str) -> str:
    """Markdown: per arm, held-out mean ± sd over seeds, served score, promotions, cost, time."""
    out = [
        f"**{title}**",
        "",
        "| arm | seeds | seed prompt (held-out) | finalist (held-out) ± sd | served after gate | would promote "
        "| target calls | editor forwards | editor LLM calls | wall s | edit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries(rows):
        out.append(
            f"| {s.arm} | {s.seeds} | {s.incumbent:.3f} | {s.held_out:.3f} ± {s.held_out_sd:.3f} | {s.served:.3f} "
            f"| {s.promoted}/{s.seeds} | {s.target_calls:.0f} | {s.editor_forwards:.0f} | {s.editor_calls:.0f} "
            f"| {s.seconds:.1f} | {s.edit_seconds:.1f} |"
        )
    return "\n".join(out) + "\n"


def steps_svg(rows: Sequence[ArmResult], *, title: str) -> str:
    """Held-out score of the finalist and of the seed prompt against diffusion steps."""
    sums = summaries(rows)
    xs = [float(s.arm.split("=", 1)[1]) for s in sums]
    series = {
        "finalist (mean over seeds)": list(zip(xs, [s.held_out for s in sums], strict=True)),
        "finalist - sd": list(zip(xs, [s.held_out - s.held_out_sd for s in sums], strict=True)),
        "finalist + sd": list(zip(xs, [s.held_out + s.held_out_sd for s in sums], strict=True)),
        "seed prompt": list(zip(xs, [s.incumbent for s in sums], strict=True)),
    }
    return line_chart(series, title=title, x_label="diffusion steps", y_label="held-out score", y_range=(0.0, 1.0))


def editors_svg(rows: Sequence[ArmResult], *, title: str) -> str:
    """Held-out score of each editor's finalist (mean over seeds)."""
    bars = [(f"{s.arm} (sd {s.held_out_sd:.3f})", s.held_out) for s in summaries(rows)]
    return bar_chart(bars, title=title, value_label="held-out score")
