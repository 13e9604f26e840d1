"""The scheduler: job validation, bad jobs skipped, run heartbeats, leader lease, two-worker processes.

Waits are on events (threading events in-process, JSON event lines from worker processes), never on
sleeps; the only timeouts are hang guards that fail with a message.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from diffprompt import heartbeat
from diffprompt.errors import ConfigError, ConflictError, NotFoundError
from diffprompt.scheduler import JOB_PREFIX, JobSpec, Worker, add_job, list_jobs, load_jobs, remove_job
from diffprompt.store import open_store
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Feedback, Trace
from tests.optimize.helpers import PROMPT, T0

WORKER = Path(__file__).with_name("sched_worker.py")
GUARD_S = 300.0  # hang guard only: a healthy run finishes far sooner; nothing asserts a duration


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


class Clock:
    """A settable clock for the memory store (lease expiry) and ``abandon_expired`` (row age)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# ------------------------------------------------------------------------------ jobs: validation
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


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"trigger": "cron", "cron": "0 3 * * 8"}, "day of week '8'"),
        ({"trigger": "cron", "cron": "60 3 * * *"}, "59"),
        ({"trigger": "cron", "cron": "0 24 * * *"}, "23"),
        ({"trigger": "cron", "cron": "0 3 0 * *"}, "day 1-31"),
        ({"trigger": "cron", "cron": "0 3 * 13 *"}, "12"),
        ({"trigger": "cron", "cron": "*/0 * * * *"}, "Increment"),
        ({"trigger": "interval", "every_s": math.nan}, "finite"),
        ({"trigger": "interval", "every_s": math.inf}, "finite"),
        ({"trigger": "interval", "every_s": 0.001}, ">= 1"),
        ({"trigger": "interval", "every_s": -5}, ">= 1"),
        ({"trigger": "interval", "every_s": 0}, "--every 0 would run without pause"),
        ({"trigger": "failures", "failures": 3, "poll_s": math.nan}, "--poll"),
        ({"trigger": "failures", "failures": 3, "poll_s": 0}, "--poll"),
        ({"trigger": "failures", "failures": 3, "poll_s": -1}, "--poll"),
        ({"trigger": "failures", "failures": 0}, "N >= 1"),
        ({"trigger": "failures", "failures": 2.5}, "whole number"),
        ({"trigger": "weekly"}, "trigger must be"),
    ],
)
def test_bad_triggers_are_refused_when_the_job_is_built(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        JobSpec(id="bad", slot="s", **kw)
    assert needle in str(exc.value)


def test_crontab_weekdays_mean_what_cron_means() -> None:
    from datetime import UTC, datetime

    from diffprompt.scheduler import cron_trigger

    tuesday = datetime(2026, 12, 1, tzinfo=UTC)
    assert cron_trigger("0 3 * * 1").get_next_fire_time(None, tuesday).weekday() == 0  # 1 = Monday
    assert cron_trigger("0 3 * * 0").get_next_fire_time(None, tuesday).weekday() == 6  # 0 = Sunday
    assert cron_trigger("0 3 * * 7").get_next_fire_time(None, tuesday).weekday() == 6  # 7 = Sunday too


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        ({"env": "tau:mars"}, "unknown --env"),
        ({"editor": "gpt"}, "unknown editor"),
        ({"model": "claude"}, "unknown model spec"),
        ({"user": "robot"}, "unknown user simulator"),
        ({"colour": "red"}, "unknown optimize request keys"),
        ({"config": {"n_candidates_x": 1}}, "unknown optimize settings"),
        ({"seed": "one"}, "whole number"),
    ],
)
def test_bad_requests_are_refused_at_add(request_: dict[str, Any], needle: str) -> None:
    store = MemoryStore()
    _seed(store)
    with pytest.raises(ConfigError) as exc:
        add_job(store, JobSpec(id="j", slot="s", trigger="interval", every_s=60, request=request_))
    assert needle in str(exc.value)
    assert list_jobs(store) == []


def test_a_bad_stored_job_is_skipped_recorded_and_the_others_run() -> None:
    store = MemoryStore()
    _seed(store)
    add_job(store, JobSpec(id="good", slot="s", trigger="interval", every_s=3600))
    bad = {"id": "bad", "slot": "s", "trigger": "cron", "cron": "0 3 * * 8", "every_s": None,
           "failures": None, "poll_s": 60.0, "request": {}}  # as an older version stored it
    store.save_run(JOB_PREFIX + "bad", "s", {"job": bad}, status="job")
    store.save_run(JOB_PREFIX + "nan", "s", {"job": {**bad, "id": "nan", "trigger": "failures", "failures": 2,
                                                     "poll_s": math.nan}}, status="job")
    good, broken = load_jobs(store)
    assert [j.id for j in good] == ["good"] and [b.id for b in broken] == ["bad", "nan"]
    events: list[tuple[str, dict]] = []
    w = Worker(store, lambda *a: {}, owner="a", lease_ttl_s=60, on_event=lambda k, d: events.append((k, dict(d))))
    w.start()  # must not raise: one bad job never stops the worker
    try:
        assert w._sched.get_job("opt:good") is not None
        assert w._sched.get_job("opt:bad") is None and w._sched.get_job("opt:nan") is None
        assert set(w.bad_jobs) == {"bad", "nan"} and "day of week" in w.bad_jobs["bad"]
        assert store.get_run(JOB_PREFIX + "bad")["error"] == w.bad_jobs["bad"]  # recorded
        assert [d["job_id"] for k, d in events if k == "job_invalid"] == ["bad", "nan"]
        w.sync_jobs()  # reported once, not at every heartbeat
        assert sum(k == "job_invalid" for k, _ in events) == 2
    finally:
        w.stop()
    add_job(store, JobSpec(id="bad", slot="s", trigger="cron", cron="0 3 * * 0"))  # fixed by re-adding
    assert [j.id for j in list_jobs(store)] == ["bad", "good"]


