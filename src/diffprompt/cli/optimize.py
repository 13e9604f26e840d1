"""``diffprompt optimize``: run one optimization round for a slot (thin: parse, build, call, show)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from diffprompt.cli import common
from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO


def _config_overrides(path: Path | None, **flags: Any) -> dict[str, Any]:
    """OptimizeConfig data from a JSON/TOML file, then command-line flags (those not None) on top."""
    from diffprompt.errors import ConfigError

    data: dict[str, Any] = {}
    if path is not None:
        raw = common.read_text_file(path, "--config")
        try:
            if path.suffix == ".toml":
                import tomllib

                data = dict(tomllib.loads(raw).get("optimize", tomllib.loads(raw)))
            else:
                data = dict(json.loads(raw))
        except (ValueError, TypeError) as exc:  # JSON/TOML syntax, or not a table/object
            raise ConfigError(f"cannot parse --config {path}: {exc}") from None
    budget = dict(data.get("budget", {}))
    for key in ("max_calls", "max_tokens", "max_usd", "max_wall_s"):
        if flags.get(key) is not None:
            budget[key] = flags.pop(key)
        else:
            flags.pop(key, None)
    if budget:
        data["budget"] = budget
    data.update({k: v for k, v in flags.items() if v is not None})
    return data


def _json_object(flag: str, text: str | None) -> dict[str, Any]:
    """A JSON-object flag value (``ConfigError`` naming the flag on bad JSON or another JSON type)."""
    from diffprompt.errors import ConfigError
    from diffprompt.llm import ModelSettings

    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{flag} is not valid JSON ({exc}); give an object, e.g. '{{\"max_tokens\": 64}}'") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} must be a JSON object, not {type(data).__name__}")
    ModelSettings.from_dict(data)  # validated now, not after the round started
    return data


def plural(n: int, word: str) -> str:
    """``"1 candidate"``, ``"3 candidates"`` (regular plurals only)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _printer(as_json: bool) -> Any:
    from diffprompt.optimize.result import RoundEvent

    out = common.err_console if as_json else common.console

    def show(ev: RoundEvent) -> None:
        d = ev.data
        if ev.kind == "window":
            out.print(
                f"window: {plural(d['n'], 'trace')}, {d['failures']} failing, {d['successes']} succeeding"
            )
        elif ev.kind == "attribution":
            for row in d["ranking"][:5]:
                why = next((e.get("reason") for e in row["evidence"] if e.get("reason")), "")
                ins = " (insert)" if row["insert"] else ""
                out.print(
                    f"  blame {row['span_id']} score={row['score']:.3f}{ins} {why[:80]}", highlight=False
                )
        elif ev.kind == "masked":
            out.print(f"iteration {d['iteration']}: masking {plural(len(d['span_ids']), 'span')}")
        elif ev.kind == "candidates":
            bad = ", ".join(f"{n} {status}" for status, n in sorted((d.get("invalid") or {}).items()))
            out.print(f"  {plural(d['n'], 'candidate')}, {d['valid']} valid" + (f" ({bad})" if bad else ""))
        elif ev.kind == "screen":
            scores = ", ".join(f"{s:.2f}" for s in d["candidates"] if s is not None)
            out.print(f"  screening: parent {d['parent']:.2f} vs [{scores}]")
        elif ev.kind == "replay":
            out.print("held-out replay: " + ", ".join(f"{k} {v:.3f}" for k, v in d["means"].items()))
        elif ev.kind == "decision":
            out.print(f"gate: {d['kind']} — " + "; ".join(d["reasons"]), highlight=False, markup=False)

    return show


