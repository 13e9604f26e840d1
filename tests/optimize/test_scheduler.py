from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffprompt.errors import ConfigError, NotFoundError
from diffprompt.scheduler import JobSpec, Worker, add_job, list_jobs, remove_job
from diffprompt.store import open_store
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Feedback, Trace
from tests.optimize.helpers import PROMPT, T0

WORKER = Path(__file__).with_name("sched_worker.py")
RULES_OK = "original payment method"


def _seed(store):
    v = store.create_slot("s", PROMPT)
    traces, fb = [], []
    keys = [f"ok{i}" for i in range(20)] + [f"bag{i}" for i in range(20)]
    for i, key in enumerate(keys):
        tr = Trace(
            id=f"t{i}",
            slot="s",
            version_id=v.id,
            thread_id=f"th{i}",
            messages=({"role": "user", "content": "bags"},),
            started_at=T0,
            ended_at=T0,
            replay_key=key,
        )
        traces.append(tr)
        fb.append(Feedback(trace_id=tr.id, kind="reward", value=1.0 if key.startswith("ok") else 0.0, source="env"))
    store.add_traces(traces)
    store.add_feedback(fb)
    return v


def _events(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _spawn(db, owner, log, mode):
    return subprocess.Popen(
        [sys.executable, str(WORKER), db, owner, str(log), mode],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_jobs_persist_and_validate():
    store = MemoryStore()
    _seed(store)
    add_job(store, JobSpec(id="nightly", slot="s", trigger="cron", cron="0 3 * * *"))
    add_job(store, JobSpec(id="often", slot="s", trigger="interval", every_s=60))
    assert [j.id for j in list_jobs(store)] == ["nightly", "often"]
    remove_job(store, "often")
    assert [j.id for j in list_jobs(store)] == ["nightly"]
    with pytest.raises(NotFoundError):
        remove_job(store, "often")
    with pytest.raises(NotFoundError):
        add_job(store, JobSpec(id="x", slot="nope", trigger="interval", every_s=5))
    with pytest.raises(ConfigError):
        JobSpec(id="x", slot="s", trigger="cron", cron="bad")
    with pytest.raises(ConfigError):
        JobSpec(id="x", slot="s", trigger="failures")


def test_fire_is_idempotent_per_tick_and_window_and_follower_skips():
    store = MemoryStore()
    _seed(store)
    calls = []

    def runner(st, job, run_id):
        calls.append(run_id)
        st.save_run(run_id, job.slot, {"window": {"key": "k"}}, status="rejected")
        return {"status": "rejected"}

    job = JobSpec(id="j", slot="s", trigger="interval", every_s=3600)
    add_job(store, job)
    a = Worker(store, runner, owner="a", lease_ttl_s=60)
    b = Worker(store, runner, owner="b", lease_ttl_s=60)
    a._jobs = b._jobs = {"j": job}
    assert a.fire("j") is not None
    assert a.fire("j") is None  # same tick: already claimed
    assert b.fire("j") is None and not b.is_leader  # follower does nothing
    assert len(calls) == 1


def test_failures_trigger_counts_new_failures():
    store = MemoryStore()
    _seed(store)  # 20 failures
    ran = []

    def runner(st, job, run_id):
        ran.append(run_id)
        st.save_run(run_id, job.slot, {"started_at": "2100-01-01T00:00:00+00:00", "job_id": job.id}, status="rejected")
        return {}

    w = Worker(store, runner, owner="a")
    w._jobs = {"f": JobSpec(id="f", slot="s", trigger="failures", failures=50)}
    assert w.fire("f") is None and not ran  # 20 < 50
    w._jobs = {"f": JobSpec(id="f", slot="s", trigger="failures", failures=10)}
    assert w.fire("f") is not None and len(ran) == 1
    assert w.fire("f") is None  # no new failures since that run


@pytest.mark.slow
def test_two_workers_each_run_happens_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    store = open_store(db)
    _seed(store)
    add_job(store, JobSpec(id="tick", slot="s", trigger="interval", every_s=1.5))
    store.close()
    log = tmp_path / "log.jsonl"
    procs = [_spawn(db, "w1", log, "fast"), _spawn(db, "w2", log, "fast")]
    try:
        assert _wait(lambda: sum(e["kind"] == "ran" for e in _events(log)) >= 4, 40)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(20) == 0, p.stderr.read().decode()[-2000:]
    ev = _events(log)
    ran = [e["run_id"] for e in ev if e["kind"] == "ran"]
    assert len(ran) == len(set(ran)) >= 4  # each scheduled tick ran exactly once
    assert len({e["owner"] for e in ev if e["kind"] == "ran"}) == 1  # only the leader ran
    assert sum(e["kind"] == "stopped" for e in ev) == 2  # graceful SIGTERM
    store = open_store(db)
    runs = [r for r in store.list_runs("s") if r["status"] == "rejected"]
    assert len(runs) == len(ran)
    store.close()


@pytest.mark.slow
def test_killed_leader_leaves_prompt_and_follower_takes_over(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    store = open_store(db)
    seed = _seed(store)
    add_job(store, JobSpec(id="opt", slot="s", trigger="interval", every_s=2))
    log = tmp_path / "log.jsonl"
    leader = _spawn(db, "w1", log, "round")
    follower = None
    try:
        assert _wait(lambda: any(e["kind"] == "start" for e in _events(log)), 40)
        follower = _spawn(db, "w2", log, "round")
        time.sleep(1.0)  # the leader is mid-round (episodes are slow)
        first = next(e for e in _events(log) if e["kind"] == "start")
        assert first["owner"] == "w1"
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(10)
        assert store.active_version("s").id == seed.id  # nothing promoted by the dead run
        assert store.get_run(first["run_id"])["status"] == "running"
        # the follower takes over after the lease (3 s) expires, marks the dead run abandoned, runs
        assert _wait(lambda: any(e["kind"] == "done" and e["owner"] == "w2" for e in _events(log)), 90)
        assert store.get_run(first["run_id"])["status"] == "abandoned"
        done = next(e for e in _events(log) if e["kind"] == "done" and e["owner"] == "w2")
        assert done["status"] in ("promoted", "rejected", "insufficient_data")
        if done["status"] == "promoted":
            assert store.active_version("s").id == done["promoted_version"]
    finally:
        for p in (leader, follower):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)
        store.close()


@pytest.mark.slow
def test_schedule_run_cli_starts_and_stops_on_sigterm(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    env = {**os.environ, "DIFFPROMPT_HOME": str(tmp_path / "home")}
    p = subprocess.Popen(
        [sys.executable, "-m", "diffprompt.cli", "--db", db, "schedule", "run", "--lease-ttl", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        deadline = time.time() + 60
        store = None
        while time.time() < deadline:
            time.sleep(0.5)
            if (tmp_path / "c.db").exists():
                store = open_store(db)
                if not store.acquire_lease("diffprompt-scheduler", "probe", 1.0):
                    break  # the worker holds the leader lease
                store.release_lease("diffprompt-scheduler", "probe")
                store.close()
                store = None
        assert store is not None, "the worker never took the leader lease"
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err[-2000:]
        assert "stopped" in err
        assert store.acquire_lease("diffprompt-scheduler", "probe", 1.0)  # released on shutdown
        store.close()
    finally:
        if p.poll() is None:
            p.kill()