# ------------------------------------------------------------------------------ firing, leadership
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


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, 0.2])
def test_a_lease_ttl_that_allows_two_leaders_is_refused(ttl: float) -> None:
    with pytest.raises(ConfigError, match="--lease-ttl"):
        Worker(MemoryStore(), lambda *a: {}, lease_ttl_s=ttl)


def test_a_heartbeat_as_long_as_the_lease_is_refused() -> None:
    with pytest.raises(ConfigError, match="shorter than the lease"):
        Worker(MemoryStore(), lambda *a: {}, lease_ttl_s=5, heartbeat_s=5)


# ------------------------------------------------------------------------------ run heartbeats
def test_a_live_run_is_never_abandoned_and_a_dead_one_is() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    _seed(store)
    with heartbeat.run_heartbeat(store, "run_live", owner="cli", ttl_s=60):
        store.save_run("run_live", "s", {"editor": "dlm"}, status="running")
        store.save_run("run_dead", "s", {"editor": "dlm"}, status="running")  # no heartbeat: kill -9'd
        store.acquire_lease(heartbeat.lease_name("run_killed"), "gone", 60)
        store.save_run("run_killed", "s", {}, status="running")  # its owner stopped renewing
        clock.advance(30)
        # within the grace, nothing is touched (a run may have just started)
        assert heartbeat.abandon_expired(store, by="w", grace_s=60, now=clock.now) == []
        clock.advance(61)  # the live run's lease would expire now, but its thread renews it ...
        store.acquire_lease(heartbeat.lease_name("run_live"), "cli", 60)  # ... as the beat does
        w = Worker(store, lambda *a: {}, owner="worker", lease_ttl_s=60)
        assert w.heartbeat()  # the worker looks (as the leader does at every heartbeat)
        assert store.get_run("run_live")["status"] == "running"  # the live CLI run is left alone
        assert store.get_run("run_dead")["status"] == "abandoned"
        killed = store.get_run("run_killed")
        assert killed["status"] == "abandoned" and killed["abandoned_reason"] == "heartbeat expired"
        assert killed["abandoned_by"] == "worker"
    assert heartbeat.lease_name("run_live") not in store._leases  # released at the end of the run


def test_the_heartbeat_renews_while_the_run_is_in_progress() -> None:
    store = MemoryStore()
    beats = threading.Event()
    n = [0]

    def on_beat() -> None:
        n[0] += 1
        if n[0] >= 3:
            beats.set()

    with heartbeat.run_heartbeat(store, "run_x", owner="me", ttl_s=1.0, interval_s=0.01, on_beat=on_beat) as hb:
        assert beats.wait(GUARD_S), "the heartbeat thread never renewed"
        with (
            pytest.raises(ConflictError),  # a second process cannot run the same run
            heartbeat.run_heartbeat(store, "run_x", owner="other", ttl_s=60),
        ):
            pass
    assert hb.beats >= 3 and not hb.lost


@pytest.mark.parametrize("ttl", [0, -1, math.nan])
def test_a_heartbeat_ttl_must_be_finite_and_positive(ttl: float) -> None:
    with pytest.raises(ConfigError), heartbeat.run_heartbeat(MemoryStore(), "run_x", ttl_s=ttl):
        pass


def test_a_worker_run_holds_a_heartbeat_while_it_runs() -> None:
    store = MemoryStore()
    _seed(store)
    seen: dict[str, Any] = {}

    def runner(st, job, run_id):
        name = heartbeat.lease_name(run_id)
        seen["held"] = not st.acquire_lease(name, "someone-else", 60)
        seen["row"] = st.get_run(run_id)["status"]
        st.save_run(run_id, job.slot, {}, status="rejected")
        return {"status": "rejected"}

    w = Worker(store, runner, owner="a", lease_ttl_s=60)
    w._jobs = {"j": JobSpec(id="j", slot="s", trigger="interval", every_s=3600)}
    run_id = w.fire("j")
    assert run_id is not None and seen == {"held": True, "row": "running"}
    assert store.acquire_lease(heartbeat.lease_name(run_id), "someone-else", 60)  # released after


