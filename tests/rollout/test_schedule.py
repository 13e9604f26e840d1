"""``schedule add ... --watch`` (the monitor as a job) and ``--on-drift`` (a round when live success drops)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from diffprompt.errors import ConfigError
from diffprompt.jobs import JobSpec, add_job
from diffprompt.scheduler import Worker
from diffprompt.store import MemoryStore
from diffprompt.types import Feedback, Trace

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _traffic(store: MemoryStore, rates: dict[str, float], n: int, *, seed: int, start: int = 0) -> None:
    rng = random.Random(seed)
    vids = list(rates)
    trs, fbs = [], []
    for k in range(start, start + n):
        vid = vids[k % len(vids)]
        at = T0 + timedelta(seconds=k + 1)
        trs.append(
            Trace(id=f"t{k}", slot="s", version_id=vid, thread_id=f"h{k}", messages=(), started_at=at, ended_at=at)
        )
        fbs.append(Feedback(trace_id=f"t{k}", kind="reward", value=float(rng.random() < rates[vid])))
    store.add_traces(trs)
    store.add_feedback(fbs)


def _store() -> tuple[MemoryStore, str, str]:
    store = MemoryStore(clock=lambda: T0)
    v1 = store.create_slot("s", "Seed prompt. Be polite.").id
    v2 = store.add_version("s", "Seed prompt. Be polite. Confirm first.", parent_id=v1, origin="manual").id
    return store, v1, v2


def test_watch_job_runs_the_monitor_not_a_round() -> None:
    store, v1, v2 = _store()
    store.set_canary("s", v2, 0.5, actor="t", reason="gate passed")
    _traffic(store, {v1: 0.2, v2: 0.9}, 300, seed=1)
    events: list[tuple[str, dict[str, Any]]] = []
    job = JobSpec(id="guard", slot="s", trigger="interval", every_s=60, watch=True)
    add_job(store, job)

    def runner(*_: Any) -> dict[str, Any]:
        raise AssertionError("a watch job never runs an optimization round")

    w = Worker(store, runner, owner="a", lease_ttl_s=60, on_event=lambda k, d: events.append((k, dict(d))))
    w._jobs = {"guard": job}
    record = w.fire("guard")
    kinds = [k for k, _ in events]
    watch = next(d for k, d in events if k == "watch")
    assert "watch" in kinds and watch["decision"] == "promote" and watch["action"] == "promoted"
    assert record == watch["record_id"] and store.get_run(record)["status"] == "rollout"
    assert store.slot_state("s").active_version_id == v2
    assert w.fire("guard") is None  # no canary any more: a quiet no-op
    assert events[-1][1]["status"] == "no_canary"


def test_drift_job_starts_one_round_per_alarm() -> None:
    store, v1, _ = _store()
    cfg = {"drift": {"baseline_threads": 300, "arl": 1000.0}}
    job = JobSpec(id="drift", slot="s", trigger="drift", poll_s=30, request={"config": cfg})
    add_job(store, job)
    calls: list[str] = []

    def runner(st: Any, j: JobSpec, run_id: str) -> dict[str, Any]:
        calls.append(run_id)
        st.save_run(run_id, j.slot, {"window": {"key": run_id}}, status="rejected")
        return {"status": "rejected"}

    w = Worker(store, runner, owner="a", lease_ttl_s=60)
    w._jobs = {"drift": job}
    _traffic(store, {v1: 0.8}, 600, seed=2)
    assert w.fire("drift") is None and calls == []  # steady: no round
    _traffic(store, {v1: 0.4}, 300, seed=3, start=600)
    first = w.fire("drift")
    assert first is not None and calls == [first]
    assert w.fire("drift") is None  # the same alarm: already handled
    _traffic(store, {v1: 0.4}, 600, seed=4, start=900)
    second = w.fire("drift")
    assert second is not None and second != first and len(calls) == 2  # a new alarm after the restart


def test_job_spec_validates_rollout_triggers() -> None:
    with pytest.raises(ConfigError, match="--watch"):
        JobSpec(id="x", slot="s", trigger="cron", cron="0 3 * * *", watch=True)
    with pytest.raises(ConfigError, match="--poll"):
        JobSpec(id="x", slot="s", trigger="drift", poll_s=0.0)
    assert JobSpec(**JobSpec(id="x", slot="s", trigger="drift").as_dict()).trigger == "drift"


@pytest.fixture
def run(home: Path):  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    runner, db = CliRunner(), f"sqlite:///{home / 'sched.db'}"

    def invoke(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        res = runner.invoke(cli.app, ["--db", db, *args])
        assert (res.exit_code == 0) == ok, (res.output, res.exception)
        return res

    return invoke


def test_schedule_add_watch_and_on_drift(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prompt = tmp_path / "p.md"
    prompt.write_text("Seed prompt. Be polite.\n")
    run("prompts", "add", "s", str(prompt))
    run("schedule", "add", "guard", "--slot", "s", "--watch")
    run("schedule", "add", "fast", "--slot", "s", "--watch", "--every", "30")
    run("schedule", "add", "drift", "--slot", "s", "--on-drift", "--poll", "120")
    jobs = {j["id"]: j for j in json.loads(run("schedule", "list", "--json").stdout.strip().splitlines()[-1])}
    assert jobs["guard"]["watch"] and jobs["guard"]["trigger"] == "interval" and jobs["guard"]["every_s"] == 60.0
    assert jobs["fast"]["every_s"] == 30.0
    assert jobs["drift"]["trigger"] == "drift" and jobs["drift"]["poll_s"] == 120.0 and not jobs["drift"]["watch"]
    text = run("schedule", "list").stdout
    assert "watch canary every 30.0s" in text and "on drift" in text
    bad = run("schedule", "add", "x", "--slot", "s", "--on-drift", "--every", "10", ok=False)
    assert isinstance(bad.exception, ConfigError) and "exactly one trigger" in str(bad.exception)
    bad = run("schedule", "add", "y", "--slot", "s", "--watch", "--cron", "0 3 * * *", ok=False)
    assert isinstance(bad.exception, ConfigError) and "--watch" in str(bad.exception)
