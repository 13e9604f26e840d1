"""``diffprompt tau run``: τ episodes through the wrapped agent, recorded as traces with reward feedback.

Thin: parse options, resolve them with the one τ factory (``diffprompt.integrations.tau.build_tau``:
endpoints checked first, then the domain loaded or generated, model and user factories), wrap the
agent with the diffprompt middleware, run the episodes (``TauSetup.run``), show progress and pass^k.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import typer

from diffprompt.cli import common
from diffprompt.errors import ConfigError
from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO


def parse_task_range(spec: str, n_tasks: int | None) -> list[int]:
    """``all`` | ``N`` | ``A-B`` (inclusive) | ``A:B`` (exclusive end) | comma-separated mix → indices.

    Every part must name at least one task: ``5-2``, ``3:3``, an empty spec or an empty part are
    ``ConfigError``s, never zero episodes or every task. With ``n_tasks`` None only the syntax is
    checked (before a world is generated); otherwise every index must be a task of the split.
    """
    usage = "use 'all', '7', '0-9' (inclusive), '0:10' (end excluded) or '1,4,9'"
    text = spec.strip().lower()
    if not text:
        raise ConfigError(f"--tasks is empty; {usage}")
    if text in ("all", "*"):
        return list(range(n_tasks or 0))
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*([-:])\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(3))
            stop = b + 1 if m.group(2) == "-" else b
            if stop <= a:
                hint = f"'{a}-{b}' is empty (start after end)" if m.group(2) == "-" else f"'{a}:{b}' is empty"
                raise ConfigError(f"bad --tasks {spec!r}: {hint}; {usage}")
            out.extend(range(a, stop))
        elif part.isdigit():
            out.append(int(part))
        else:
            what = "an empty part" if not part else repr(part)
            raise ConfigError(f"bad --tasks {spec!r}: {what} is not a task index or range; {usage}")
    if n_tasks is not None:
        bad = [i for i in out if not 0 <= i < n_tasks]
        if bad:
            raise ConfigError(f"--tasks {spec!r} names task {bad[0]}, but the split has tasks 0..{n_tasks - 1}")
    return list(dict.fromkeys(out))


def ensure_slot(store: Any, slot: str, seed_text: str, *, require_text: bool = False) -> Any:
    """The slot's active version, creating the slot with ``seed_text`` when it does not exist.

    With ``require_text`` an existing slot must serve exactly ``seed_text`` (``ConfigError`` otherwise).
    """
    from diffprompt.errors import NotFoundError

    try:
        active = store.active_version(slot)
    except NotFoundError:
        return store.create_slot(slot, seed_text, actor="cli:tau-run")
    if require_text and active.text != seed_text:
        raise ConfigError(
            f"slot {slot!r} exists and serves another prompt ({active.id}); pass a new --slot, or drop "
            "--policy-file to serve the slot's active version"
        )
    return active


def run_cmd(
    ctx: typer.Context,
    domain: str = typer.Option(..., "--domain", help="airline or retail."),
    tau_data: Path | None = typer.Option(
        None, "--tau-data", help="Official-layout data dir (default: a generated world)."
    ),
    world_seed: int = typer.Option(DEFAULT_SCENARIO.world_seed, "--world-seed", help="Seed of the generated world."),
    world_users: int = typer.Option(
        DEFAULT_SCENARIO.world_users, "--world-users", help="Users in the generated world."
    ),
    world_tasks: int = typer.Option(
        DEFAULT_SCENARIO.world_tasks, "--world-tasks", help="Tasks per split in the generated world."
    ),
    split: str = typer.Option("test", "--split", help="test, train or dev."),
    tasks: str = typer.Option("all", "--tasks", help="Task indices: all, 7, 0-9, 0:10, 1,4,9."),
    trials: int = typer.Option(1, "--trials", min=1, help="Trials per task (pass^1..k)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Episodes run at once."),
    model: str = typer.Option("sim", "--model", help="sim | openai:NAME (any OpenAI-compatible endpoint)."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible base URL (default OPENAI_BASE_URL)."
    ),
    user: str = typer.Option("scripted", "--user", help="scripted | llm:NAME."),
    user_base_url: str | None = typer.Option(
        None, "--user-base-url", help="Base URL of the user model (default: --base-url)."
    ),
    policy_file: Path | None = typer.Option(
        None, "--policy-file", help="System prompt to serve (default: the domain's policy, or the slot's)."
    ),
    slot: str | None = typer.Option(
        None, "--slot", help="Prompt slot (default tau-<domain>); created from the policy."
    ),
    record: bool = typer.Option(True, "--record/--no-record", help="Record traces + reward feedback in the store."),
    seed: int = typer.Option(0, "--seed", help="Base seed of the episodes."),
    max_steps: int = typer.Option(30, "--max-steps", min=1, help="Agent steps per episode (official: 30)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (last line)."),
) -> None:
    """Run τ episodes concurrently and print pass^1..k; every episode is a trace with its reward."""
    from diffprompt.integrations.tau.factory import build_tau, record_rewards

    settings = common.state(ctx).settings()
    setup = build_tau(
        domain,
        home=Path(settings.home),
        data_dir=tau_data,
        world_seed=world_seed,
        world_users=world_users,
        world_tasks=world_tasks,
        model=model,
        user=user,
        base_url=base_url or settings.openai_base_url,
        api_key=settings.openai_api_key,
        user_base_url=user_base_url,
        max_steps=max_steps,
    )
    setup.check_endpoints()  # fail fast: before any world is generated or any episode starts
    parse_task_range(tasks, None)  # the syntax, before any world is generated
    policy = common.read_text_file(policy_file, "--policy-file") if policy_file is not None else None
    dom = setup.domain(split)
    indices = parse_task_range(tasks, len(dom.tasks))
    prompt = policy if policy is not None else dom.policy
    meter = setup.meter
    slot_name = slot or f"tau-{domain}"
    store = recorder = mw = None
    version_id = None
    if record:
        from diffprompt.middleware import PromptAdaptationMiddleware
        from diffprompt.store.recorder import Recorder

        store = common.open_store(ctx)
        version_id = ensure_slot(store, slot_name, prompt, require_text=policy_file is not None).id
        recorder = Recorder(store, spool_dir=settings.resolved_spool_dir)
        mw = PromptAdaptationMiddleware(slot_name, store, recorder=recorder)

    t0 = time.perf_counter()
    try:
        summary = _run_with_progress(
            setup.run,
            dom,
            indices,
            trials=trials,
            concurrency=concurrency,
            system_prompt=None if mw is not None else prompt,
            middleware_factory=(lambda: [mw]) if mw is not None else None,
            seed=seed,
            quiet=as_json,
        )
        n_feedback = 0
        if mw is not None:
            mw.close()  # records the traces of failed runs too, then flushes the recorder
            mw = None
            n_feedback = record_rewards(store, summary.results, slot=slot_name)
    finally:
        if mw is not None:
            mw.close()
        if store is not None:
            store.close()
    wall = time.perf_counter() - t0
    _report(
        summary,
        dom=dom,
        slot=slot_name if record else None,
        version_id=version_id,
        meter=meter,
        wall=wall,
        n_feedback=n_feedback,
        model=str(setup.model),
        user=user,
        as_json=as_json,
    )


def _run_with_progress(run_tau: Any, dom: Any, indices: list[int], *, quiet: bool, **kw: Any) -> Any:
    total = len(indices) * kw["trials"]
    if quiet:
        return run_tau(dom, indices, **kw)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    wins = [0]
    with Progress(
        TextColumn("[bold]τ {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("reward {task.fields[mean]:.3f}"),
        TimeElapsedColumn(),
        console=common.err_console,
        transient=False,
    ) as bar:
        job = bar.add_task(f"{dom.name}/{dom.split}", total=total, mean=0.0)

        def on_result(res: Any) -> None:
            wins[0] += res.reward >= 1.0
            done = int(bar.tasks[0].completed) + 1
            bar.update(job, advance=1, mean=wins[0] / done)

        return run_tau(dom, indices, on_result=on_result, **kw)


def _report(
    summary: Any,
    *,
    dom: Any,
    slot: str | None,
    version_id: str | None,
    meter: Any,
    wall: float,
    n_feedback: int,
    model: str,
    user: str,
    as_json: bool,
) -> None:
    snap = meter.snapshot()
    n = len(summary.results)
    errors = [r for r in summary.results if r.error]
    payload = {
        "domain": dom.name,
        "split": dom.split,
        "data_dir": str(dom.data_dir),
        "model": model,
        "user": user,
        "episodes": n,
        "tasks": len({r.task_index for r in summary.results}),
        "pass_hat_k": {str(k): v for k, v in summary.pass_hat_k.items()},
        "mean_reward": summary.mean_reward,
        "errors": len(errors),
        "seconds": round(wall, 3),
        "episodes_per_s": round(n / wall, 3) if wall > 0 else None,
        "slot": slot,
        "version_id": version_id,
        "feedback_recorded": n_feedback,
        "model_calls": snap.calls,
        "input_tokens": snap.input_tokens,
        "output_tokens": snap.output_tokens,
        "cost_usd": round(snap.cost_usd, 6),
        "stop_reasons": _counts(r.stop_reason or ("error" if r.error else "none") for r in summary.results),
    }
    if as_json:
        common.print_json(payload)
        return
    from rich.table import Table

    table = Table(title=common.literal(f"τ {dom.name}/{dom.split} — {model}, user {user}"))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary.pass_hat_k.items():
        table.add_row(f"pass^{k}", f"{v:.3f}")
    table.add_row("episodes", str(n))
    table.add_row("mean reward", f"{summary.mean_reward:.3f}")
    table.add_row("errors", str(len(errors)))
    table.add_row("episodes/s", f"{payload['episodes_per_s']}")
    table.add_row("model calls / tokens", f"{snap.calls} / {snap.total_tokens}")
    table.add_row("cost (USD)", f"{snap.cost_usd:.4f}")
    if slot:
        table.add_row("slot / version", f"{slot} / {version_id}")
        table.add_row("traces with reward", str(n_feedback))
    common.print_table(table)
    for r in errors[:5]:
        common.err_console.print(
            f"[yellow]task {r.task_index} trial {r.trial}:[/] {common.literal(r.error)}", highlight=False
        )


def _counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def register(tau_app: typer.Typer) -> None:
    """Add ``run`` to the ``tau`` group."""
    tau_app.command("run")(run_cmd)
