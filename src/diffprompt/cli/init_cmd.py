"""``diffprompt init``: create the data directory and database, optionally a first slot."""

from __future__ import annotations

from pathlib import Path

import typer

from diffprompt.cli import common


def register(root: typer.Typer) -> None:
    root.command("init")(init)


def init(
    ctx: typer.Context,
    slot: str | None = typer.Option(None, help="Also create this slot ..."),
    prompt: Path | None = typer.Option(None, help="... seeded with this system-prompt file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create the home directory and an up-to-date database (idempotent)."""
    from diffprompt.errors import ConfigError
    from diffprompt.store import migrate
    from diffprompt.store.engine import safe_url

    if (slot is None) != (prompt is None):
        raise ConfigError("give --slot and --prompt together (or neither)")
    settings = common.state(ctx).settings()
    seed_text = common.read_text_file(prompt, "prompt file") if prompt else None  # read before writing
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the home directory {settings.home}: {exc.strerror or exc}") from None
    store = common.open_store(ctx)
    try:
        created = None
        if slot and seed_text is not None:
            created = store.create_slot(slot, seed_text, actor="cli")
        engine = getattr(store, "engine", None)
        revision = migrate.current_revision(engine) if engine is not None else None
    finally:
        store.close()
    out = {
        "home": str(settings.home),
        "db": safe_url(settings.resolved_db_url),
        "revision": revision,
        "slot": slot,
        "version_id": created.id if created else None,
    }
    if as_json:
        common.print_json(out)
        return
    common.console.print(f"home      {out['home']}\ndatabase  {out['db']} (revision {revision})", markup=False)
    if created:
        common.console.print(f"slot      {slot} → {created.id} ({len(created.spans)} spans)", markup=False)
