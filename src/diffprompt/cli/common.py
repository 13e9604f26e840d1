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
err_console = Console(stderr=True)


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
