"""``diffprompt prompts ...``: the prompt registry (slots, versions, promote/rollback/canary, protect)."""

from __future__ import annotations

from typing import Any

import typer

from diffprompt.cli import common

app = typer.Typer(help="Prompt registry: slots, versions, promotion, rollback, canary.", no_args_is_help=True)

ACTOR = typer.Option("cli", "--actor", help="Who makes this change (recorded in the audit log).")
REASON = typer.Option("", "--reason", help="Why (recorded in the audit log).")
JSON = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def read_prompt(path: str) -> str:
    """Read a prompt file (``-`` for stdin); ``ConfigError`` if unreadable, binary or not UTF-8."""
    return common.read_text_file(path, "prompt file")


def resolve_version(store: Any, ref: str) -> Any:
    """A version id, or a slot name meaning that slot's active version."""
    from diffprompt.errors import NotFoundError

    if ref.startswith("pv_"):
        return store.get_version(ref)
    try:
        return store.active_version(ref)
    except NotFoundError:
        raise NotFoundError(
            f"{ref!r} is neither a version id (pv_...) nor a slot; see `diffprompt prompts list`"
        ) from None


def _version_row(v: Any, state: Any) -> dict[str, Any]:
    marks = []
    if v.id == state.active_version_id:
        marks.append("active")
    if v.id == state.canary_version_id:
        marks.append(f"canary {state.canary_share:.0%}")
    return {
        "id": v.id,
        "slot": v.slot,
        "origin": v.origin,
        "parent_id": v.parent_id,
        "spans": len(v.spans),
        "chars": len(v.text),
        "created_at": v.created_at.isoformat(),
        "note": v.note,
        "status": ", ".join(marks),
    }


@app.command("add")
def add(
    ctx: typer.Context,
    slot: str = typer.Argument(..., help="Slot name (created with this text as seed if new)."),
    file: str = typer.Argument(..., help="Prompt text file, or - for stdin."),
    parent: str | None = typer.Option(None, help="Parent version id (default: the active version)."),
    note: str = typer.Option("", help="A note stored with the version."),
    promote: bool = typer.Option(False, "--promote", help="Activate the new version right away."),
    actor: str = ACTOR,
    as_json: bool = JSON,
) -> None:
    """Add a version to a slot (or create the slot). Versions are immutable; same text = same version."""
    from diffprompt.errors import NotFoundError

    text = read_prompt(file)
    store = common.open_store(ctx)
    try:
        try:
            active = store.active_version(slot)
        except NotFoundError:
            v, created = store.create_slot(slot, text, actor=actor), True
        else:
            created = False
            v = store.add_version(slot, text, parent_id=parent or active.id, origin="manual", note=note)
            if promote:
                store.promote(slot, v.id, actor=actor, reason=note or "promoted on add")
        row = _version_row(v, store.slot_state(slot))
    finally:
        store.close()
    if as_json:
        common.print_json({**row, "created_slot": created})
    else:
        common.console.print(
            f"{'created slot ' + slot + ' with' if created else 'added'} version {v.id} "
            f"({row['spans']} spans){' [active]' if 'active' in row['status'] else ''}",
            markup=False,
            highlight=False,
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    slot: str | None = typer.Argument(None, help="List this slot's versions (default: list slots)."),
    as_json: bool = JSON,
) -> None:
    """List slots, or the versions of one slot (oldest first)."""
    store = common.open_store(ctx)
    try:
        if slot is None:
            rows = [common.jsonable(s) for s in store.list_slots()]
            cols = ["slot", "active_version_id", "canary_version_id", "canary_share", "revision"]
        else:
            state = store.slot_state(slot)
            rows = [_version_row(v, state) for v in store.list_versions(slot)]
            cols = ["id", "origin", "parent_id", "spans", "created_at", "status"]
    finally:
        store.close()
    if as_json:
        common.print_json(rows)
        return
    ids = {"slot", "active_version_id", "canary_version_id", "id", "parent_id"}
    common.print_table(common.table(cols, ([r[c] for c in cols] for r in rows), ids=ids))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="A slot (its active version) or a version id."),
    spans: bool = typer.Option(False, "--spans", help="List spans with their ids."),
    as_json: bool = JSON,
) -> None:
    """Show a version's text (and spans)."""
    store = common.open_store(ctx)
    try:
        v = resolve_version(store, ref)
        state = store.slot_state(v.slot)
    finally:
        store.close()
    if as_json:
        common.print_json(
            {
                **common.jsonable(v),
                "status": _version_row(v, state)["status"],
                "protected_span_ids": list(state.protected_span_ids),
            }
        )
        return
    # the header goes to stderr, so `prompts show SLOT > file` writes exactly the prompt text
    common.err_console.print(
        f"{v.id} slot={v.slot} origin={v.origin} parent={v.parent_id} {_version_row(v, state)['status']}",
        highlight=False,
        markup=False,
    )
    if spans:
        common.write_plain(
            "".join(
                f"{s.id:<20} {s.kind:<8} {s.text}{' (protected)' if s.id in state.protected_span_ids else ''}\n"
                for s in v.spans
            )
        )
    else:
        common.write_plain(v.text)


