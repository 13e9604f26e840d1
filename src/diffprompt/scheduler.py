"""The scheduler worker: optimization rounds on cron / interval / "N new failures" triggers.

Jobs (``JobSpec``, in ``diffprompt.jobs``) are persisted in the store, so every worker on a database
sees the same jobs (``add_job`` / ``list_jobs`` / ``remove_job``); a job that cannot be scheduled is
skipped with a logged and recorded reason, and the other jobs run.

``Worker`` runs an APScheduler 3.11 ``BackgroundScheduler``: one job per spec with a fixed id,
``max_instances=1``, ``coalesce=True`` and a generous ``misfire_grace_time``, plus a heartbeat.
Exactly one worker per database is the **leader**: it holds the ``diffprompt-scheduler`` lease
(``store.acquire_lease`` with a TTL of at least a second, renewed at a third of it, also during a
run). Followers' jobs fire but do nothing. Every run holds its own heartbeat (``diffprompt.heartbeat``);
the leader marks ``abandoned`` only runs whose heartbeat expired — a live CLI ``optimize`` is left
alone — and such a run never promoted anything, because promotion is the round's last, atomic step.

Each firing claims a deterministic run id from (job, tick) — a second firing of the same tick is a
no-op — and a round whose (slot, window) was already handled by a finished run is skipped. SIGTERM /
SIGINT stop the worker gracefully: no new runs start, the running one finishes, the lease is released.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from diffprompt import heartbeat
from diffprompt.errors import ConfigError, ConflictError, NotFoundError
from diffprompt.jobs import (
    JOB_PREFIX,
    MIN_INTERVAL_S,
    BadJob,
    JobSpec,
    TriggerKind,
    add_job,
    check_request,
    cron_trigger,
    list_jobs,
    load_jobs,
    record_job_error,
    remove_job,
)

__all__ = [
    "JOB_PREFIX",
    "LEASE",
    "MIN_INTERVAL_S",
    "BadJob",
    "JobSpec",
    "Runner",
    "TriggerKind",
    "Worker",
    "add_job",
    "check_request",
    "cron_trigger",
    "default_runner",
    "list_jobs",
    "load_jobs",
    "remove_job",
]

log = logging.getLogger("diffprompt.scheduler")

LEASE = "diffprompt-scheduler"
Runner = Callable[[Any, JobSpec, str], Mapping[str, Any]]  # (store, job, run id) -> summary


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
        self.owner = owner or heartbeat.default_owner()
        self.lease_ttl_s = heartbeat.check_ttl(lease_ttl_s, "--lease-ttl")
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else max(0.5, self.lease_ttl_s / 3)
        if not math.isfinite(self.heartbeat_s) or not 0 < self.heartbeat_s < self.lease_ttl_s:
            raise ConfigError(
                f"the heartbeat ({heartbeat_s!r} s) must be positive and shorter than the lease "
                f"({self.lease_ttl_s:g} s), or a second leader could take over a live one"
            )
        if not math.isfinite(misfire_grace_s) or misfire_grace_s < 1:
            raise ConfigError(f"misfire grace must be a finite number of seconds >= 1, not {misfire_grace_s!r}")
        self.misfire_grace_s = misfire_grace_s
        self.on_event = on_event or (lambda kind, data: None)
        self._sched: Any = None
        self._stop = threading.Event()
        self._leader = False
        self._lock = threading.Lock()
        self._jobs: dict[str, JobSpec] = {}
        self._bad: dict[str, str] = {}  # job id -> why it is not scheduled (logged and recorded once)
        self._current: str | None = None  # the run this worker is executing
        self._next_abandon_check = 0.0  # monotonic time of the next look for expired runs

    # -- leadership ---------------------------------------------------------------------------
    def heartbeat(self) -> bool:
        """Take or renew the lease; as leader, mark runs whose own heartbeat expired abandoned."""
        if self._stop.is_set():
            return False
        got = self.store.acquire_lease(LEASE, self.owner, self.lease_ttl_s)
        with self._lock:
            became = got and not self._leader
            self._leader = got
        if became:
            self.on_event("leader", {"owner": self.owner})
            self._next_abandon_check = 0.0
        if got:
            self._abandon_stale()
        return got

    def _abandon_stale(self) -> None:
        """Only runs nobody keeps alive: a live CLI ``optimize`` or another worker's run is left alone.

        Looks at most once per half lease (it reads every run row), and at once on becoming leader.
        """
        now = time.monotonic()
        if now < self._next_abandon_check:
            return
        self._next_abandon_check = now + self.lease_ttl_s / 2
        for run_id in heartbeat.abandon_expired(self.store, by=self.owner, grace_s=self.lease_ttl_s):
            self.on_event("abandoned", {"run_id": run_id})

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def bad_jobs(self) -> dict[str, str]:
        """Jobs this worker could not schedule, with the reason."""
        return dict(self._bad)

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

    def _rollout_config(self, job: JobSpec) -> Any:
        from diffprompt.optimize.config import OptimizeConfig

        return OptimizeConfig.from_dict(dict(job.request.get("config") or {}))

    def _watch(self, job: JobSpec) -> str | None:
        """A ``--watch`` job: one canary-monitor evaluation; it acts on promote / rollback / expiry."""
        from diffprompt.rollout.jobs import run_watch

        try:
            summary = run_watch(self.store, job.slot, self._rollout_config(job).rollout)
        except Exception as exc:  # a failed evaluation is reported, the worker goes on
            summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        self.on_event("watch", {"job_id": job.id, **summary})
        return summary.get("record_id")

    def _drift_due(self, job: JobSpec) -> str | None:
        """The tick key when the active version drifted (one key per alarm or model change)."""
        from diffprompt.rollout.jobs import drift_tick

        cfg = self._rollout_config(job)
        tick, result = drift_tick(self.store, job.slot, cfg.drift, tune_n=cfg.rollout.tune_threads)
        if tick is not None:
            self.on_event("drift", {"job_id": job.id, "tick": tick, "reason": result.reason})
        return tick

    def _window_done(self, job: JobSpec) -> bool:
        """Idempotency per (slot, window): a finished run already handled exactly this window."""
        from diffprompt.optimize import history
        from diffprompt.optimize.config import OptimizeConfig

        cfg = OptimizeConfig.from_dict(dict(job.request.get("config") or {}))
        active = self.store.active_version(job.slot)
        window = self.store.window(job.slot, limit=cfg.window_limit)
        return (
            history.finished_run_for(self.store, job.slot, history.window_key(job.slot, active.id, window)) is not None
        )

    def fire(self, job_id: str) -> str | None:
        """One firing of a job (called by APScheduler). Returns the run id it ran, or None."""
        job = self._jobs.get(job_id)
        if job is None or self._stop.is_set() or not self.heartbeat():
            return None
        if job.watch:
            return self._watch(job)
        if job.trigger == "drift":
            tick = self._drift_due(job)
        else:
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
        with contextlib.ExitStack() as stack:
            try:  # the run's heartbeat is held before its row says "running"
                hb = stack.enter_context(
                    heartbeat.run_heartbeat(
                        self.store,
                        run_id,
                        owner=self.owner,
                        ttl_s=self.lease_ttl_s,
                        interval_s=self.heartbeat_s,
                        on_beat=lambda: self.store.acquire_lease(LEASE, self.owner, self.lease_ttl_s),
                    )
                )
            except ConflictError:
                return None  # another process is running this tick
            self._current = run_id
            try:
                self.store.save_run(run_id, job.slot, claim, status="running")
                self.on_event("start", {"job_id": job.id, "run_id": run_id, "tick": tick})
                try:
                    summary = dict(self.runner(self.store, job, run_id))
                except Exception as exc:  # a failed run is recorded, the worker goes on
                    summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    rec = {**claim, "error": summary["error"]}
                    self.store.save_run(run_id, job.slot, rec, status="failed")
            finally:
                self._current = None
        self._tag_run(run_id, job, claim)
        self.on_event("done", {"job_id": job.id, "run_id": run_id, "beats": hb.beats, **summary})
        return run_id

    def _tag_run(self, run_id: str, job: JobSpec, claim: Mapping[str, Any]) -> None:
        """Make sure the final record carries the job id/tick/worker (the round rewrites the record)."""
        try:
            r = self.store.get_run(run_id)
        except NotFoundError:
            return
        if r.get("job_id") == job.id:
            return
        rec = {k: v for k, v in r.items() if k not in ("run_id", "slot", "status", "created_at", "updated_at")}
        rec.update({k: claim[k] for k in ("job_id", "tick", "worker")})
        self.store.save_run(run_id, r["slot"], rec, status=r["status"])

    # -- lifecycle ----------------------------------------------------------------------------
    def _skip(self, job_id: str, reason: str) -> None:
        """A job that cannot be scheduled is skipped, logged, recorded in its row and reported once."""
        if self._bad.get(job_id) == reason:
            return
        self._bad[job_id] = reason
        log.warning("job %s skipped: %s", job_id, reason)
        self.on_event("job_invalid", {"job_id": job_id, "reason": reason})
        try:
            record_job_error(self.store, job_id, reason)
        except Exception as exc:  # recording is best effort; the log line stands
            log.warning("job %s: could not record why it was skipped: %s", job_id, exc)

    def sync_jobs(self) -> None:
        """(Re)register the stored jobs with APScheduler (fixed ids; removed and bad jobs unscheduled)."""
        good, bad = load_jobs(self.store)
        jobs = {j.id: j for j in good}
        for b in bad:
            self._skip(b.id, b.reason)
        for jid in set(self._bad) - {b.id for b in bad}:
            del self._bad[jid]  # re-added (fixed) or removed
        for jid in set(self._jobs) - set(jobs):
            if self._sched.get_job(f"opt:{jid}"):
                self._sched.remove_job(f"opt:{jid}")
        scheduled: dict[str, JobSpec] = {}
        for jid, job in jobs.items():
            if self._jobs.get(jid) == job and self._sched.get_job(f"opt:{jid}"):
                scheduled[jid] = job
                continue
            try:
                self._sched.add_job(
                    self.fire,
                    job.apscheduler_trigger(),
                    args=[jid],
                    id=f"opt:{jid}",
                    name=f"optimize {job.slot}",
                    replace_existing=True,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(self.misfire_grace_s),
                )
            except Exception as exc:  # one job APScheduler refuses must not stop the others
                self._skip(jid, f"{type(exc).__name__}: {exc}")
                continue
            scheduled[jid] = job
        self._jobs = scheduled

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
        self.on_event("started", {"owner": self.owner, "jobs": sorted(self._jobs), "skipped": sorted(self._bad)})

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
            self._stop.wait()
        finally:
            self.stop(wait=True)

    def request_stop(self) -> None:
        self._stop.set()
