"""``diffprompt sim ...``: the simulated target model, served over an OpenAI-compatible HTTP API."""

from __future__ import annotations

import typer

from diffprompt.cli import common

app = typer.Typer(help="The simulated τ target model (offline runs and tests).", no_args_is_help=True)


@app.command("serve")
def serve(
    domain: str | None = typer.Option(
        None, "--domain", help="airline or retail (default: inferred per request)."
    ),
    port: int = typer.Option(8089, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
    seed: int = typer.Option(0, "--seed", help="Seed used when a request carries none."),
    error_rate: float = typer.Option(
        0.0, "--error-rate", min=0.0, max=1.0, help="Seeded rule-forgetting rate."
    ),
    model: str = typer.Option("sim", "--model-name", help="Model id reported by /v1/models."),
    api_key: str | None = typer.Option(None, "--require-key", help="Require this bearer key (default: any)."),
) -> None:
    """Serve ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 until Ctrl-C.

    Point a client at it with ``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 OPENAI_API_KEY=any`` and
    ``--model openai:sim``.
    """
    from diffprompt.errors import ConfigError
    from tau_envs.serve import start_server

    if domain is not None and domain not in ("airline", "retail"):
        raise ConfigError(f"unknown --domain {domain!r}; use airline or retail")
    handle = start_server(
        domain, port=port, seed=seed, model=model, api_key=api_key, error_rate=error_rate, background=False
    )
    common.console.print(
        f"serving simulated model {model!r} at {handle.base_url}  (Ctrl-C to stop)", highlight=False, markup=False
    )
    try:
        handle.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        handle.close()
        common.console.print(f"stopped after {handle.requests} requests ({handle.errors} errors)")
