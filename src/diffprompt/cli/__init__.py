"""The ``diffprompt`` command line: thin, each group in its own module (parse, build, call one function)."""

from __future__ import annotations

import typer

from diffprompt.cli import common

app = typer.Typer(
    name="diffprompt",
    help="Self-improving system prompts: record, attribute, denoise, replay, gate, promote.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is literal: "[optimize]" must not be read as markup
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="Database URL (default: SQLite under DIFFPROMPT_HOME)."),
    home: str | None = typer.Option(
        None, "--home", help="Data directory (default: $DIFFPROMPT_HOME or ~/.diffprompt)."
    ),
) -> None:
    ctx.obj = common.CliState(db_url=db, home=home)


def _register() -> None:
    # Each group module exposes `app` (a Typer) or `register(app)`; imported here, lazily heavy inside.
    from diffprompt.cli import groups

    groups.register_all(app)


def main() -> None:
    """Console entry point: errors from diffprompt become one clear line and a non-zero exit."""
    _register()
    common.run_app(app)
