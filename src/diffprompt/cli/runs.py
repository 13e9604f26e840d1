"""``diffprompt runs list|show``: optimizer run records."""

from __future__ import annotations

from typing import Any

import typer

from diffprompt.cli import common
from diffprompt.optimize.record import RunRecord

app = typer.Typer(help="Optimizer runs: list and inspect their records.", no_args_is_help=True)


def _row(rec: RunRecord) -> dict[str, Any]:
    st = rec.decision.stats if rec.decision is not None else {}
    return {
        "run_id": rec.run_id,
        "slot": rec.slot,
        "status": rec.status,
        "editor": rec.editor,
        "decision": rec.decision.kind if rec.decision is not None else None,
        "p_value": st.get("p_value"),
        "incumbent": st.get("incumbent_mean"),
        "candidate": st.get("candidate_mean"),
        "promoted_version": rec.promoted_version,
        "started_at": rec.started_at,
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
        records = [RunRecord.from_json(r) for r in store.list_runs(slot)]
        rows = [_row(r) for r in records if not r.status.startswith("job")][:limit]
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
    run = RunRecord.from_json(rec)
    c.print(f"{run_id} slot={run.slot} status={run.status} editor={run.editor}", markup=False, highlight=False)
    d = run.decision
    c.print(f"decision: {d.kind if d is not None else '-'}", highlight=False)
    for reason in d.reasons if d is not None else ():
        c.print(f"  {reason}", highlight=False, markup=False)
    if run.cases is not None:
        cu = run.cases
        c.print(
            f"cases: {len(cu.holdout)} held out for the gate, {len(cu.screen)} screening; "
            f"the blamer read {len(cu.blamer_trace_ids)} traces, the editor {len(cu.editor_trace_ids)}",
            highlight=False,
        )
    c.print("blamed spans:")
    for row in run.attribution[:8]:
        why = next((str(e["reason"]) for e in row.evidence if e.get("reason")), "")
        c.print(
            f"  {row.span_id} {row.score:.3f}{' insert' if row.insert else ''} {why[:90]}",
            highlight=False,
            markup=False,
        )
    if run.finalist is not None:
        c.print(f"finalist diff ({run.finalist.label}):")
        c.print(run.finalist.diff, highlight=False, markup=False)
    cost = run.cost
    if cost is not None:
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in run.timings.items())
        c.print(
            f"cost: {cost.target_calls} target calls, {cost.tokens} tokens, ${cost.cost_usd:.4f}; timings {timings}",
            highlight=False,
        )
