"""``diffprompt tau ...``: τ-bench environments (gold checks here; ``run`` comes from ``tau_run``)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="τ-bench airline/retail environments: gold checks, runs.", no_args_is_help=True)


@app.command("check-gold")
def check_gold(
    domain: str = typer.Option(..., "--domain", help="airline or retail."),
    data_dir: Path = typer.Option(..., "--data-dir", help="DIR/<domain>/ or a domain dir."),
    split: str = typer.Option("test", "--split", help="test, train or dev."),
    hashes: Path | None = typer.Option(None, "--hashes", help="JSON {task index: hash} to compare against."),
    users_file: str | None = typer.Option(None, "--users-file", help="Use this file instead of users.json."),
) -> None:
    """Replay every task's gold actions with our tools; print each task's DB hash (and compare)."""
    from tau_envs.domain import load_domain
    from tau_envs.gold import GoldResult, load_hashes
    from tau_envs.gold import check_gold as run_check

    expected = load_hashes(hashes) if hashes is not None else None
    loaded = load_domain(domain, data_dir, split=split, users_file=users_file)

    def show(result: GoldResult) -> None:
        errors = sum(step.is_error for step in result.steps)
        line = f"task {result.index} {result.hash} steps={len(result.steps)} errors={errors}"
        if result.matched is not None:
            line += " ok" if result.matched else f" MISMATCH expected {result.expected}"
        typer.echo(line)

    report = run_check(loaded, expected, on_result=show)
    if expected is None:
        typer.echo(f"replayed {len(report.results)} tasks of {domain}/{split}")
        return
    for index in report.unknown:
        typer.echo(f"task {index} MISSING: not a task of {domain}/{split} ({len(loaded.tasks)} tasks)")
    if report.compared == 0:
        typer.echo(f"warning: {hashes} names no task of {domain}/{split}; nothing was compared", err=True)
    typer.echo(f"matched {report.matched}/{report.compared}")
    if not report.ok:
        raise typer.Exit(1)


def _register_extra() -> None:
    try:
        from diffprompt.cli import tau_run
    except ImportError:  # the runner module is optional while it is being built
        return
    tau_run.register(app)


_register_extra()
