"""``diffprompt experiment steps|editors``: the paper's RQ3 and RQ4, one command each.

Each writes ``<out>/<name>.md`` (a markdown table), ``<out>/<name>.svg`` (a plot) and
``<out>/<name>.json`` (every round's row), and prints the table. ``--dlm`` takes ``builtin`` or a
Dream-7B / LLaDA-8B checkpoint (directory or Hub id) loaded with ``dlm.backends.load_dlm`` on
``--device`` (``auto``: CUDA when available).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from diffprompt.cli import common

app = typer.Typer(help="The paper's experiments: diffusion steps (RQ3), editors at equal budget (RQ4).",
                  no_args_is_help=True)


def _ints(text: str, what: str) -> list[int]:
    from diffprompt.errors import ConfigError

    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not out:
        raise ConfigError(f"{what} is empty")
    return out


def _load_dlm(spec: str, device: str) -> Any:
    if spec == "builtin":
        from diffprompt.dlm.model import load_builtin

        return load_builtin()
    import torch

    from diffprompt.dlm import backends

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    return backends.load_dlm(spec, device=dev)


def _config(**kw: Any) -> Any:
    from diffprompt.optimize.config import OptimizeConfig

    budget = {"max_calls": kw.pop("max_calls")} if kw.get("max_calls") is not None else {}
    kw.pop("max_calls", None)
    return OptimizeConfig.from_dict({**{k: v for k, v in kw.items() if v is not None},
                                     **({"budget": budget} if budget else {})})


def _prepare(ctx: typer.Context, env: str, model: str, judge: str | None, seed_file: Path | None,
             window: int, concurrency: int) -> Any:
    from diffprompt.errors import ConfigError
    from diffprompt.experiments.sweeps import prepare
    from diffprompt.llm import check_reachable

    settings = common.state(ctx).settings()
    check_reachable(model, base_url=settings.openai_base_url, api_key=settings.openai_api_key)
    seed_text = None
    if seed_file is not None:
        try:
            seed_text = seed_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read --seed-file {seed_file}: {exc.strerror or exc}") from None
    return settings, prepare(env, model=model, base_url=settings.openai_base_url, api_key=settings.openai_api_key,
                             judge=judge, seed_text=seed_text, window_cases=window, concurrency=concurrency)


def _progress(out: Path, name: str) -> Any:
    """A row callback: one progress line on stderr and the rows so far in ``<out>/<name>.partial.jsonl``."""
    out.mkdir(parents=True, exist_ok=True)
    part = out / f"{name}.partial.jsonl"
    part.write_text("", encoding="utf-8")

    def on_row(row: Any) -> None:
        with part.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row.as_dict()) + "\n")
        common.err_console.print(
            f"{row.arm} seed {row.seed}: {row.status}, held-out {row.held_out:.3f} "
            f"(seed prompt {row.incumbent if row.incumbent is not None else float('nan'):.3f}), {row.seconds:.0f}s",
            markup=False, highlight=False,
        )

    return on_row


def _write(out: Path, name: str, md: str, svg: str, rows: list[Any], meta: dict[str, Any], as_json: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(md, encoding="utf-8")
    (out / f"{name}.svg").write_text(svg, encoding="utf-8")
    (out / f"{name}.json").write_text(json.dumps({**meta, "rows": [r.as_dict() for r in rows]}, indent=1),
                                      encoding="utf-8")
    if as_json:
        common.print_json({**meta, "table": str(out / f"{name}.md"), "plot": str(out / f"{name}.svg")})
    else:
        common.write_plain(md if md.endswith("\n") else md + "\n")  # paths and labels print as written
        common.write_plain(f"wrote {out / name}.md, .svg, .json\n")


_ENV = typer.Option(..., "--env", help="dataset:PATH.jsonl[?labels=..] (the window and held-out parts split by seed).")
_MODEL = typer.Option("sim", "--model", help="Target model: sim | openai:NAME.")
_SEEDS = typer.Option("0,1,2", "--seeds", help="Round seeds (comma-separated).")
_WINDOW = typer.Option(64, "--window", min=1, help="Window examples recorded with the seed prompt.")
_HOLDOUT = typer.Option(60, "--holdout", min=1, help="Held-out examples per round.")
_SCREEN = typer.Option(8, "--screen", min=1, help="Screening examples per round.")
_CANDS = typer.Option(4, "--candidates", min=1, help="Candidates per iteration.")
_ITERS = typer.Option(2, "--iterations", min=1, help="Edit iterations per round.")
_DLM = typer.Option("builtin", "--dlm", help="builtin | Dream/LLaDA checkpoint dir or Hub id.")
_DEVICE = typer.Option("auto", "--device", help="DLM device: auto | cpu | cuda | cuda:N.")
_OUT = typer.Option(Path("experiments"), "--out", help="Output directory.")
_SEEDFILE = typer.Option(None, "--seed-file", help="Seed prompt (default: the task kind's).")
_CONC = typer.Option(4, "--concurrency", min=1, help="Replay episodes at once.")
_JSON = typer.Option(False, "--json", help="Print one JSON object (paths and settings).")


@app.command("steps")
def steps_cmd(
    ctx: typer.Context,
    env: str = _ENV,
    model: str = _MODEL,
    steps: str = typer.Option("8,16,32,64,128", "--steps", help="Diffusion steps to sweep."),
    seeds: str = _SEEDS,
    window: int = _WINDOW,
    holdout: int = _HOLDOUT,
    screen: int = _SCREEN,
    candidates: int = _CANDS,
    iterations: int = _ITERS,
    dlm: str = _DLM,
    device: str = _DEVICE,
    judge: str | None = typer.Option(None, "--judge", help="Blame judge model (default: offline label blamer)."),
    seed_file: Path | None = _SEEDFILE,
    concurrency: int = _CONC,
    out: Path = _OUT,
    as_json: bool = _JSON,
) -> None:
    """RQ3: diffusion steps → held-out score, spread over seeds, wall time and DLM forwards."""
    from diffprompt.experiments import render
    from diffprompt.experiments.sweeps import steps_sweep

    step_list, seed_list = _ints(steps, "--steps"), _ints(seeds, "--seeds")
    cfg = _config(holdout_cases=holdout, screen_cases=screen, n_candidates=candidates, iterations=iterations,
                  replay_concurrency=concurrency, max_calls=None)
    model_dlm = _load_dlm(dlm, device)
    _, prep = _prepare(ctx, env, model, judge, seed_file, window, concurrency)
    rows = steps_sweep(prep, dlm=model_dlm, steps=step_list, seeds=seed_list, config=cfg,
                       on_row=_progress(out, "steps"))
    title = f"RQ3 diffusion steps · {env} · target {model} · DLM {dlm}"
    meta = {"experiment": "steps", "env": env, "model": model, "dlm": dlm, "seeds": seed_list, "steps": step_list,
            "window": window, "window_score": prep.window.window_score, "config": cfg.as_dict()}
    _write(out, "steps", render.table(rows, title=title), render.steps_svg(rows, title=title), rows, meta, as_json)


@app.command("editors")
def editors_cmd(
    ctx: typer.Context,
    env: str = _ENV,
    model: str = _MODEL,
    editors: str = typer.Option("dlm,ar,rewrite", "--editors", help="Editors to compare."),
    editor_model: str | None = typer.Option(
        None, "--editor-model",
        help="LLM (OpenAI-compatible, at OPENAI_BASE_URL) for ar/rewrite; required when --editors names either.",
    ),
    max_calls: int | None = typer.Option(None, "--max-calls", min=1, help="Target-call cap per round (equal)."),
    seeds: str = _SEEDS,
    window: int = _WINDOW,
    holdout: int = _HOLDOUT,
    screen: int = _SCREEN,
    candidates: int = _CANDS,
    iterations: int = _ITERS,
    dlm: str = _DLM,
    device: str = _DEVICE,
    judge: str | None = typer.Option(None, "--judge", help="Blame judge model (default: offline label blamer)."),
    seed_file: Path | None = _SEEDFILE,
    concurrency: int = _CONC,
    out: Path = _OUT,
    as_json: bool = _JSON,
) -> None:
    """RQ4: DLM vs AR infill vs rewrite on the same cases and seeds at an equal target-call budget."""
    from diffprompt.experiments import render
    from diffprompt.experiments.sweeps import editors_compare
    from diffprompt.optimize import build

    kinds = [e.strip() for e in editors.split(",") if e.strip()]
    for kind in kinds:  # before any model is loaded or window recorded
        build.check_editor(kind, editor_model if kind != "dlm" else None)
    seed_list = _ints(seeds, "--seeds")
    cfg = _config(holdout_cases=holdout, screen_cases=screen, n_candidates=candidates, iterations=iterations,
                  replay_concurrency=concurrency, max_calls=max_calls)
    model_dlm = _load_dlm(dlm, device) if "dlm" in kinds else None
    settings, prep = _prepare(ctx, env, model, judge, seed_file, window, concurrency)
    rows = editors_compare(prep, editors=kinds, dlm=model_dlm, editor_model=editor_model,
                           base_url=settings.openai_base_url, api_key=settings.openai_api_key,
                           seeds=seed_list, config=cfg, on_row=_progress(out, "editors"))
    title = f"RQ4 editors · {env} · target {model} · DLM {dlm} · cap {max_calls or 'none'} target calls"
    meta = {"experiment": "editors", "env": env, "model": model, "dlm": dlm, "editors": kinds, "seeds": seed_list,
            "editor_model": editor_model, "max_calls": max_calls, "window": window,
            "window_score": prep.window.window_score, "config": cfg.as_dict()}
    _write(out, "editors", render.table(rows, title=title), render.editors_svg(rows, title=title), rows, meta,
           as_json)
