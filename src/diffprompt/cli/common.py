"""Shared CLI plumbing: the state from global options, store construction, JSON/rich output, errors."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console

from diffprompt.errors import DiffpromptError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # soft_wrap: an error stays one line


@dataclass
class CliState:
    """Global options given before the sub-command."""

    db_url: str | None = None
    home: str | None = None

    def settings(self) -> Any:
        from diffprompt.settings import Settings

        kwargs: dict[str, Any] = {}
        if self.db_url:
            kwargs["db_url"] = self.db_url
        if self.home:
            kwargs["home"] = self.home
        return Settings(**kwargs)


def state(ctx: typer.Context) -> CliState:
    """The ``CliState`` of the root command (works from any nesting depth)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, CliState) else CliState()


def open_store(ctx: typer.Context, *, upgrade: bool = True) -> Any:
    """The ``Store`` for this invocation: ``--db`` / ``--home`` / ``DIFFPROMPT_*`` settings.

    The schema is migrated to head first (a fresh database is created; an older one upgraded), so
    every command works on a brand-new home directory. Close it with ``store.close()``.
    """
    from diffprompt.store import open_store as _open

    return _open(state(ctx).settings().resolved_db_url, upgrade=upgrade)


def jsonable(obj: Any) -> Any:
    """Value objects (frozen dataclasses), tuples, mappings and datetimes as plain JSON data."""
    import dataclasses
    from collections.abc import Mapping
    from datetime import datetime

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def print_json(obj: Any) -> None:
    """One JSON object on one line on stdout (machine-readable output of ``--json``)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def run_app(app: typer.Typer) -> None:
    """Run the Typer app; a ``DiffpromptError`` prints ``error: <message>`` and exits 1."""
    try:
        app(standalone_mode=True)
    except DiffpromptError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
