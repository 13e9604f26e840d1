"""CLI: init, prompts, traces, feedback, db — isolated home, explicit --db, JSON outputs, clean failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from diffprompt.errors import DiffpromptError
from diffprompt.store import open_store

SEED = "# Policy\n\nYou help customers. Be polite.\n\n- Never share passwords.\n- Confirm refunds.\n"
V2 = SEED.replace("Be polite.", "Be polite and brief.")


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    return cli.app


@pytest.fixture
def db(home: Path) -> str:
    return f"sqlite:///{home / 'cli.db'}"


@pytest.fixture
def run(app, db):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
        res = runner.invoke(app, ["--db", db, *args], input=input)
        if ok:
            assert res.exit_code == 0, (res.output, res.exception)
        else:
            assert res.exit_code != 0
        return res

    return invoke


def _json(res) -> Any:  # type: ignore[no-untyped-def]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _files(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text(SEED)
    b.write_text(V2)
    return a, b


def test_init_creates_home_and_db(run, home: Path, db: str) -> None:  # type: ignore[no-untyped-def]
    out = _json(run("init", "--json"))
    assert out["revision"] and (home / "cli.db").exists()
    assert _json(run("db", "current", "--json"))["up_to_date"] is True
    assert _json(run("db", "upgrade", "--json"))["to"] == out["revision"]


def test_registry_flow(run, tmp_path: Path, db: str) -> None:  # type: ignore[no-untyped-def]
    a, b = _files(tmp_path)
    seed = _json(run("prompts", "add", "support", str(a), "--json"))
    assert seed["created_slot"] and seed["status"] == "active"
    v2 = _json(run("prompts", "add", "support", str(b), "--note", "brief", "--json"))
    assert v2["parent_id"] == seed["id"] and v2["status"] == ""
    versions = _json(run("prompts", "list", "support", "--json"))
    assert [v["id"] for v in versions] == [seed["id"], v2["id"]]
    slots = _json(run("prompts", "list", "--json"))
    assert [s["slot"] for s in slots] == ["support"]
    shown = _json(run("prompts", "show", v2["id"], "--json"))
    assert shown["text"] == V2 and len(shown["spans"]) == v2["spans"]
    diff = _json(run("prompts", "diff", "support", v2["id"], "--json"))
    assert [c["kind"] for c in diff["changes"]] == ["changed"] and diff["changes"][0][
        "new"
    ] == "Be polite and brief."
    assert "Be polite and brief." in run("prompts", "diff", seed["id"], v2["id"]).stdout
    e = _json(
        run("prompts", "promote", "support", v2["id"], "--actor", "alice", "--reason", "test", "--json")
    )
    assert (e["action"], e["to_version_id"], e["actor"]) == ("promote", v2["id"], "alice")
    c = _json(run("prompts", "canary", "support", seed["id"], "--share", "0.25", "--json"))
    assert c["action"] == "canary" and c["canary_share"] == 0.25
    assert _json(run("prompts", "canary", "support", "--clear", "--json"))["action"] == "canary_clear"
    r = _json(run("prompts", "rollback", "support", "--json"))
    assert r["to_version_id"] == seed["id"]
    span = shown["spans"][0]["id"]
    assert _json(run("prompts", "protect", "support", span, "--json"))["protected_span_ids"] == [span]
    audit = _json(run("prompts", "audit", "support", "--json"))
    assert [x["action"] for x in audit] == [
        "create",
        "promote",
        "canary",
        "canary_clear",
        "rollback",
        "protect",
    ]


def test_bad_registry_input_fails_cleanly(run, tmp_path: Path, db: str) -> None:  # type: ignore[no-untyped-def]
    a, _ = _files(tmp_path)
    other = tmp_path / "o.md"
    other.write_text("Other prompt.")
    run("prompts", "add", "support", str(a))
    o = _json(run("prompts", "add", "other", str(other), "--json"))
    res = run("prompts", "rollback", "support", "--to", o["id"], ok=False)
    assert isinstance(res.exception, DiffpromptError) and "belongs to slot 'other'" in str(res.exception)
    for args in (
        ("prompts", "add", "support", str(tmp_path / "missing.md")),
        ("prompts", "canary", "support", o["id"], "--share", "2"),
        ("prompts", "canary", "support"),
        ("prompts", "protect", "support", "sp_nope"),
        ("prompts", "promote", "support", "pv_missing"),
        ("prompts", "show", "nope"),
    ):
        assert isinstance(run(*args, ok=False).exception, DiffpromptError), args
    s = open_store(db)
    assert [x.action for x in s.audit_log("support")] == ["create"] and len(s.list_versions("support")) == 1
    s.close()


def test_import_stats_list_show_export_feedback(run, tau_data: Path, tmp_path: Path, db: str) -> None:  # type: ignore[no-untyped-def]
    path = tau_data / "airline" / "historical_gpt-4o-airline.json"
    rep = _json(
        run("traces", "import", str(path), "--slot", "airline", "--format", "tau-historical", "--json")
    )
    assert rep["traces_added"] == 200 and rep["feedback_added"] == 200
    stats = _json(run("traces", "stats", "--slot", "airline", "--json"))
    assert (stats["traces"], stats["feedback"], stats["mean_reward"]) == (200, 200, 0.42)
    rows = _json(run("traces", "list", "--slot", "airline", "--limit", "5", "--json"))
    assert len(rows) == 5 and all(r["reward"] in (0.0, 1.0) for r in rows)
    tid = rows[0]["id"]
    shown = _json(run("traces", "show", tid, "--json"))
    assert shown["messages"][0]["role"] == "system" and shown["feedback"][0]["kind"] == "reward"
    fb = _json(
        run("feedback", "add", "--trace", tid, "--kind", "rating", "--value", "4", "--scale", "5", "--json")
    )
    assert fb["value"] == pytest.approx(0.8)
    run("feedback", "add", "--thread", shown["thread_id"], "--kind", "comment", "--text", "too slow")
    for args in (
        ("feedback", "add", "--trace", tid, "--value", "1.5"),
        ("feedback", "add", "--trace", "tr_unknown", "--value", "1"),
        ("feedback", "add", "--trace", tid, "--kind", "comment"),
        ("feedback", "add", "--value", "1"),
    ):
        assert isinstance(run(*args, ok=False).exception, DiffpromptError), args
    assert _json(run("traces", "stats", "--slot", "airline", "--json"))["feedback"] == 202
    out = tmp_path / "export.jsonl"
    run("traces", "export", "--slot", "airline", "--out", str(out))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 200 and {len(x["feedback"]) for x in lines} >= {1, 3}


def test_malformed_import_writes_nothing(run, tau_data: Path, tmp_path: Path, db: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((tau_data / "airline" / "historical_gpt-4o-airline.json").read_text())[:5]
    data[3]["reward"] = "high"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    res = run("traces", "import", str(bad), "--slot", "airline", ok=False)
    assert "record 3" in str(res.exception)
    assert _json(run("traces", "stats", "--json"))["traces"] == 0
    assert _json(run("prompts", "list", "--json")) == []


def test_console_entry_point_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cmd = [sys.executable, "-c", "from diffprompt.cli import main; main()"]
    p = subprocess.run(
        [*cmd, "--db", db, "feedback", "add", "--trace", "tr_x", "--value", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        p.returncode == 1
        and p.stderr.strip().startswith("error:")
        and len(p.stderr.strip().splitlines()) == 1
    )
    p = subprocess.run(
        [*cmd, "--db", db, "traces", "stats", "--json"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0 and json.loads(p.stdout)["traces"] == 0


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_traces.jsonl"


@pytest.mark.parametrize("scale", ["inf", "-inf", "nan", "0", "-5"])
def test_feedback_scale_must_be_finite_and_positive(run, scale: str) -> None:  # type: ignore[no-untyped-def]
    run("traces", "import", str(EXAMPLE), "--slot", "support", "--format", "openai-jsonl")
    tid = _json(run("traces", "list", "--json"))[0]["id"]
    before = _json(run("traces", "stats", "--json"))["feedback"]
    res = run("feedback", "add", "--trace", tid, "--kind", "rating", "--value", "4", "--scale", scale, ok=False)
    assert isinstance(res.exception, DiffpromptError) and "--scale" in str(res.exception)
    assert _json(run("traces", "stats", "--json"))["feedback"] == before


def test_feedback_value_inf_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    run("traces", "import", str(EXAMPLE), "--slot", "support", "--format", "openai-jsonl")
    tid = _json(run("traces", "list", "--json"))[0]["id"]
    res = run("feedback", "add", "--trace", tid, "--value", "inf", ok=False)
    assert isinstance(res.exception, DiffpromptError) and "finite" in str(res.exception)
    out = run("feedback", "add", "--trace", tid, "--kind", "rating", "--value", "1", "--scale", "3").stdout
    assert "rating=0.3333 on" in out


def test_openai_jsonl_import_via_cli_is_idempotent_per_slot(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = ("traces", "import", str(EXAMPLE), "--format", "openai-jsonl", "--json")
    first = _json(run(*args, "--slot", "support"))
    assert (first["records"], first["traces_added"], first["slot_created"]) == (3, 3, True)
    again = _json(run(*args, "--slot", "support"))
    assert (again["traces_added"], again["feedback_added"]) == (0, 0)
    other = _json(run(*args, "--slot", "support-b"))
    assert (other["traces_added"], other["feedback_added"]) == (3, first["feedback_added"])
    human = run("traces", "import", str(EXAMPLE), "--slot", "support", "--format", "openai-jsonl").stdout
    assert "imported 0 traces (3 already present), 0 feedback into support" in human
    lines = EXAMPLE.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    res = run("traces", "import", str(bad), "--slot", "fresh", "--format", "openai-jsonl", ok=False)
    assert isinstance(res.exception, DiffpromptError) and "line 2" in str(res.exception)
    assert [s["slot"] for s in _json(run("prompts", "list", "--json"))] == ["support", "support-b"]


def test_stats_for_people_prints_no_dicts_or_long_floats(run) -> None:  # type: ignore[no-untyped-def]
    run("traces", "import", str(EXAMPLE), "--slot", "support", "--format", "openai-jsonl")
    tid = _json(run("traces", "list", "--json"))[0]["id"]
    run("feedback", "add", "--trace", tid, "--kind", "reward", "--value", "1", "--scale", "3")
    out = run("traces", "stats", "--slot", "support").stdout
    assert "{" not in out and "}" not in out
    assert "feedback_by_kind   comment 2, rating 3, reward 3" in out
    import re

    assert not re.search(r"\d\.\d{5,}", out), out
    assert "mean_reward        0.1667" in out  # latest rewards 1/3 and 0: four significant digits


def test_show_cuts_long_messages_and_full_prints_them_whole(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = "word " * 200_000  # a 1 MB message: cut by default, whole with --full, linear either way
    rec = {"thread_id": "big", "prompt": "Be brief.", "messages": [{"role": "user", "content": big}], "reward": 1}
    p = tmp_path / "big.jsonl"
    p.write_text(json.dumps(rec) + "\n")
    run("traces", "import", str(p), "--slot", "s", "--format", "openai-jsonl")
    tid = _json(run("traces", "list", "--json"))[0]["id"]
    short = run("traces", "show", tid).stdout
    assert len(short) < 5_000 and "998,000 more characters; --full shows all" in short
    assert "feedback reward=1 (import)" in short
    whole = run("traces", "show", tid, "--full").stdout
    assert big in whole
