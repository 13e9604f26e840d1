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
    openai_jsonl = "openai-jsonl"


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
def show(
    ctx: typer.Context,
    trace_id: str,
    full: bool = typer.Option(False, "--full", help="Print every message whole (default: cut at --width)."),
    width: int = typer.Option(2000, "--width", min=40, help="Characters shown per message without --full."),
    as_json: bool = JSON,
) -> None:
    """One trace: its messages, tool calls and results, and its feedback.

    Long messages are cut at ``--width`` characters (saying how many were left out); ``--full`` or
    ``--json`` give everything. Output time is linear in the trace's size.
    """
    store = common.open_store(ctx)
    try:
        t = store.get_trace(trace_id)
        fb = store.feedback_for([trace_id])
    finally:
        store.close()
    if as_json:
        common.print_json({**common.jsonable(t), "feedback": common.jsonable(fb)})
        return
    # plain writes, not rich rendering: rich wraps a line in time quadratic in its length
    out = [f"{t.id} slot={t.slot} version={t.version_id} thread={t.thread_id}\n"]
    for m in t.messages:
        body = _message_text(m)
        if not full and len(body) > width:
            body = f"{body[:width]} … [{len(body) - width:,} more characters; --full shows all]"
        out.append(f"[{m.get('role')}] {body}\n")
    for f in fb:
        value = "" if f.value is None else f"={number(f.value)}"
        out.append(" ".join(p for p in (f"feedback {f.kind}{value}", f.text, f"({f.source})") if p) + "\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


def _message_text(m: Any) -> str:
    content = m.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    calls = m.get("tool_calls") or ()
    if calls:
        shown = []
        for c in calls:
            fn = c.get("function", {}) if isinstance(c, dict) else {}
            shown.append(f"→ {fn.get('name', '?')}({fn.get('arguments', '')})")
        content = (str(content) + " " if content else "") + " ".join(shown)
    return str(content)


def number(v: float) -> str:
    """A value for people: at most 4 significant digits (never a 17-digit float)."""
    return f"{v:.4g}"


def stats_lines(out: dict[str, Any]) -> list[str]:
    """``traces stats`` for people: counts, a rounded mean, feedback per kind as ``kind n``."""
    lines = []
    for k, v in out.items():
        if isinstance(v, dict):
            shown = ", ".join(f"{kind} {n}" for kind, n in v.items()) or "none"
        elif isinstance(v, float):
            shown = number(v)
        else:
            shown = "" if v is None else str(v)
        lines.append(f"{k:<18} {shown}".rstrip())
    return lines


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
    common.write_plain("\n".join(stats_lines(out)) + "\n")


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="File of recorded runs."),
    slot: str = typer.Option(..., "--slot", help="Slot to import into (created if missing)."),
    fmt: ImportFormat = typer.Option(
        ImportFormat.tau_historical,
        "--format",
        help="tau-historical: a JSON list of τ-bench runs; openai-jsonl: one chat conversation per line.",
    ),
    domain: str = typer.Option("airline", help="τ domain, used in replay keys (tau-historical)."),
    split: str = typer.Option("test", help="τ task split, used in replay keys (tau-historical)."),
    as_json: bool = JSON,
) -> None:
    """Import recorded runs with their feedback. The whole file is validated before anything is written.

    Idempotent per slot: re-importing adds nothing; the same file into another slot imports there too.
    """
    store = common.open_store(ctx)
    try:
        if fmt is ImportFormat.openai_jsonl:
            from diffprompt.store.import_openai import import_openai_jsonl

            rep = import_openai_jsonl(store, path, slot, actor="cli")
        else:
            from diffprompt.store.importers import import_tau_historical

            rep = import_tau_historical(store, path, slot, domain=domain, split=split, actor="cli")
    finally:
        store.close()
    if as_json:
        common.print_json(common.jsonable(rep))
        return
    mean = "no rewards" if rep.mean_reward is None else f"mean reward {rep.mean_reward:.3f}"
    repeated = f", {rep.records_repeated} repeated lines merged" if rep.records_repeated else ""
    common.console.print(
        f"imported {rep.traces_added} traces ({rep.traces_skipped} already present{repeated}), "
        f"{rep.feedback_added} feedback into {slot}; {mean}",
        highlight=False,
        markup=False,
    )


@app.command("export")
def export(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, "--slot", help="Only this slot."),
    out: str = typer.Option("-", "--out", "-o", help="JSONL file to write (- for stdout)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="The newest N traces."),
) -> None:
    """Write traces with their feedback as JSON lines (one trace per line)."""
    if out != "-":
        common.writable_path(out, "--out")  # fail before any work
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
    common.write_text_file(out, lines, "--out")  # write then rename: no half-written export
    common.err_console.print(f"wrote {len(items)} traces to {out}")
