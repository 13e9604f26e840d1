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
) -> None:
    """Add (or replace) a job: exactly one of --cron, --every, --after-failures."""
    from diffprompt.errors import ConfigError
    from diffprompt.optimize.service import OptimizeRequest
    from diffprompt.scheduler import JobSpec, add_job

    given = [x for x in (cron, every, after_failures) if x is not None]
    if len(given) != 1:
        raise ConfigError("give exactly one trigger: --cron, --every or --after-failures")
    trigger: Literal["cron", "interval", "failures"] = "cron" if cron else "interval" if every else "failures"
    extra: dict[str, Any] = json.loads(request) if request else {}
    req = OptimizeRequest.from_dict({"slot": slot, "env": env, "editor": editor, "model": model, **extra})
    job = JobSpec(
        id=job_id,
        slot=slot,
        trigger=trigger,
        cron=cron,
        every_s=every,
        failures=after_failures,
        poll_s=poll,
        request={k: v for k, v in req.as_dict().items() if k != "slot"},
    )
    store = common.open_store(ctx)
    try:
        add_job(store, job)
    finally:
        store.close()
    common.console.print(f"job {job_id}: {trigger} for slot {slot}")


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The stored jobs."""
    from diffprompt.scheduler import list_jobs

    store = common.open_store(ctx)
    try:
        jobs = [j.as_dict() for j in list_jobs(store)]
    finally:
        store.close()
    if as_json:
        common.print_json(jobs)
        return
    for j in jobs:
        when = j["cron"] or (f"every {j['every_s']}s" if j["every_s"] else f"after {j['failures']} failures")
        common.console.print(f"{j['id']}: slot={j['slot']} {when} editor={j['request'].get('editor')}")


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
    from diffprompt.scheduler import JobSpec, Worker, add_job, default_runner

    settings = common.state(ctx).settings()
    store = common.open_store(ctx)
    if jobs_file is not None:
        for j in json.loads(jobs_file.read_text(encoding="utf-8")):
            add_job(store, JobSpec(**j))

    def show(kind: str, data: Any) -> None:
        common.err_console.print(f"[scheduler] {kind} {json.dumps(dict(data), default=str)}", highlight=False)

    worker = Worker(
        store,
        default_runner(
            home=settings.home, api_key=settings.openai_api_key, base_url=settings.openai_base_url
        ),
        lease_ttl_s=lease_ttl,
        on_event=show,
    )
    common.err_console.print(f"[scheduler] worker {worker.owner} started", highlight=False)
    try:
        worker.run_forever()
    finally:
        store.close()


@app.command("health")
def health_cmd(ctx: typer.Context) -> None:
    """Container healthcheck: the database answers and the jobs are readable (exit 0), else exit 1."""
    from diffprompt.scheduler import list_jobs

    store = common.open_store(ctx)
    try:
        slots = store.list_slots()
        jobs = list_jobs(store)
    finally:
        store.close()
    common.print_json({"db": "ok", "slots": len(slots), "jobs": len(jobs)})
