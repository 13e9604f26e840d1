"""``diffprompt db ...``: schema migrations."""

from __future__ import annotations

import typer

from diffprompt.cli import common

app = typer.Typer(help="Database schema: upgrade, current revision.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Option("head", help="Target revision (default: the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create or upgrade the schema (safe to run any number of times)."""
    from diffprompt.store import migrate
    from diffprompt.store.engine import make_engine, safe_url

    url = common.state(ctx).settings().resolved_db_url
    engine = make_engine(url)
    try:
        before = migrate.current_revision(engine)
        after = migrate.upgrade(engine, revision)
    finally:
        engine.dispose()
    if as_json:
        common.print_json({"db": safe_url(url), "from": before, "to": after})
    else:
        common.console.print(f"{safe_url(url)}: {before or '(empty)'} → {after}")


@app.command("current")
def current(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the schema revision of the database and the newest one this version knows."""
    from diffprompt.store import migrate
    from diffprompt.store.engine import make_engine, safe_url

    url = common.state(ctx).settings().resolved_db_url
    engine = make_engine(url)
    try:
        cur = migrate.current_revision(engine)
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if as_json:
        common.print_json({"db": safe_url(url), "current": cur, "head": head, "up_to_date": cur == head})
    else:
        common.console.print(f"{safe_url(url)}: {cur or '(empty)'} (head {head})")
