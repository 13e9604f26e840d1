"""``diffprompt tau ...``: τ-bench environments (gold checks here; ``run`` comes from ``tau_run``)."""

from __future__ import annotations

import typer

app = typer.Typer(help="τ-bench airline/retail environments: gold checks, runs.", no_args_is_help=True)


def _register_extra() -> None:
    try:
        from diffprompt.cli import tau_run
    except ImportError:  # the runner module is optional while it is being built
        return
    tau_run.register(app)


_register_extra()
