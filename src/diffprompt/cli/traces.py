"""``diffprompt traces ...``: list, show, stats, import and export recorded episodes."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Any

import typer

from diffprompt.cli import common

app = typer.Typer(help="Recorded traces: list, show, stats, import, export.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


class ImportFormat(enum.StrEnum):
    tau_historical = "tau-historical"


def _summary(t: Any, reward: float | None) -> dict[str, Any]:
    return {
        "id": t.id,
        "slot": t.slot,
        "version_id": t.version_id,
        "thread_id": t.thread_id,
        "started_at": t.started_at.isoformat(),
        "messages": len(t.messages),
        "model_calls": t.model_calls,
        "tool_calls": t.tool_calls,
        "latency_ms": t.latency_ms,
        "reward": reward,
        "error": t.error,
        "replay_key": t.replay_key,
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, "--slot", help="Only this slot."),
    version: str | None = typer.Option(None, "--version", help="Only traces served with this version."),
    limit: int = typer.Option(20, "--limit", min=1, help="The newest N traces."),
    as_json: bool = JSON,
) -> None:
    """The newest traces (oldest first), with their reward if any."""
    from rich.table import Table

    from diffprompt.store._logic import latest_rewards

    store = common.open_store(ctx)
    try:
        traces = store.list_traces(slot, version_id=version, limit=limit)
        rewards = latest_rewards(store.feedback_for([t.id for t in traces]))
    finally:
        store.close()
    rows = [_summary(t, rewards.get(t.id)) for t in traces]
    if as_json:
        common.print_json(rows)
        return
    table = Table("id", "slot", "version", "started", "msgs", "tools", "reward", "error")
    for col in table.columns[:3]:  # ids are never cut (issue 13)
        col.no_wrap, col.overflow = True, "fold"
    for r in rows:
        table.add_row(
            r["id"],
            r["slot"],
            r["version_id"] or "",
            r["started_at"][:19],
            str(r["messages"]),
            str(r["tool_calls"]),
            "" if r["reward"] is None else f"{r['reward']:g}",
            r["error"] or "",
        )
    common.print_table(table)


@app.command("show")
def show(ctx: typer.Context, trace_id: str, as_json: bool = JSON) -> None:
    """One trace: its messages, tool calls and results, and its feedback."""
    store = common.open_store(ctx)
    try:
        t = store.get_trace(trace_id)
        fb = store.feedback_for([trace_id])
    finally:
        store.close()
    if as_json:
        common.print_json({**common.jsonable(t), "feedback": common.jsonable(fb)})
        return
    common.console.print(
        f"[bold]{t.id}[/] slot={t.slot} version={t.version_id} thread={t.thread_id}", highlight=False
    )
    for m in t.messages:
        body = m.get("content") or ""
        if m.get("tool_calls"):
            body += " ".join(
                f"→ {c['function']['name']}({c['function'].get('arguments', '')})" for c in m["tool_calls"]
            )
        common.console.print(f"[{m.get('role')}] {body}", highlight=False, markup=False)
    for f in fb:
        common.console.print(
            f"feedback {f.kind}={f.value} {f.text} ({f.source})", highlight=False, markup=False
        )


@app.command("stats")
def stats(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, "--slot", help="Only this slot."),
    as_json: bool = JSON,
) -> None:
    """Counts and mean reward (``--json``: one object with traces, feedback, mean_reward)."""
    store = common.open_store(ctx)
    try:
        out = store.stats(slot)
    finally:
        store.close()
    if as_json:
        common.print_json(out)
        return
    for k, v in out.items():
        common.console.print(f"{k:<18} {v}", highlight=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="File of recorded runs."),
    slot: str = typer.Option(..., "--slot", help="Slot to import into (created if missing)."),
    fmt: ImportFormat = typer.Option(ImportFormat.tau_historical, "--format", help="Input format."),
    domain: str = typer.Option("airline", help="τ domain, used in replay keys."),
    split: str = typer.Option("test", help="τ task split, used in replay keys."),
    as_json: bool = JSON,
) -> None:
    """Import recorded runs with their rewards. The whole file is validated before anything is written."""
    from diffprompt.store.importers import import_tau_historical

    del fmt  # one format today; the option keeps the command stable as formats are added
    store = common.open_store(ctx)
    try:
        rep = import_tau_historical(store, path, slot, domain=domain, split=split, actor="cli")
    finally:
        store.close()
    if as_json:
        common.print_json(common.jsonable(rep))
    else:
        common.console.print(
            f"imported {rep.traces_added} traces ({rep.traces_skipped} already present), "
            f"{rep.feedback_added} rewards into {slot}; mean reward {rep.mean_reward:.3f}"
        )


@app.command("export")
def export(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, "--slot", help="Only this slot."),
    out: str = typer.Option("-", "--out", "-o", help="JSONL file to write (- for stdout)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The newest N traces."),
) -> None:
    """Write traces with their feedback as JSON lines (one trace per line)."""
    store = common.open_store(ctx)
    try:
        win = store.window(slot, limit=limit) if slot else None
        if win is None:
            traces = store.list_traces(None, limit=limit)
            by: dict[str, list[Any]] = {}
            for f in store.feedback_for([t.id for t in traces]):
                by.setdefault(f.trace_id, []).append(f)
            items = [(t, by.get(t.id, [])) for t in traces]
        else:
            items = [(w.trace, list(w.feedback)) for w in win]
    finally:
        store.close()
    lines = (
        json.dumps({**common.jsonable(t), "feedback": common.jsonable(fb)}, ensure_ascii=False) + "\n"
        for t, fb in items
    )
    if out == "-":
        sys.stdout.writelines(lines)
        return
    tmp = Path(out + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:  # write then rename: no half-written export
        fh.writelines(lines)
    tmp.replace(out)
    common.err_console.print(f"wrote {len(items)} traces to {out}")
