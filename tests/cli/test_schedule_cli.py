"""Issue 13 items 7 and 9 at the command line: bad jobs and bad worker options are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from diffprompt.errors import DiffpromptError
from tests.cli.conftest import last_json


@pytest.fixture
def slot(invoke, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.md"
    f.write_text("# Policy\n\nYou help customers.\n", encoding="utf-8")
    invoke("prompts", "add", "s", str(f))
    return "s"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--cron", "0 3 * * 8"), "day of week '8'"),
        (("--cron", "61 3 * * *"), "59"),
        (("--cron", "0 3 * *"), "needs 5 fields"),
        (("--every", "nan"), "finite"),
        (("--every", "inf"), "finite"),
        (("--every", "0.01"), ">= 1"),
        (("--every", "0"), "--every 0 would run without pause"),
        (("--after-failures", "3", "--poll", "nan"), "--poll"),
        (("--after-failures", "3", "--poll", "0"), "--poll"),
        (("--after-failures", "3", "--poll", "-5"), "--poll"),
        (("--after-failures", "0"), "N >= 1"),
        (("--every", "60", "--request", "{not json"), "--request is not valid JSON"),
        (("--every", "60", "--request", "[1, 2]"), "must be a JSON object"),
        (("--every", "60", "--request", '{"colour": 1}'), "unknown optimize request keys"),
        (("--every", "60", "--env", "tau:mars"), "unknown --env"),
        (("--every", "60", "--editor", "gpt"), "unknown editor"),
        (("--every", "60", "--model", "claude"), "unknown model spec"),
        (("--every", "60", "--cron", "0 3 * * *"), "exactly one trigger"),
    ],
)
def test_schedule_add_refuses_what_a_worker_could_not_run(invoke, slot, args, needle) -> None:  # type: ignore[no-untyped-def]
    res = invoke("schedule", "add", "j1", "--slot", slot, *args, ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception), res.exception
    assert last_json(invoke("schedule", "list", "--json")) == []


def test_schedule_add_accepts_good_jobs(invoke, slot) -> None:  # type: ignore[no-untyped-def]
    invoke("schedule", "add", "nightly", "--slot", slot, "--cron", "0 3 * * 7")
    invoke("schedule", "add", "often", "--slot", slot, "--every", "600", "--request", '{"seed": 3}')
    invoke("schedule", "add", "fails", "--slot", slot, "--after-failures", "5", "--poll", "30")
    jobs = {j["id"]: j for j in last_json(invoke("schedule", "list", "--json"))}
    assert set(jobs) == {"nightly", "often", "fails"} and jobs["often"]["request"]["seed"] == 3


@pytest.mark.parametrize("ttl", ["0", "-1", "nan", "inf"])
def test_schedule_run_refuses_a_lease_ttl_that_allows_two_leaders(invoke, ttl: str) -> None:  # type: ignore[no-untyped-def]
    res = invoke("schedule", "run", "--lease-ttl", ttl, ok=False)
    assert isinstance(res.exception, DiffpromptError) and "--lease-ttl" in str(res.exception)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe\x00binary", "binary file"),
        (b"\xe9t\xe9", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"id": "x"}', "JSON list"),
        (b'[{"id": "x", "slot": "s", "trigger": "cron", "cron": "0 3 * * 8"}]', "job 0"),
        (b'[{"id": "x", "slot": "s", "trigger": "interval", "every_s": 60, "colour": 1}]', "job 0"),
    ],
)
def test_schedule_run_jobs_file_errors_are_one_line(invoke, slot, tmp_path: Path, content: bytes, needle: str) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "jobs.json"
    f.write_bytes(content)
    res = invoke("schedule", "run", "--jobs", str(f), ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception), res.exception
    assert last_json(invoke("schedule", "list", "--json")) == []  # nothing half-added


def test_schedule_add_bad_cron_is_one_line_through_the_entry_point(home: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cmd = [sys.executable, "-m", "diffprompt.cli", "--db", db]
    prompt = tmp_path / "p.md"
    prompt.write_text("You help customers.\n", encoding="utf-8")
    subprocess.run([*cmd, "prompts", "add", "s", str(prompt)], check=True, capture_output=True, timeout=120)
    p = subprocess.run([*cmd, "schedule", "add", "j", "--slot", "s", "--cron", "0 3 * * 8"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([*cmd, "schedule", "list", "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(p.stdout) == []


def test_schedule_list_shows_a_job_that_cannot_run(invoke, slot, cli_db: str) -> None:  # type: ignore[no-untyped-def]
    from diffprompt.scheduler import JOB_PREFIX
    from diffprompt.store import open_store

    store = open_store(cli_db)
    bad = {"id": "old", "slot": slot, "trigger": "interval", "every_s": float("nan"), "request": {}}
    store.save_run(JOB_PREFIX + "old", slot, {"job": bad}, status="job")
    store.close()
    out = invoke("schedule", "list").stdout
    assert "old: slot=s INVALID, not scheduled:" in out and "finite" in out
    assert last_json(invoke("schedule", "list", "--json")) == []
    invoke("schedule", "remove", "old")
    assert "old" not in invoke("schedule", "list").stdout
