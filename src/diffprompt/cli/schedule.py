"""``diffprompt schedule add|list|remove|run``: scheduled optimization rounds (the worker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer

from diffprompt.cli import common

app = typer.Typer(help="Scheduled optimization: jobs and the worker.", no_args_is_help=True)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="Job id (fixed; re-adding replaces it)."),
    slot: str = typer.Option(..., "--slot"),
    cron: str | None = typer.Option(None, "--cron", help='Crontab, e.g. "0 3 * * *" (UTC).'),
    every: float | None = typer.Option(None, "--every", help="Interval in seconds."),
    after_failures: int | None = typer.Option(None, "--after-failures", help="Run after N new failures."),
    poll: float = typer.Option(60.0, "--poll", help="Seconds between failure-count checks."),
    env: str = typer.Option("tau:airline", "--env"),
    editor: str = typer.Option("dlm", "--editor"),
    model: str = typer.Option("sim", "--model"),
    request: str | None = typer.Option(None, "--request", help="Extra OptimizeRequest fields as JSON."),
    watch: bool = typer.Option(
        False, "--watch", help="Run the canary monitor (promote / roll back / wait) every --every (default --poll) s."
    ),
    on_drift: bool = typer.Option(
        False, "--on-drift", help="Run a round when the active version's live success drops or its model changes."
    ),
) -> None:
    """Add (or replace) a job: exactly one of --cron, --every, --after-failures, --on-drift (or --watch).

    Everything is checked here (cron field ranges, finite intervals and polls, the request's env,
    editor and model), so a worker never meets a job it cannot schedule.
    """
    from diffprompt.errors import ConfigError
    from diffprompt.scheduler import JobSpec, add_job, check_request

    given = [x for x in (cron, every, after_failures, True if on_drift else None) if x is not None]
    if watch and not given:
        every, given = poll, [poll]  # the monitor's interval
    if len(given) != 1:
        raise ConfigError("give exactly one trigger: --cron, --every, --after-failures or --on-drift")
    trigger: Literal["cron", "interval", "failures", "drift"] = (
        "cron" if cron is not None else "interval" if every is not None else "drift" if on_drift else "failures"
    )
    req = check_request(slot, {"env": env, "editor": editor, "model": model, **_request_json(request)})
    job = JobSpec(
        id=job_id,
        slot=slot,
        trigger=trigger,
        cron=cron,
        every_s=every,
        failures=after_failures,
        poll_s=poll,
        request={k: v for k, v in req.as_dict().items() if k != "slot"},
        watch=watch,
    )
    store = common.open_store(ctx)
    try:
        add_job(store, job)
    finally:
        store.close()
    common.console.print(f"job {job_id}: {trigger} for slot {slot}", markup=False, highlight=False)


def _request_json(text: str | None) -> dict[str, Any]:
    """``--request`` as a JSON object (``ConfigError`` on bad JSON or another JSON type)."""
    from diffprompt.errors import ConfigError

    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--request is not valid JSON ({exc}); give an object, e.g. '{{\"seed\": 1}}'") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--request must be a JSON object of OptimizeRequest fields, not {type(data).__name__}")
    if {"slot", "env", "editor", "model"} & set(data):
        raise ConfigError("--request must not repeat slot/env/editor/model; use --slot, --env, --editor, --model")
    return data


def _jobs_file(path: Path) -> list[Any]:
    """The ``--jobs`` file: a JSON list of job objects, each fully validated (``ConfigError`` naming it)."""
    from diffprompt.errors import ConfigError
    from diffprompt.scheduler import JobSpec

    raw = common.read_text_file(path, "--jobs file")
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"--jobs {path} is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise ConfigError(f"--jobs {path} must be a JSON list of jobs, not {type(items).__name__}")
    jobs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"--jobs {path}: job {i} is not a JSON object")
        try:
            jobs.append(JobSpec(**item))
        except TypeError as exc:
            raise ConfigError(f"--jobs {path}: job {i}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"--jobs {path}: job {i}: {exc}") from None
    return jobs


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The stored jobs (``--json``: those that can run; the text also lists the ones that cannot, and why)."""
    from diffprompt.scheduler import load_jobs

    store = common.open_store(ctx)
    try:
        good, bad = load_jobs(store)
        jobs = [j.as_dict() for j in good]
    finally:
        store.close()
    if as_json:
        common.print_json(jobs)
        return
    for j in jobs:
        when = j["cron"] or (f"every {j['every_s']}s" if j["every_s"] else f"after {j['failures']} failures")
        when = "on drift" if j.get("trigger") == "drift" else f"watch canary {when}" if j.get("watch") else when
        common.console.print(
            f"{j['id']}: slot={j['slot']} {when} editor={j['request'].get('editor')}", markup=False, highlight=False
        )
    for b in bad:
        common.console.print(f"{b.id}: slot={b.slot} INVALID, not scheduled: {b.reason}", markup=False, highlight=False)