@app.command("diff")
def diff(
    ctx: typer.Context,
    old: str = typer.Argument(..., help="Version id or slot (active version)."),
    new: str = typer.Argument(..., help="Version id or slot (active version)."),
    context: bool = typer.Option(False, "--context", help="Also print unchanged spans."),
    as_json: bool = JSON,
) -> None:
    """Span-level diff between two versions."""
    from diffprompt.spans import diff_spans, render_diff

    store = common.open_store(ctx)
    try:
        a, b = resolve_version(store, old), resolve_version(store, new)
    finally:
        store.close()
    if as_json:
        common.print_json(
            {
                "old": a.id,
                "new": b.id,
                "changes": [
                    {
                        "kind": c.kind,
                        "old_id": c.old.id if c.old else None,
                        "new_id": c.new.id if c.new else None,
                        "old": c.old.text if c.old else None,
                        "new": c.new.text if c.new else None,
                    }
                    for c in diff_spans(a.spans, b.spans)
                    if context or c.kind != "unchanged"
                ],
            }
        )
        return
    out = render_diff(a.spans, b.spans, context=context)
    common.write_plain(out or "(no span changes)\n")


def _print_audit(entry: Any, as_json: bool) -> None:
    if as_json:
        common.print_json(common.jsonable(entry))
    else:
        common.console.print(
            f"{entry.action} {entry.slot}: {entry.from_version_id} → {entry.to_version_id} "
            f"by {entry.actor} (audit #{entry.id})",
            highlight=False,
            markup=False,  # actors and reasons are user text: "[/x]" prints as written
        )


@app.command("promote")
def promote(
    ctx: typer.Context,
    slot: str,
    version_id: str,
    actor: str = ACTOR,
    reason: str = REASON,
    as_json: bool = JSON,
) -> None:
    """Make a version active (clears any canary). Idempotent."""
    store = common.open_store(ctx)
    try:
        entry = store.promote(slot, version_id, actor=actor, reason=reason)
    finally:
        store.close()
    _print_audit(entry, as_json)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    slot: str,
    to: str | None = typer.Option(None, "--to", help="Version id (default: the previously active one)."),
    actor: str = ACTOR,
    reason: str = REASON,
    as_json: bool = JSON,
) -> None:
    """Activate an earlier version of the slot."""
    store = common.open_store(ctx)
    try:
        entry = store.rollback(slot, to, actor=actor, reason=reason)
    finally:
        store.close()
    _print_audit(entry, as_json)


@app.command("canary")
def canary(
    ctx: typer.Context,
    slot: str,
    version_id: str | None = typer.Argument(None, help="Version to serve to a share of new threads."),
    share: float = typer.Option(0.1, "--share", help="Share of new threads, strictly between 0 and 1."),
    clear: bool = typer.Option(False, "--clear", help="Stop the canary."),
    actor: str = ACTOR,
    reason: str = REASON,
    as_json: bool = JSON,
) -> None:
    """Start (or change) a canary, or --clear it."""
    from diffprompt.errors import ConfigError

    if clear == (version_id is not None):
        raise ConfigError("give either a VERSION_ID to canary or --clear")
    store = common.open_store(ctx)
    try:
        entry = store.set_canary(slot, version_id, share, actor=actor, reason=reason)
    finally:
        store.close()
    _print_audit(entry, as_json)


@app.command("protect")
def protect(
    ctx: typer.Context,
    slot: str,
    span_ids: list[str] = typer.Argument(None, help="Span ids of the active version (see `prompts show --spans`)."),
    clear: bool = typer.Option(False, "--clear", help="Remove all protections."),
    actor: str = ACTOR,
    reason: str = REASON,
    as_json: bool = JSON,
) -> None:
    """Declare the spans the optimizer must never edit (replaces the current set)."""
    from diffprompt.errors import ConfigError

    ids = list(span_ids or [])
    if not ids and not clear:
        raise ConfigError("name at least one SPAN_ID, or pass --clear")
    store = common.open_store(ctx)
    try:
        store.set_protected_spans(slot, [] if clear else ids, actor=actor, reason=reason)
        state = store.slot_state(slot)
    finally:
        store.close()
    if as_json:
        common.print_json({"slot": slot, "protected_span_ids": list(state.protected_span_ids)})
    else:
        common.console.print(f"{slot}: {len(state.protected_span_ids)} protected span(s)", markup=False)


@app.command("audit")
def audit(ctx: typer.Context, slot: str, as_json: bool = JSON) -> None:
    """The slot's audit trail (oldest first)."""
    store = common.open_store(ctx)
    try:
        log = store.audit_log(slot)
    finally:
        store.close()
    if as_json:
        common.print_json(common.jsonable(log))
        return
    rows = (
        (
            e.id,
            e.created_at.isoformat(timespec="seconds"),
            e.action,
            e.from_version_id,
            e.to_version_id,
            e.actor,
            e.reason,
        )
        for e in log
    )
    cols = ("id", "at", "action", "from", "to", "actor", "reason")
    common.print_table(common.table(cols, rows, ids={"from", "to", "at"}))