def optimize_cmd(
    ctx: typer.Context,
    slot: str = typer.Option(..., "--slot", help="The prompt slot to optimize."),
    env: str = typer.Option(
        "tau:airline", "--env", help="Replay env: tau:airline | tau:retail | tau:<domain>:<dir> | dataset:PATH."
    ),
    editor: str = typer.Option(
        "dlm",
        "--editor",
        help="dlm (offline) | ar | rewrite (need --editor-model) | oracle | oracle-rewrite (labelled ceilings).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide, record, but do not promote."),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object with the outcome."),
    seed: int = typer.Option(0, "--seed", help="Seed of the round."),
    model: str = typer.Option("sim", "--model", help="Target model: sim | openai:NAME | gguf:PATH (--env recorded)."),
    user: str = typer.Option("scripted", "--user", help="User simulator: scripted | llm:NAME."),
    judge: str | None = typer.Option(
        None, "--judge", help="Blame judge model (OpenAI-compatible), or 'oracle' (upper bound); default offline."
    ),
    editor_model: str | None = typer.Option(None, "--editor-model", help="Model for --editor ar/rewrite."),
    dlm: str = typer.Option("builtin", "--dlm", help="DLM: builtin | local dir | Hub id (Dream/LLaDA)."),
    likelihood: bool = typer.Option(False, "--likelihood/--no-likelihood", help="Use DLM span likelihood."),
    split: str = typer.Option("test", "--split", help="τ split of the replay keys."),
    world_seed: int = typer.Option(DEFAULT_SCENARIO.world_seed, "--world-seed"),
    world_users: int = typer.Option(DEFAULT_SCENARIO.world_users, "--world-users"),
    world_tasks: int = typer.Option(DEFAULT_SCENARIO.world_tasks, "--world-tasks"),
    config: Path | None = typer.Option(None, "--config", help="OptimizeConfig as JSON or TOML ([optimize])."),
    candidates: int | None = typer.Option(None, "--candidates", help="Candidates per iteration."),
    holdout: int | None = typer.Option(None, "--holdout", help="Held-out replay cases."),
    trials: int | None = typer.Option(None, "--trials", help="Replay trials per case."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Replay episodes at once."),
    canary: float | None = typer.Option(None, "--canary", help="Promote as a canary with this share."),
    max_calls: int | None = typer.Option(None, "--max-calls", help="Budget: target-model calls."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Budget: tokens."),
    max_usd: float | None = typer.Option(None, "--max-usd", help="Budget: dollars."),
    max_wall_s: float | None = typer.Option(None, "--max-wall-s", help="Budget: wall seconds."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint for every model (default: OPENAI_BASE_URL)."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Model calls per replayed episode."),
    tools: str | None = typer.Option(
        None, "--tools", help="--env recorded: live toolkit module:attr (LangChain tools or callables)."
    ),
    model_settings: str | None = typer.Option(
        None,
        "--model-settings",
        help='Per-call settings as JSON, e.g. \'{"max_tokens": 128, "timeout_s": 60, "extra_body": {}}\'.',
    ),
) -> None:
    """Attribute weak spans, rewrite them, replay, gate and promote (one round).

    ``--env recorded`` replays the slot's own recorded conversations against ``--model openai:NAME``
    and scores each case with a blind pairwise ``--judge`` (win / loss / tie) for the paired gate.
    """
    from diffprompt.llm import CallMeter, check_reachable
    from diffprompt.optimize.service import OptimizeRequest, run_request

    settings = common.state(ctx).settings()
    data = _config_overrides(
        config,
        n_candidates=candidates,
        holdout_cases=holdout,
        trials=trials,
        replay_concurrency=concurrency,
        max_calls=max_calls,
        max_tokens=max_tokens,
        max_usd=max_usd,
        max_wall_s=max_wall_s,
    )
    if canary is not None:
        data.update(promote_mode="canary", canary_share=canary)
    req = OptimizeRequest(
        slot=slot,
        env=env,
        editor=editor,
        model=model,
        user=user,
        judge=judge,
        editor_model=editor_model,
        dlm=dlm,
        likelihood=likelihood,
        split=split,
        world_seed=world_seed,
        world_users=world_users,
        world_tasks=world_tasks,
        seed=seed,
        dry_run=dry_run,
        config=data,
        tools=tools,
        max_steps=max_steps,
        model_settings=_json_object("--model-settings", model_settings),
    )
    from diffprompt.optimize.recorded_build import model_name

    url = base_url or settings.openai_base_url
    for spec in (
        None if model.startswith("gguf:") else model,  # an in-process GGUF target needs no endpoint
        f"openai:{model_name(judge)}" if judge and judge != "oracle" else None,
        f"openai:{model_name(editor_model)}" if editor_model else None,
    ):
        if spec:  # fail fast on a bad endpoint, before any work (a busy server is not a dead one)
            check_reachable(spec, base_url=url, api_key=settings.openai_api_key)
    from diffprompt.heartbeat import run_heartbeat
    from diffprompt.types import new_id

    store = common.open_store(ctx)
    run_id = new_id("run_")
    try:
        with run_heartbeat(store, run_id):  # a worker never marks this live run abandoned (issue 13.8)
            res = run_request(
                store,
                req,
                home=settings.home,
                api_key=settings.openai_api_key,
                base_url=url,
                events=_printer(as_json),
                meter=CallMeter(),
                actor="cli:optimize",
                run_id=run_id,
            )
    finally:
        store.close()
    if as_json:
        common.print_json(res.summary())
        return
    c = common.console
    c.print(f"run {res.run_id}: [bold]{res.status}[/]")
    if res.incumbent_score is not None:
        c.print(
            f"incumbent {res.incumbent_score:.3f} → candidate {res.candidate_score:.3f}"
            + (f" (p={res.p_value:.4g})" if res.p_value is not None else "")
        )
    for r in res.decision.reasons:
        c.print(f"  {r}", highlight=False)
    if res.promoted_version_id:
        c.print(f"new version {res.promoted_version_id}")


def register(root: typer.Typer) -> None:
    """Add ``diffprompt optimize`` to the root app."""
    root.command("optimize")(optimize_cmd)
