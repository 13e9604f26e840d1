"""Scheduled optimization jobs: ``JobSpec`` (validated triggers), persistence, and bad-job reports.

Jobs are stored as run-like JSON rows (id ``job:<id>``, status ``job``) so every worker on a database
sees the same jobs. A job is validated completely when it is built (cron field ranges, finite
intervals, the request's specs), so ``schedule add`` refuses what a worker could not schedule; a row
that is bad anyway (written by an older version, edited by hand) is reported by ``load_jobs`` as a
``BadJob`` with its reason instead of raising, so one broken job never stops the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from diffprompt.errors import ConfigError, NotFoundError

TriggerKind = Literal["cron", "interval", "failures", "drift"]
JOB_PREFIX = "job:"
MIN_INTERVAL_S = 1.0  # shortest --every / --poll: a worker must not spin on its database
_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # crontab day numbers 0-7


def _finite_seconds(value: float | None, what: str, *, zero_hint: str = "") -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, not {value!r}") from None
    if x == 0 and zero_hint:
        raise ConfigError(zero_hint)
    if not math.isfinite(x) or x < MIN_INTERVAL_S:
        raise ConfigError(f"{what} must be a finite number of seconds >= {MIN_INTERVAL_S:g}, not {value!r}")
    return x


def _crontab_weekdays(field_: str) -> str:
    """Crontab day-of-week numbers (0 and 7 = Sunday) as APScheduler day names (its 0 is Monday)."""
    out: list[str] = []
    for part in field_.split(","):
        base, slash, step_s = part.partition("/")
        if any(c.isalpha() for c in base) or base == "?":
            out.append(part)  # names mean the same in both
            continue
        if base == "*" and not slash:
            out.append("*")
            continue
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, _, b = base.partition("-")
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(base)
            if slash:
                hi = 6
        if not 0 <= lo <= hi <= 7:
            raise ValueError(f"day of week {part!r}: use 0-7 (0 and 7 are Sunday) or mon..sun")
        step = int(step_s) if slash else 1
        if step < 1:
            raise ValueError(f"day of week {part!r}: the step must be >= 1")
        out.extend(_DOW[d] for d in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(out))


def cron_trigger(cron: str) -> Any:
    """An APScheduler ``CronTrigger`` (UTC) for a 5-field crontab; ``ConfigError`` naming the bad field."""
    from apscheduler.triggers.cron import CronTrigger

    fields_ = cron.split() if isinstance(cron, str) else []
    if len(fields_) != 5:
        raise ConfigError(f"--cron {cron!r}: needs 5 fields (minute hour day month weekday), e.g. '0 3 * * *'")
    minute, hour, day, month, dow = fields_
    try:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_weekdays(dow), timezone=UTC
        )
    except ValueError as exc:
        raise ConfigError(
            f"--cron {cron!r}: {exc} (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7)"
        ) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """A scheduled optimization job. ``request`` is ``OptimizeRequest`` data (slot is filled in).

    Construction validates the trigger completely (cron field ranges, finite intervals of at least
    ``MIN_INTERVAL_S``), so a job that was built can always be scheduled.
    """

    id: str
    slot: str
    trigger: TriggerKind
    cron: str | None = None  # crontab: "minute hour day month day_of_week"
    every_s: float | None = None  # interval seconds
    failures: int | None = None  # "after N new failures" (checked every ``poll_s``)
    poll_s: float = 60.0
    request: Mapping[str, Any] = field(default_factory=dict)
    watch: bool = False  # a canary-monitor job (diffprompt.rollout) every ``every_s`` instead of a round

    def __post_init__(self) -> None:
        if (
            not isinstance(self.id, str)
            or not self.id
            or len(self.id) > 40
            or not self.id.replace("-", "").replace("_", "").isalnum()
        ):
            raise ConfigError(f"job id {self.id!r}: use 1-40 letters, digits, '-' or '_'")
        if not isinstance(self.request, Mapping):
            raise ConfigError(f"job {self.id}: the request must be a JSON object, not {self.request!r}")
        if self.trigger == "cron":
            cron_trigger(str(self.cron or ""))
        elif self.trigger == "interval":
            _finite_seconds(
                self.every_s,
                f"job {self.id}: --every",
                zero_hint=f"job {self.id}: --every 0 would run without pause; "
                f"give the interval in seconds (>= {MIN_INTERVAL_S:g})",
            )
        elif self.trigger == "failures":
            if isinstance(self.failures, bool) or not isinstance(self.failures, int) or self.failures < 1:
                raise ConfigError(f"job {self.id}: --after-failures needs a whole number N >= 1, not {self.failures!r}")
            _finite_seconds(self.poll_s, f"job {self.id}: --poll")
        elif self.trigger == "drift":  # --on-drift: the drift check runs every ``poll_s``
            _finite_seconds(self.poll_s, f"job {self.id}: --poll")
        else:
            raise ConfigError(
                f"job {self.id}: trigger must be cron, interval, failures or drift, not {self.trigger!r}"
            )
        if self.watch and self.trigger != "interval":
            raise ConfigError(f"job {self.id}: --watch runs the canary monitor every --every seconds; no other trigger")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["request"] = dict(self.request)
        return d

    def apscheduler_trigger(self) -> Any:
        """The APScheduler trigger of this job (UTC; intervals aligned to the epoch for every worker)."""
        from apscheduler.triggers.interval import IntervalTrigger

        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        if self.trigger == "cron":
            return cron_trigger(str(self.cron))
        seconds = float(self.every_s if self.trigger == "interval" else self.poll_s)  # type: ignore[arg-type]
        return IntervalTrigger(seconds=seconds, start_date=epoch, timezone=UTC)


def check_request(slot: str, request: Mapping[str, Any]) -> Any:
    """The job's ``OptimizeRequest``, checked without loading anything.

    Checks the keys, the config, the env, editor, target model and user simulator specs and the
    seeds; ``ConfigError`` names the bad value.
    """
    from diffprompt.llm import parse_model_spec
    from diffprompt.optimize import build
    from diffprompt.optimize.config import OptimizeConfig
    from diffprompt.optimize.service import OptimizeRequest

    req = OptimizeRequest.from_dict({**dict(request), "slot": slot})
    if not isinstance(req.config, Mapping):
        raise ConfigError(f"the request's config must be a JSON object, not {req.config!r}")
    OptimizeConfig.from_dict(dict(req.config))
    if build.env_plugin(str(req.env)) is None:
        build.parse_env_spec(str(req.env))
    if req.editor not in build.EDITORS:
        raise ConfigError(f"unknown editor {req.editor!r}; choose one of {', '.join(build.EDITORS)}")
    parse_model_spec(str(req.model))
    user = str(req.user)
    if user != "scripted" and not (user.startswith("llm:") and user[4:].strip()):
        raise ConfigError(f"unknown user simulator {req.user!r}: use 'scripted' or 'llm:MODEL'")
    for name, value in (
        ("seed", req.seed),
        ("world_seed", req.world_seed),
        ("world_users", req.world_users),
        ("world_tasks", req.world_tasks),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"the request's {name} must be a whole number, not {value!r}")
    return req


# ------------------------------------------------------------------------------------ persistence
@dataclass(frozen=True, kw_only=True, slots=True)
class BadJob:
    """A stored job that cannot be scheduled, and why (``schedule health`` reports these)."""

    id: str
    slot: str
    reason: str


def add_job(store: Any, job: JobSpec) -> None:
    """Persist (or replace) a job; the slot must exist and the request must be valid."""
    check_request(job.slot, job.request)
    store.slot_state(job.slot)
    store.save_run(JOB_PREFIX + job.id, job.slot, {"job": job.as_dict()}, status="job")


def load_jobs(store: Any) -> tuple[list[JobSpec], list[BadJob]]:
    """The stored jobs that can run, and those that cannot (with the reason), both sorted by id.

    A bad row never raises: one broken job must not stop the others.
    """
    good: list[JobSpec] = []
    bad: list[BadJob] = []
    for r in store.list_runs(None):
        if r.get("status") != "job":
            continue
        raw = r.get("job")
        jid = str(raw.get("id") if isinstance(raw, dict) else r["run_id"][len(JOB_PREFIX) :])
        try:
            if not isinstance(raw, dict):
                raise ConfigError("the stored job is not a JSON object")
            job = JobSpec(**raw)
            check_request(job.slot, job.request)
        except (ConfigError, TypeError, ValueError) as exc:
            bad.append(BadJob(id=jid, slot=str(r.get("slot")), reason=str(exc)))
            continue
        if r.get("error"):  # the worker could not schedule it
            bad.append(BadJob(id=job.id, slot=job.slot, reason=str(r["error"])))
            continue
        good.append(job)
    return sorted(good, key=lambda j: j.id), sorted(bad, key=lambda b: b.id)


def list_jobs(store: Any) -> list[JobSpec]:
    """The stored jobs that can run (see ``load_jobs`` for the others)."""
    return load_jobs(store)[0]


def record_job_error(store: Any, job_id: str, reason: str) -> None:
    """Write ``reason`` into the stored job row (until the job is re-added or removed)."""
    try:
        row = store.get_run(JOB_PREFIX + job_id)
    except NotFoundError:
        return
    if row.get("status") != "job" or row.get("error") == reason:
        return
    rec = {"job": row.get("job"), "error": reason, "error_at": datetime.now(UTC).isoformat()}
    store.save_run(JOB_PREFIX + job_id, row["slot"], rec, status="job")


def remove_job(store: Any, job_id: str) -> None:
    try:
        row = store.get_run(JOB_PREFIX + job_id)
    except NotFoundError:
        raise NotFoundError(f"unknown job {job_id!r}; see `diffprompt schedule list`") from None
    if row.get("status") != "job":
        raise NotFoundError(f"job {job_id!r} was already removed")
    store.save_run(JOB_PREFIX + job_id, row["slot"], {"job": row.get("job")}, status="job_removed")
