"""``diffprompt feedback add``: attach a reward, rating, judge score or comment to a trace."""

from __future__ import annotations

import enum
import math

import typer

from diffprompt.cli import common


class Kind(enum.StrEnum):
    reward = "reward"
    rating = "rating"
    judge = "judge"
    comment = "comment"


app = typer.Typer(help="Feedback on recorded traces.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    trace: str | None = typer.Option(None, "--trace", help="Trace id."),
    thread: str | None = typer.Option(None, "--thread", help="Thread id (its most recent trace)."),
    kind: Kind = typer.Option(Kind.reward, "--kind", help="What the value means."),
    value: float | None = typer.Option(None, "--value", help="In [0, 1] (or in [0, --scale])."),
    scale: float = typer.Option(1.0, "--scale", help="Divide --value by this (e.g. 5 for stars)."),
    text: str = typer.Option("", "--text", help="Comment text (required for --kind comment)."),
    source: str = typer.Option("cli", "--source"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Record feedback; it may arrive long after the episode. Validated; nothing written on error."""
    from diffprompt.errors import ConfigError
    from diffprompt.types import Feedback

    if (trace is None) == (thread is None):
        raise ConfigError("give exactly one of --trace or --thread")
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"--scale must be a finite number > 0 (e.g. 5 for stars), got {scale:g}")
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"--value must be a finite number, got {value:g}")
    store = common.open_store(ctx)
    try:
        trace_id = trace if trace is not None else store.trace_for_thread(thread).id
        v = None if value is None else value / scale
        stored = store.add_feedback(
            [
                Feedback(
                    trace_id=trace_id,
                    kind=kind.value,
                    value=v,
                    text=text,  # type: ignore[arg-type]
                    source=source,
                )
            ]
        )[0]
    finally:
        store.close()
    if as_json:
        common.print_json(common.jsonable(stored))
    else:
        value_text = "" if stored.value is None else f"={stored.value:.4g}"
        common.console.print(
            f"feedback #{stored.id}: {kind.value}{value_text} on {trace_id}", highlight=False, markup=False
        )
