"""``diffprompt canary watch``: the live canary test — decide, act through the registry, show why."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from diffprompt.cli import common

app = typer.Typer(help="Guarded canaries: the live sequential test that promotes or rolls back.", no_args_is_help=True)


def load_rollout_config(path: Path | None, **flags: Any) -> Any:
    """``RolloutConfig`` from a TOML/JSON file (``[optimize.rollout]``, ``[rollout]`` or top level), flags on top."""
    from diffprompt.errors import ConfigError
    from diffprompt.rollout.config import RolloutConfig

    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read --config {path}: {exc.strerror or exc}") from None
        try:
            if path.suffix == ".toml":
                import tomllib

                doc: dict[str, Any] = tomllib.loads(raw)
            else:
                doc = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"--config {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
        if isinstance(doc.get("optimize"), dict) and isinstance(doc["optimize"].get("rollout"), dict):
            data = dict(doc["optimize"]["rollout"])
        elif isinstance(doc.get("rollout"), dict):
            data = dict(doc["rollout"])
        else:
            data = dict(doc)
    data.update({k: v for k, v in flags.items() if v is not None})
    return RolloutConfig.from_dict(data)


def _iv(iv: dict[str, Any], digits: int = 3) -> str:
    if iv["mean"] is None:
        return "—"
    lo = "-inf" if iv["lo"] is None else f"{iv['lo']:.{digits}f}"
    hi = "inf" if iv["hi"] is None else f"{iv['hi']:.{digits}f}"
    return f"{iv['mean']:.{digits}f} [{lo}, {hi}]"


def show(watch: dict[str, Any]) -> None:
    """Human output of one evaluation: decision, arms with intervals, threads, each guardrail."""
    from rich.table import Table

    out = common.console
    st = watch["stats"]
    r = st["reward"]
    style = {"promote": "green", "rollback": "red", "expire": "yellow"}.get(watch["decision"], "cyan")
    done = f" → {watch['action']} (audit #{watch['audit_id']})" if watch["action"] else ""
    out.print(f"{watch['slot']}: [bold {style}]{watch['decision']}[/]{done}")
    for reason in watch["reasons"]:
        out.print(f"  {reason}", markup=False, highlight=False)
    conf = f"{100 * (1 - r['alpha'] / 2):.1f}%"
    t = Table("arm", "version", "threads", "scored", f"reward (always-valid {conf})")
    t.add_row("canary", watch["canary_version_id"], str(st["threads_canary"]), str(r["canary"]["n"]), _iv(r["canary"]))
    t.add_row(
        "incumbent",
        watch["incumbent_version_id"],
        str(st["threads_incumbent"]),
        str(r["incumbent"]["n"]),
        _iv(r["incumbent"]),
    )
    out.print(t)
    diff = "—" if r["estimate"] is None else f"{r['estimate']:+.3f}"
    lo = "-inf" if r["lo"] is None else f"{r['lo']:+.3f}"
    hi = "inf" if r["hi"] is None else f"{r['hi']:+.3f}"
    out.print(f"difference canary − incumbent: {diff} [{lo}, {hi}] (always-valid {100 * (1 - r['alpha']):.0f}%)")
    g = Table("guardrail", "canary", "incumbent", "tolerance", "excess lower bound", "status")
    for row in st["guardrails"]:
        tol = f"+{100 * row['tolerance']:.0f}%" if row["relative"] else f"+{row['tolerance']:g}"
        excess = "—" if row["lo"] is None else f"{row['lo']:+.4g}"
        g.add_row(
            row["metric"],
            _iv(row["canary"], 4),
            _iv(row["incumbent"], 4),
            tol,
            excess,
            "[red]breach[/]" if row["breach"] else "ok",
        )
    out.print(g)


@app.command("watch")
def watch_cmd(
    ctx: typer.Context,
    slot: str = typer.Argument(..., help="The slot whose canary to watch."),
    once: bool = typer.Option(False, "--once", help="One evaluation, then exit."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per evaluation with the statistics."),
    interval: float = typer.Option(60.0, "--interval", min=0.01, help="Seconds between evaluations."),
    config: Path | None = typer.Option(None, "--config", help="TOML/JSON with [optimize.rollout] settings."),
    alpha: float | None = typer.Option(None, "--alpha", help="Error rate of the reward test."),
    min_threads: int | None = typer.Option(None, "--min-threads", help="Scored threads per arm first."),
    max_threads: int | None = typer.Option(None, "--max-threads", help="Canary threads before it ends."),
    max_hours: float | None = typer.Option(None, "--max-hours", help="Hours before an undecided canary ends."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and show, but do not move the registry."),
) -> None:
    """Evaluate the slot's canary: promote on a significant win, roll back on a loss or breach, else wait.

    Without --once it keeps watching every --interval seconds until the canary is decided.
    """
    from diffprompt.rollout.monitor import watch_once

    cfg = load_rollout_config(
        config, alpha=alpha, min_threads=min_threads, max_threads=max_threads, max_hours=max_hours
    )
    store = common.open_store(ctx)
    try:
        while True:
            w = watch_once(store, slot, cfg, act=not dry_run).as_dict()
            if as_json:
                common.print_json(w)
            else:
                show(w)
            if once or w["decision"] != "wait":
                break
            time.sleep(interval)
    finally:
        store.close()