# ------------------------------------------------------------------------------ worker processes
class Events:
    """JSON event lines from worker processes' stdout, gathered by reader threads; ``wait`` blocks."""

    def __init__(self) -> None:
        self.q: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.killed: set[str] = set()

    def attach(self, owner: str, proc: subprocess.Popen) -> None:
        self.procs[owner] = proc

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                if line.strip().startswith("{"):
                    self.q.put(json.loads(line))
            self.q.put({"kind": "_eof", "owner": owner})

        threading.Thread(target=read, daemon=True).start()

    def _next(self, what: str) -> dict:
        try:
            e = self.q.get(timeout=GUARD_S)
        except queue.Empty:
            raise AssertionError(f"no event: {what} (hang guard); last seen: {self.seen[-10:]}") from None
        self.seen.append(e)
        if e["kind"] == "_eof" and e["owner"] not in self.killed and not any(
            x["kind"] == "stopped" and x["owner"] == e["owner"] for x in self.seen
        ):
            proc = self.procs[e["owner"]]
            proc.wait()
            raise AssertionError(f"worker {e['owner']} died waiting for {what}: {proc.stderr.read()[-2000:]}")
        return e

    def wait(self, pred: Callable[[dict], bool], what: str) -> dict:
        """The first event (seen or coming) for which ``pred`` holds."""
        for e in self.seen:
            if pred(e):
                return e
        while not pred(e := self._next(what)):
            pass
        return e

    def count(self, pred: Callable[[dict], bool], n: int, what: str) -> None:
        """Block until ``n`` events satisfy ``pred``."""
        while sum(1 for e in self.seen if pred(e)) < n:
            self._next(what)


def _spawn(db: str, owner: str, mode: str, events: Events) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, str(WORKER), db, owner, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events.attach(owner, p)
    return p


@pytest.mark.slow
def test_two_workers_each_run_happens_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    store = open_store(db)
    _seed(store)
    add_job(store, JobSpec(id="tick", slot="s", trigger="interval", every_s=1.5))
    store.close()
    ev = Events()
    procs = [_spawn(db, "w1", "fast", ev), _spawn(db, "w2", "fast", ev)]
    try:
        ev.count(lambda e: e["kind"] == "ran", 4, "4 runs")
        ev.count(lambda e: e["kind"] == "started", 2, "both workers started")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(GUARD_S) == 0, p.stderr.read()[-2000:]
    ev.count(lambda e: e["kind"] == "stopped", 2, "both workers stopped")  # graceful SIGTERM
    ran = [e["run_id"] for e in ev.seen if e["kind"] == "ran"]
    assert len(ran) == len(set(ran)) >= 4  # each scheduled tick ran exactly once
    assert len({e["owner"] for e in ev.seen if e["kind"] == "ran"}) == 1  # only the leader ran
    store = open_store(db)
    runs = [r for r in store.list_runs("s") if r["status"] == "rejected"]
    assert len(runs) >= len(ran)
    store.close()


@pytest.mark.slow
def test_killed_leader_leaves_prompt_and_follower_takes_over(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    store = open_store(db)
    seed = _seed(store)
    add_job(store, JobSpec(id="opt", slot="s", trigger="interval", every_s=2))
    ev = Events()
    leader = _spawn(db, "w1", "hang", ev)  # its round gets stuck in the first episode
    follower = None
    try:
        first = ev.wait(lambda e: e["kind"] == "start", "the leader starts a round")
        assert first["owner"] == "w1"
        ev.wait(lambda e: e["kind"] == "episode" and e["owner"] == "w1", "the leader is mid-round")
        follower = _spawn(db, "w2", "round", ev)
        ev.wait(lambda e: e["kind"] == "started" and e["owner"] == "w2", "the follower is up")
        assert store.get_run(first["run_id"])["status"] == "running"  # the live leader's run is kept
        ev.killed.add("w1")
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(GUARD_S)
        assert store.active_version("s").id == seed.id  # nothing promoted by the dead run
        assert store.get_run(first["run_id"])["status"] == "running"
        # the follower takes the leader lease (3 s), sees the dead run's heartbeat expired, runs
        ab = ev.wait(lambda e: e["kind"] == "abandoned" and e["run_id"] == first["run_id"], "the dead run abandoned")
        assert ab["owner"] == "w2"
        assert store.get_run(first["run_id"])["status"] == "abandoned"
        done = ev.wait(lambda e: e["kind"] == "done" and e["owner"] == "w2", "the follower's round")
        assert done["status"] in ("promoted", "rejected", "insufficient_data")
        if done["status"] == "promoted":
            assert store.active_version("s").id == done["promoted_version"]
    finally:
        for p in (leader, follower):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(GUARD_S)
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
        lines = []
        for line in p.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("[scheduler] leader "):
                break  # the worker holds the leader lease
        assert lines and lines[-1].startswith("[scheduler] leader "), "".join(lines)[-2000:]
        store = open_store(db)
        assert not store.acquire_lease("diffprompt-scheduler", "probe", 1.0)
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=GUARD_S)
        assert p.returncode == 0, err[-2000:]
        assert "stopped" in err
        assert store.acquire_lease("diffprompt-scheduler", "probe", 1.0)  # released on shutdown
        store.close()
    finally:
        if p.poll() is None:
            p.kill()
