"""The main job: `diffprompt demo` end to end with pinned seeds and asserted outcomes, its report
(rendered in headless Chromium), its terminal view, fail-fast.

Both runs use the oracle editor with the oracle judge (the labelled ceiling: fast and deterministic),
so they test the demo's mechanics — promotion, rejection, the held-out split, the report — not the
DLM; ``test_demo_with_builtin_dlm_json`` (slow) runs the default editor.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from diffprompt.cli import demo as cli_demo
from diffprompt.demo import DemoConfig, DemoEvent, DemoResult, heldout_indices, run_demo
from diffprompt.errors import ConfigError
from diffprompt.integrations.tau import DEFAULT_SCENARIO

LONG_FLOAT = re.compile(r"\d\.\d{5,}")


def _small(home: Path, **kw: Any) -> DemoConfig:
    base: dict[str, Any] = dict(world_users=60, world_tasks=12, live_trials=1, concurrency=2, seed=0)
    return DemoConfig(home=home, **{**base, **kw})


Run = tuple[DemoResult, list[DemoEvent]]


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # 40 tasks per split, 2 replay trials per case (the gate tests the per-case means)
    events: list[DemoEvent] = []
    cfg = _small(tmp_path_factory.mktemp("demo-promote"), editor="oracle", judge="oracle", world_users=100,
                 world_tasks=40, optimize={"trials": 2})
    return run_demo(cfg, emit=events.append), events


@pytest.fixture(scope="module")
def rejected(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # 12 tasks: the candidate wins the few discordant pairs there are, but too few to be significant
    events: list[DemoEvent] = []
    cfg = _small(tmp_path_factory.mktemp("demo-reject"), editor="oracle", judge="oracle")
    return run_demo(cfg, emit=events.append), events


def test_seeded_demo_promotes_and_the_promoted_prompt_is_better_on_held_out_tasks(promoted: Run) -> None:
    result, events = promoted
    kinds = [e.kind for e in events]
    for k in ("setup", "traffic_start", "traffic_done", "round:window", "round:attribution", "round:replay",
              "round:decision", "heldout", "done"):
        assert k in kinds, k
    assert kinds.index("traffic_done") < kinds.index("round:window") < kinds.index("heldout")
    assert result.decision == "promote", result.reasons
    assert "significant gain" in result.reasons[0]
    assert result.final_version != result.seed_version
    assert result.live_after is not None and result.live_after > result.live_before
    assert result.heldout_tasks == 40 and result.heldout_split == "test"
    assert result.heldout_seed is not None and result.heldout_final is not None
    assert result.heldout_final > result.heldout_seed
    assert result.scenario.startswith(DEFAULT_SCENARIO.name)
    assert result.judge.startswith("oracle")
    assert Path(result.report).is_file()
    cases = next(e for e in events if e.kind == "candidates").data
    assert cases["holdout_cases"] > 0 and cases["read_cases"] > 0  # the gate's cases vs the ones the round read


def test_seeded_demo_rejects_says_why_and_still_writes_the_report(rejected: Run) -> None:
    result, events = rejected
    assert result.decision == "reject"
    assert result.reasons and result.reasons[0].startswith("not significant: p = ")
    assert result.final_version == result.seed_version and result.live_after is None
    assert result.heldout_seed == result.heldout_final  # the same prompt on the same tasks and seeds
    assert events[-1].kind == "done" and Path(result.report).is_file()
    assert "not significant" in Path(result.report).read_text()


def test_same_seed_same_outcome(rejected: Run, tmp_path: Path) -> None:
    again = run_demo(_small(tmp_path / "again", editor="oracle", judge="oracle"))
    first = rejected[0]
    assert (again.decision, again.reasons, again.live_before, again.heldout_seed) == (
        first.decision, first.reasons, first.live_before, first.heldout_seed)


def test_setup_says_what_is_simulated_and_which_judge(promoted: Run) -> None:
    setup = next(e for e in promoted[1] if e.kind == "setup").data
    simulated = " ".join(setup["simulated"])
    assert "generated τ airline world" in simulated and "target model" in simulated and "users" in simulated
    assert setup["judge"].startswith("oracle") and "upper bound" in setup["judge"]
    assert setup["scenario"] == DEFAULT_SCENARIO.name
    assert setup["deleted"] == list(DEFAULT_SCENARIO.delete) and setup["garbled"] == list(DEFAULT_SCENARIO.garble)


def test_held_out_tasks_are_not_live_tasks(tmp_path: Path) -> None:
    tau = _small(tmp_path).tau()
    live, held = tau.domain("train"), tau.domain("test")
    idx = heldout_indices(live, held)
    assert idx == list(range(len(held.tasks)))  # the generated splits share no task
    assert heldout_indices(live, live) == []  # a split against itself keeps nothing
    with pytest.raises(ConfigError, match="held-out split"):
        DemoConfig(home=tmp_path, live_split="test", heldout_split="test")


def _render(events: list[DemoEvent], monkeypatch: pytest.MonkeyPatch) -> str:
    buf = io.StringIO()
    monkeypatch.setattr(cli_demo, "console", Console(file=buf, width=80, force_terminal=False, color_system=None))
    monkeypatch.setattr(cli_demo.common, "console", cli_demo.console)
    view = cli_demo.DemoView()
    for e in events:
        view(e)
    return buf.getvalue()


def test_terminal_view_has_no_raw_dicts_or_long_floats(promoted: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _render(promoted[1], monkeypatch)
    assert "{'" not in out and "[{" not in out, "no raw Python dicts"
    assert not LONG_FLOAT.search(out), LONG_FLOAT.search(out)
    assert "final0" not in out and "1 candidates" not in out
    table = out[out.index("paired held-out replay"):]
    assert "wins / losses / ties" in table and "incumbent" in table and "candidate" in table
    counts = re.search(r"(\d+) wins / (\d+) losses / (\d+) ties", promoted[0].reasons[0])
    assert counts and int(counts[1]) >= 5 and counts[2] == "0"
    assert " / ".join(counts.groups()) in table  # the gate's own count, on the candidate's row
    assert "simulated:" in out and "judge: oracle" in out
    assert re.search(r"the gate replayed \d+ held-out cases, none of them among the \d+ cases the judge", out)


def test_rejected_view_shows_why(rejected: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _render(rejected[1], monkeypatch)
    assert "gate: reject — not significant" in out
    assert "not promoted: the seed prompt stays active" in out


def test_replay_rows_pair_each_episode_with_the_incumbent() -> None:
    ep = lambda case, r: {"case": case, "trial": 0, "reward": r, "error": None, "calls": 3}  # noqa: E731
    inc = [ep("a", 0), ep("b", 1), ep("c", 0)]
    cand = [ep("a", 1), ep("b", 0), ep("c", 1)]
    data = {"paired": {"versions": {
        "incumbent": {"mean": 1 / 3, "model_calls": 9, "tokens": 12345, "episodes": inc},
        "final0": {"mean": 2 / 3, "model_calls": 8, "tokens": 999, "episodes": cand},
    }}}
    assert cli_demo.replay_rows(data) == [
        ("incumbent", "0.333", "-", "3", "9", "12,345"),
        ("candidate 1", "0.667", "2 / 1 / 0", "3", "8", "999"),
    ]


def test_replay_rows_count_cases_not_trials() -> None:
    ep = lambda case, t, r: {"case": case, "trial": t, "reward": r}  # noqa: E731
    inc = [ep("a", 0, 0), ep("a", 1, 0), ep("b", 0, 1), ep("b", 1, 0)]
    cand = [ep("a", 0, 1), ep("a", 1, 1), ep("b", 0, 0), ep("b", 1, 1)]
    data = {"paired": {"versions": {"incumbent": {"episodes": inc}, "final0": {"episodes": cand}}}}
    # case a: 0.0 -> 1.0 (a win); case b: 0.5 -> 0.5 (a tie, though its trials swapped)
    assert cli_demo.replay_rows(data)[1][2:4] == ("1 / 0 / 1", "2")


def test_text_helpers() -> None:
    assert cli_demo.plural(1, "candidate") == "1 candidate" and cli_demo.plural(4, "candidate") == "4 candidates"
    assert cli_demo.plural(1, "success", "successes") == "1 success"
    assert cli_demo.plural(0, "success", "successes") == "0 successes"
    clipped = cli_demo.clip("update_reservation_baggages was called without asking", 40)
    assert clipped == "update_reservation_baggages was called…"
    rows = cli_demo.blame_rows([{"span_id": "sp_1", "score": 0.123456, "evidence": [
        {"reason": "charged  all bags"}, {"reason": "charged all bags"}, {"reason": "no confirm"}]}])
    assert rows == [("sp_1", "0.123", "charged all bags; no confirm")]


def test_cli_prints_the_report_path_whole(rejected: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from diffprompt.cli import _register, app

    result, events = rejected
    long_home = tmp_path / ("a-very-long-directory-name-" * 4)

    def fake_run_demo(cfg: DemoConfig, *, emit: Any = None) -> DemoResult:
        for e in events:
            emit(e)
        return result

    monkeypatch.setattr("diffprompt.demo.run_demo", fake_run_demo)
    _register()
    out = CliRunner().invoke(app, ["--home", str(long_home), "demo"], env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    assert f"report: {result.report}\n" in out.output
    assert "gate: reject" in out.output and "held-out pass^1 (test split, 12 tasks)" in out.output


def test_report_is_self_contained_html(promoted: Run) -> None:
    html = Path(promoted[0].report).read_text()
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") >= 2  # reward over time + blame (+ timings)
    for section in ("Reward over time per prompt version", "Per-span blame", "Span diff", "Replay statistics",
                    "Cost and timing", 'id="gate"', "tasks the round never saw", DEFAULT_SCENARIO.name):
        assert section in html
    assert not re.search(r'(src|href)="https?://', html)  # no external assets
    assert "<script src" not in html and "<link " not in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(promoted: Run, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    url = Path(promoted[0].report).resolve().as_uri()
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
    with pytest.raises(ConfigError, match=re.escape("127.0.0.1:9")):
        run_demo(_small(home, model="openai:gpt-4o-mini", api_key="sk-x", base_url="http://127.0.0.1:9/v1"))
    assert not (home / "demo").exists() and not (home / "worlds").exists()


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
                           "--json"], capture_output=True, text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["decision"] == "reject" and out["reasons"][0].startswith("not significant")
    assert out["final_version"] == out["seed_version"] and Path(out["report"]).is_file()
