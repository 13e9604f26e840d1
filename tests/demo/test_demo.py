"""The main job: `diffprompt demo` end to end, its report (rendered in headless Chromium), fail-fast."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffprompt.demo import DemoConfig, DemoEvent, run_demo
from diffprompt.errors import ConfigError


def _small(home: Path, **kw: object) -> DemoConfig:
    return DemoConfig(home=home, world_users=60, world_tasks=12, live_trials=1, concurrency=2, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[DemoEvent]]:
    home = tmp_path_factory.mktemp("demo-home")
    events: list[DemoEvent] = []
    result = run_demo(_small(home, editor="oracle"), emit=events.append)  # ar needs a model now
    return result, events


def test_demo_runs_the_whole_loop(demo_run: tuple[object, list[DemoEvent]]) -> None:
    result, events = demo_run
    kinds = [e.kind for e in events]
    for k in ("setup", "traffic_start", "traffic_done", "round:window", "round:attribution", "heldout", "done"):
        assert k in kinds, k
    assert kinds.index("traffic_done") < kinds.index("round:window") < kinds.index("heldout")
    r = result.as_dict()  # type: ignore[attr-defined]
    assert r["decision"] in ("promote", "reject", "insufficient_data")
    assert r["reasons"], "the gate always says why"
    if r["decision"] == "promote":
        assert r["final_version"] != r["seed_version"]
        assert r["live_after"] is not None
    else:
        assert r["final_version"] == r["seed_version"]
    assert Path(r["report"]).is_file()


def test_report_is_self_contained_html(demo_run: tuple[object, list[DemoEvent]]) -> None:
    result, _ = demo_run
    html = Path(result.report).read_text()  # type: ignore[attr-defined]
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") >= 2  # reward over time + blame (+ timings)
    for section in ("Reward over time per prompt version", "Per-span blame", "Span diff", "Replay statistics",
                    "Cost and timing", 'id="gate"'):
        assert section in html
    assert not re.search(r'(src|href)="https?://', html)  # no external assets
    assert "<script src" not in html and "<link " not in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(demo_run: tuple[object, list[DemoEvent]], tmp_path: Path) -> None:
    result, _ = demo_run
    shot = tmp_path / "report.png"
    url = Path(result.report).resolve().as_uri()  # type: ignore[attr-defined]
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*args, "--window-size=1100,2000", f"--screenshot={shot}", url],
                   check=True, capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1100, 2000)
    assert len(png) > 30_000  # a blank page compresses to a few KB; charts and tables do not
    dom = subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<polyline") + dom.count("<circle") > 0  # the reward plot was drawn
    assert "<rect" in dom


def test_unreachable_model_fails_fast_before_any_work(tmp_path: Path) -> None:
    home = tmp_path / "h"
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run_demo(_small(home, model="openai:gpt-4o-mini"))
    assert not (home / "demo").exists()
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape("127.0.0.1:9")):
        run_demo(_small(home, model="openai:gpt-4o-mini", api_key="sk-x", base_url="http://127.0.0.1:9/v1"))
    assert time.perf_counter() - t0 < 15
    assert not (home / "demo").exists()


def test_cli_demo_without_key_exits_nonzero_with_clear_message(tmp_path: Path) -> None:
    env = {"DIFFPROMPT_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "diffprompt.cli", "demo", "--model", "openai:gpt-4o-mini"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "OPENAI_API_KEY" in proc.stderr


def test_cli_report_for_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    env = {"DIFFPROMPT_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "diffprompt.cli", "report", "run_nope"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "run_nope" in proc.stderr


@pytest.mark.slow
def test_demo_with_builtin_dlm_json(tmp_path: Path) -> None:
    env = {"DIFFPROMPT_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "diffprompt.cli", "demo", "--world-tasks", "16", "--trials", "1",
                           "--json"], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["decision"] in ("promote", "reject", "insufficient_data") and out["reasons"]
    if out["decision"] == "promote":
        assert out["heldout_final"] >= out["heldout_seed"]
