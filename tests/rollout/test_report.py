"""The report's live canary section: rendered from the monitor's records, escaped, self-contained."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from diffprompt.rollout.config import RolloutConfig
from diffprompt.rollout.monitor import watch_once
from diffprompt.rollout.report import band_chart, canary_section, canary_views
from diffprompt.store import MemoryStore
from diffprompt.types import Feedback, Trace

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _store_with_watched_canary(rate_c: float, rate_i: float, n: int = 300) -> tuple[MemoryStore, str, str]:
    store = MemoryStore(clock=lambda: T0)
    v1 = store.create_slot("s", "Seed. Be polite.").id
    v2 = store.add_version("s", "Seed. Be polite. <Confirm> changes.", parent_id=v1, origin="manual").id
    store.set_canary("s", v2, 0.5, actor="t", reason="r")
    rng = random.Random(0)
    trs, fbs = [], []
    for k in range(n):
        vid = v2 if k % 2 else v1
        at = T0 + timedelta(seconds=k + 1)
        trs.append(
            Trace(
                id=f"t{k}",
                slot="s",
                version_id=vid,
                thread_id=f"h{k}",
                messages=(),
                started_at=at,
                ended_at=at,
                latency_ms=300.0,
            )
        )
        fbs.append(Feedback(trace_id=f"t{k}", kind="reward", value=float(rng.random() < (rate_c if k % 2 else rate_i))))
    store.add_traces(trs)
    store.add_feedback(fbs)
    return store, v1, v2


def test_no_watched_canary_no_section() -> None:
    store, _, _ = _store_with_watched_canary(0.5, 0.5, n=10)
    assert canary_section(store, "s") == "" and canary_views(store, "s") == []


def test_section_shows_the_decision_arms_guardrails_and_the_band_chart() -> None:
    store, v1, v2 = _store_with_watched_canary(0.9, 0.3)
    watch_once(store, "s", RolloutConfig(), clock=lambda: T0 + timedelta(hours=1))
    views = canary_views(store, "s")
    assert len(views) == 1 and views[0]["kind"] == "promote" and views[0]["action"] == "promoted"
    assert [a["scored"] for a in views[0]["arms"]] == [150, 150]
    html = canary_section(store, "s")
    assert "Live canary test" in html and v2 in html and v1 in html and "promote" in html
    assert html.count("<polygon") == 2 and html.count("<polyline") == 2  # a band and a line per arm
    for metric in ("error_rate", "latency_ms", "tokens", "cost_usd"):
        assert metric in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external assets


def test_band_chart_clips_open_intervals_and_escapes_names() -> None:
    svg = band_chart({"<arm>": [(1.0, 0.5, None, None), (2.0, 0.6, 0.1, 1.4)]}, title="t & u", x_label="x", y_label="y")
    assert "&lt;arm&gt;" in svg and "t &amp; u" in svg and svg.startswith("<svg") and svg.endswith("</svg>")


def test_run_report_includes_the_live_canary_section() -> None:
    from diffprompt.report import build_report, render_html

    store, _, v2 = _store_with_watched_canary(0.5, 0.5)
    store.save_run("run_1", "s", {"editor": "dlm", "promote_mode": "canary"}, status="canary")
    before = render_html(build_report(store, "run_1"))
    assert "Live canary test" not in before
    watch_once(store, "s", RolloutConfig(), clock=lambda: T0 + timedelta(hours=1))
    html = render_html(build_report(store, "run_1"))
    assert "Live canary test" in html and "wait" in html and v2 in html and html.count("<polygon") == 2
