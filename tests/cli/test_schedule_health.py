"""`diffprompt schedule health`: the Docker HEALTHCHECK command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"DIFFPROMPT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "diffprompt.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_health_ok_on_a_reachable_db(tmp_path: Path) -> None:
    proc = _run("schedule", "health", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"db": "ok", "slots": 0, "jobs": 0, "invalid_jobs": []}


def test_health_fails_and_names_a_job_no_worker_can_schedule(tmp_path: Path) -> None:
    from diffprompt.scheduler import JOB_PREFIX
    from diffprompt.store import open_store

    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = open_store(db)
    store.create_slot("s", "You help customers.")
    bad = {"id": "nightly", "slot": "s", "trigger": "cron", "cron": "0 3 * * 8", "request": {}}
    store.save_run(JOB_PREFIX + "nightly", "s", {"job": bad}, status="job")  # as an older version stored it
    store.close()
    proc = _run("--db", db, "schedule", "health", home=tmp_path)
    assert proc.returncode == 1
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["jobs"] == 0 and [b["id"] for b in out["invalid_jobs"]] == ["nightly"]
    assert proc.stderr.startswith("error: 1 job(s) cannot run: nightly:") and len(proc.stderr.splitlines()) == 1


def test_health_fails_with_a_clear_line_when_the_db_is_down(tmp_path: Path) -> None:
    proc = _run("--db", "postgresql+psycopg://u:p@127.0.0.1:9/none", "schedule", "health", home=tmp_path)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "server is running" in proc.stderr
    assert "u:p@" not in proc.stderr  # the password is never printed