@app.command("remove")
def remove_cmd(ctx: typer.Context, job_id: str = typer.Argument(...)) -> None:
    """Remove a job (running workers drop it at their next heartbeat)."""
    from diffprompt.scheduler import remove_job

    store = common.open_store(ctx)
    try:
        remove_job(store, job_id)
    finally:
        store.close()
    common.console.print(f"removed job {job_id}")


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    lease_ttl: float = typer.Option(60.0, "--lease-ttl", help="Leader lease seconds (renewed at a third)."),
    jobs_file: Path | None = typer.Option(None, "--jobs", help="JSON list of jobs to add at start-up."),
) -> None:
    """The worker: runs the stored jobs while it is the leader; SIGTERM stops it gracefully."""
    from diffprompt.heartbeat import check_ttl
    from diffprompt.scheduler import Worker, add_job, default_runner

    check_ttl(lease_ttl, "--lease-ttl")  # 0, negative or NaN would let two leaders run at once
    settings = common.state(ctx).settings()
    jobs = _jobs_file(jobs_file) if jobs_file is not None else []  # all checked before any is added
    store = common.open_store(ctx)
    try:
        for job in jobs:
            add_job(store, job)
    except BaseException:
        store.close()
        raise

    def show(kind: str, data: Any) -> None:
        common.err_console.print(
            f"[scheduler] {kind} {json.dumps(dict(data), default=str)}", highlight=False, markup=False
        )

    try:
        worker = Worker(
            store,
            default_runner(home=settings.home, api_key=settings.openai_api_key, base_url=settings.openai_base_url),
            lease_ttl_s=lease_ttl,
            on_event=show,
        )
        common.err_console.print(f"[scheduler] worker {worker.owner} started", highlight=False, markup=False)
        worker.run_forever()
    finally:
        store.close()


@app.command("health")
def health_cmd(ctx: typer.Context) -> None:
    """Container healthcheck: the database answers and every job can be scheduled (exit 0), else exit 1.

    A job that a worker cannot schedule (bad trigger or request, written by an older version or by
    hand) is listed under ``invalid_jobs`` with its reason, and the check fails.
    """
    from diffprompt.errors import ConfigError
    from diffprompt.scheduler import load_jobs

    store = common.open_store(ctx)
    try:
        slots = store.list_slots()
        jobs, bad = load_jobs(store)
    finally:
        store.close()
    common.print_json(
        {
            "db": "ok",
            "slots": len(slots),
            "jobs": len(jobs),
            "invalid_jobs": [{"id": b.id, "slot": b.slot, "reason": b.reason} for b in bad],
        }
    )
    if bad:
        raise ConfigError(
            f"{len(bad)} job(s) cannot run: "
            + "; ".join(f"{b.id}: {b.reason}" for b in bad)
            + " — fix with `diffprompt schedule add` (same id) or `schedule remove`"
        )
