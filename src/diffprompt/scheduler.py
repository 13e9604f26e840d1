"""The scheduler worker: optimization rounds on cron / interval / "N new failures" triggers.

Jobs (``JobSpec``) are persisted in the store as run-like JSON rows (id ``job:<id>``, status ``job``)
so every worker on a database sees the same jobs (``add_job`` / ``list_jobs`` / ``remove_job``).

``Worker`` runs an APScheduler 3.11 ``BackgroundScheduler``: one job per spec with a fixed id,
``max_instances=1``, ``coalesce=True`` and a generous ``misfire_grace_time``, plus a heartbeat.
Exactly one worker per database is the **leader**: it holds the ``diffprompt-scheduler`` lease
(``store.acquire_lease`` with a TTL, renewed by the heartbeat, also during a run). Followers' jobs fire
but do nothing. When a worker becomes leader it marks every ``running`` run left by a dead leader as
``abandoned`` — such a run never promoted anything, because promotion is the round's last, atomic step.

Each firing claims a deterministic run id from (job, tick) — a second firing of the same tick is a
no-op — and a round whose (slot, window) was already handled by a finished run is skipped. SIGTERM /
SIGINT stop the worker gracefully: no new runs start, the running one finishes, the lease is released.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from diffprompt.errors import ConfigError, NotFoundError

log = logging.getLogger("diffprompt.scheduler")

TriggerKind = Literal["cron", "interval", "failures"]
LEASE = "diffprompt-scheduler"
JOB_PREFIX = "job:"
Runner = Callable[[Any, "JobSpec", str], Mapping[str, Any]]  # (store, job, run id) -> summary


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """A scheduled optimization job. ``request`` is ``OptimizeRequest`` data (slot is filled in)."""

    id: str
    slot: str
    trigger: TriggerKind
    cron: str | None = None  # crontab: "minute hour day month day_of_week"
    every_s: float | None = None  # interval seconds
    failures: int | None = None  # "after N new failures" (checked every ``poll_s``)
    poll_s: float = 60.0
    request: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 40 or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"job id {self.id!r}: use 1-40 letters, digits, '-' or '_'")
        if self.trigger == "cron":
            if not self.cron or len(self.cron.split()) != 5:
                raise ConfigError(f"job {self.id}: --cron needs 5 fields (minute hour day month weekday)")
        elif self.trigger == "interval":
            if not self.every_s or self.every_s <= 0:
                raise ConfigError(f"job {self.id}: --every needs a positive number of seconds")
        elif self.trigger == "failures":
            if not self.failures or self.failures < 1:
                raise ConfigError(f"job {self.id}: --after-failures needs N >= 1")
        else:
            raise ConfigError(f"job {self.id}: trigger must be cron, interval or failures")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["request"] = dict(self.request)
        return d


# ------------------------------------------------------------------------------------ persistence
def add_job(store: Any, job: JobSpec) -> None:
    """Persist (or replace) a job; the slot must exist."""
    store.slot_state(job.slot)
    store.save_run(JOB_PREFIX + job.id, job.slot, {"job": job.as_dict()}, status="job")


def list_jobs(store: Any) -> list[JobSpec]:
    out = []
    for r in store.list_runs(None):
        if r.get("status") == "job" and isinstance(r.get("job"), dict):
            out.append(JobSpec(**r["job"]))
    return sorted(out, key=lambda j: j.id)


def remove_job(store: Any, job_id: str) -> None:
    try:
        row = store.get_run(JOB_PREFIX + job_id)
    except NotFoundError:
        raise NotFoundError(f"unknown job {job_id!r}; see `diffprompt schedule list`") from None
    if row.get("status") != "job":
        raise NotFoundError(f"job {job_id!r} was already removed")
    store.save_run(JOB_PREFIX + job_id, row["slot"], {"job": row.get("job")}, status="job_removed")


def default_runner(*, home: Any, api_key: str | None = None, base_url: str | None = None) -> Runner:
    """The real runner: ``OptimizeRequest`` from the job → ``service.run_request``."""

    def run(store: Any, job: JobSpec, run_id: str) -> Mapping[str, Any]:
        from diffprompt.optimize.service import OptimizeRequest, run_request

        req = OptimizeRequest.from_dict({**dict(job.request), "slot": job.slot})
        res = run_request(
            store,
            req,
            home=home,
            api_key=api_key,
            base_url=base_url,
            run_id=run_id,
            actor=f"scheduler:{job.id}",
        )
        return res.summary()

    return run


# ----------------------------------------------------------------------------------------- worker
class Worker:
    """A scheduler worker on one store; see the module docstring for the guarantees."""

    def __init__(
        self,
        store: Any,
        runner: Runner,
        *,
        owner: str | None = None,
        lease_ttl_s: float = 30.0,
        heartbeat_s: float | None = None,
        misfire_grace_s: float = 3600.0,
        on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl_s = lease_ttl_s
        self.heartbeat_s = heartbeat_s or max(0.5, lease_ttl_s / 3)
        self.misfire_grace_s = misfire_grace_s
        self.on_event = on_event or (lambda kind, data: None)
        self._sched: Any = None
        self._stop = threading.Event()
        self._leader = False
        self._lock = threading.Lock()
        self._jobs: dict[str, JobSpec] = {}
        self._current: str | None = None  # the run this worker is executing

    # -- leadership ---------------------------------------------------------------------------
    def heartbeat(self) -> bool:
        """Take or renew the lease; on becoming leader, mark dead leaders' runs abandoned."""
        if self._stop.is_set():
            return False
        got = self.store.acquire_lease(LEASE, self.owner, self.lease_ttl_s)
        with self._lock:
            became = got and not self._leader
            self._leader = got
        if became:
            self.on_event("leader", {"owner": self.owner})
            self._abandon_stale()
        return got

    def _abandon_stale(self) -> None:
        for r in self.store.list_runs(None):
            if r.get("status") == "running" and r["run_id"] != self._current:
                rec = {
                    k: v
                    for k, v in r.items()
                    if k not in ("run_id", "slot", "status", "created_at", "updated_at")
                }
                rec["abandoned_by"] = self.owner
                rec["abandoned_at"] = datetime.now(UTC).isoformat()
                self.store.save_run(r["run_id"], r["slot"], rec, status="abandoned")
                self.on_event("abandoned", {"run_id": r["run_id"]})

    @property
    def is_leader(self) -> bool:
        return self._leader

    # -- firing -------------------------------------------------------------------------------
    @staticmethod
    def tick_of(job: JobSpec, now: float) -> str:
        """The scheduled slot a firing at ``now`` belongs to (same for every worker)."""
        if job.trigger == "interval":
            every = float(job.every_s or 1)
            return f"i{int((now + every / 2) // every)}"
        if job.trigger == "cron":
            return "c" + time.strftime("%Y%m%d%H%M", time.gmtime(now))
        return "f"  # failures: the tick is the failure state, see _failures_due

    def _failures_due(self, job: JobSpec) -> str | None:
        """The tick key when at least N failures arrived since the job's last finished run."""
        runs = [
            r
            for r in self.store.list_runs(job.slot)
            if r.get("job_id") == job.id and r.get("status") not in ("running", "abandoned")
        ]
        since = None
        if runs:
            since = datetime.fromisoformat(str(runs[0].get("started_at") or runs[0]["created_at"]))
        window = self.store.window(job.slot, since=since)
        n = sum(1 for t in window if t.reward is not None and t.reward < 1.0)
        if n < int(job.failures or 1):
            return None
        return f"f{runs[0]['run_id'] if runs else 'first'}"

    def _window_done(self, job: JobSpec) -> bool:
        """Idempotency per (slot, window): a finished run already handled exactly this window."""
        from diffprompt.optimize import history
        from diffprompt.optimize.config import OptimizeConfig

        cfg = OptimizeConfig.from_dict(dict(job.request.get("config") or {}))
        active = self.store.active_version(job.slot)
        window = self.store.window(job.slot, limit=cfg.window_limit)
        return (
            history.finished_run_for(self.store, job.slot, history.window_key(job.slot, active.id, window))
            is not None
        )

    def fire(self, job_id: str) -> str | None:
        """One firing of a job (called by APScheduler). Returns the run id it ran, or None."""
        job = self._jobs.get(job_id)
        if job is None or self._stop.is_set() or not self.heartbeat():
            return None
        tick = self._failures_due(job) if job.trigger == "failures" else self.tick_of(job, time.time())
        if tick is None:
            return None
        if self._window_done(job):
            return None
        run_id = "run_s_" + hashlib.sha256(f"{job.id}|{tick}".encode()).hexdigest()[:24]
        try:
            self.store.get_run(run_id)
            return None  # this tick was already claimed (by us or an earlier leader)
        except NotFoundError:
            pass
        claim = {
            "job_id": job.id,
            "tick": tick,
            "worker": self.owner,
            "started_at": datetime.now(UTC).isoformat(),
        }
        self._current = run_id
        self.store.save_run(run_id, job.slot, claim, status="running")
        self.on_event("start", {"job_id": job.id, "run_id": run_id, "tick": tick})
        stop_beat = threading.Event()
        beat = threading.Thread(target=self._beat_during_run, args=(stop_beat,), daemon=True)
        beat.start()
        try:
            summary = dict(self.runner(self.store, job, run_id))
        except Exception as exc:  # a failed run is recorded, the worker goes on
            summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            rec = {**claim, "error": summary["error"]}
            self.store.save_run(run_id, job.slot, rec, status="failed")
        finally:
            stop_beat.set()
            beat.join(timeout=5)
            self._current = None
        self._tag_run(run_id, job, claim)
        self.on_event("done", {"job_id": job.id, "run_id": run_id, **summary})
        return run_id

    def _tag_run(self, run_id: str, job: JobSpec, claim: Mapping[str, Any]) -> None:
        """Make sure the final record carries the job id/tick/worker (the round rewrites the record)."""
        try:
            r = self.store.get_run(run_id)
        except NotFoundError:
            return
        if r.get("job_id") == job.id:
            return
        rec = {
            k: v for k, v in r.items() if k not in ("run_id", "slot", "status", "created_at", "updated_at")
        }
        rec.update({k: claim[k] for k in ("job_id", "tick", "worker")})
        self.store.save_run(run_id, r["slot"], rec, status=r["status"])

    def _beat_during_run(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            self.store.acquire_lease(LEASE, self.owner, self.lease_ttl_s)

    # -- lifecycle ----------------------------------------------------------------------------
    def sync_jobs(self) -> None:
        """(Re)register the stored jobs with APScheduler (fixed ids; removed jobs are unscheduled)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        jobs = {j.id: j for j in list_jobs(self.store)}
        for jid in set(self._jobs) - set(jobs):
            if self._sched.get_job(f"opt:{jid}"):
                self._sched.remove_job(f"opt:{jid}")
        for jid, job in jobs.items():
            if self._jobs.get(jid) == job and self._sched.get_job(f"opt:{jid}"):
                continue
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            if job.trigger == "cron":
                trig: Any = CronTrigger.from_crontab(str(job.cron), timezone=UTC)
            elif job.trigger == "interval":
                trig = IntervalTrigger(seconds=float(job.every_s or 1), start_date=epoch, timezone=UTC)
            else:
                trig = IntervalTrigger(seconds=job.poll_s, start_date=epoch, timezone=UTC)
            self._sched.add_job(
                self.fire,
                trig,
                args=[jid],
                id=f"opt:{jid}",
                name=f"optimize {job.slot}",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(self.misfire_grace_s),
            )
        self._jobs = jobs

    def start(self) -> None:
        """Start the background scheduler (heartbeat + jobs); returns immediately."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        self._sched = BackgroundScheduler(timezone=UTC)
        self._sched.start()
        self.heartbeat()
        self.sync_jobs()
        self._sched.add_job(
            self._tick_housekeeping,
            IntervalTrigger(seconds=self.heartbeat_s, timezone=UTC),
            id="heartbeat",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    def _tick_housekeeping(self) -> None:
        self.heartbeat()
        self.sync_jobs()

    def stop(self, *, wait: bool = True) -> None:
        """Graceful stop: no new firings, let a running round finish (``wait``), release the lease."""
        self._stop.set()
        if self._sched is not None:
            self._sched.shutdown(wait=wait)
        self.store.release_lease(LEASE, self.owner)
        with self._lock:
            self._leader = False
        self.on_event("stopped", {"owner": self.owner})

    def run_forever(self, *, install_signals: bool = True) -> None:
        """Start, block until SIGTERM/SIGINT (or ``request_stop``), then stop gracefully."""
        import signal

        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop.set())
        self.start()
        try:
            while not self._stop.wait(0.2):
                pass
        finally:
            self.stop(wait=True)

    def request_stop(self) -> None:
        self._stop.set()
