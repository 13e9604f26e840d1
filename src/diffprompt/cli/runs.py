"""``diffprompt runs list|show``: optimizer run records."""

from __future__ import annotations

from typing import Any

import typer

from diffprompt.cli import common

app = typer.Typer(help="Optimizer runs: list and inspect their records.", no_args_is_help=True)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    d = r.get("decision") or {}
    st = d.get("stats") or {}
    return {
        "run_id": r.get("run_id"),
        "slot": r.get("slot"),
        "status": r.get("status"),
        "editor": r.get("editor"),
        "decision": d.get("kind"),
        "p_value": st.get("p_value"),
        "incumbent": st.get("incumbent_mean"),
        "candidate": st.get("candidate_mean"),
        "promoted_version": r.get("promoted_version"),
        "started_at": r.get("started_at"),
    }


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, "--slot", help="Only this slot."),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recent runs, newest first."""
    from diffprompt.heartbeat import abandon_expired

    store = common.open_store(ctx)
    try:
        abandon_expired(store, by="cli:runs-list", slot=slot)  # a dead run must not stay "running" (issue 13.8)
        rows = [_row(r) for r in store.list_runs(slot) if not str(r.get("status", "")).startswith("job")][
            :limit
        ]
    finally:
        store.close()
    if as_json:
        common.print_json(rows)
        return
    from rich.table import Table

    t = Table("run", "slot", "status", "editor", "p", "incumbent", "candidate", "promoted")
    for col in (t.columns[0], t.columns[1], t.columns[-1]):  # ids are never cut (issue 13)
        col.no_wrap, col.overflow = True, "fold"

    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.3g}"

    for r in rows:
        t.add_row(
            str(r["run_id"]),
            str(r["slot"]),
            str(r["status"]),
            str(r["editor"] or ""),
            fmt(r["p_value"]),
            fmt(r["incumbent"]),
            fmt(r["candidate"]),
            str(r["promoted_version"] or ""),
        )
    common.print_table(t)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id (run_...)."),
    as_json: bool = typer.Option(False, "--json", help="The whole record as JSON."),
) -> None:
    """One run: decision, blamed spans, candidates and their diffs, replay scores, cost."""
    store = common.open_store(ctx)
    try:
        rec = store.get_run(run_id)
    finally:
        store.close()
    if as_json:
        common.print_json(rec)
        return
    c = common.console
    r = _row(rec)
    c.print(f"[bold]{run_id}[/] slot={r['slot']} status={r['status']} editor={r['editor']}")
    d = rec.get("decision") or {}
    c.print(f"decision: {d.get('kind')}", highlight=False)
    for reason in d.get("reasons", []):
        c.print(f"  {reason}", highlight=False)
    c.print("blamed spans:")
    for row in (rec.get("attribution") or [])[:8]:
        why = next((e.get("reason") for e in row["evidence"] if e.get("reason")), "")
        c.print(
            f"  {row['span_id']} {row['score']:.3f}{' insert' if row['insert'] else ''} {why[:90]}",
            highlight=False,
        )
    fin = rec.get("finalist")
    if fin:
        c.print("finalist diff:")
        c.print(fin.get("diff", ""), highlight=False, markup=False)
    cost = rec.get("cost") or {}
    c.print(
        f"cost: {cost.get('target_calls')} target calls, "
        f"{cost.get('input_tokens', 0) + cost.get('output_tokens', 0)} tokens, "
        f"${cost.get('cost_usd', 0):.4f}; "
        f"timings {rec.get('timings')}",
        highlight=False,
    )
