"""``diffprompt eval``: score one prompt version on an environment without optimizing.

``--record`` stores the episodes as the slot's traces with reward feedback (how a dataset slot gets
its window); for ``dataset:`` envs only the ``window`` part of the seeded split is ever recorded,
so the gate's held-out examples stay unseen (without ``--part``, ``--record`` on a dataset scores
the window part only, so ``--limit N`` spends N target calls and records N episodes).
``--json`` prints one object (``EvalReport``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer

from diffprompt.cli import common

PartChoice = Literal["all", "window", "holdout"]


def _resolve_env(
    env: str, *, model: str, settings: Any, base_url: str | None, meter: Any, user: str, split: str,
    world_seed: int,
) -> tuple[Any, str | None, Any]:
    """(env, default seed prompt or None, dataset-or-None) for ``env``."""
    from diffprompt.optimize import build

    plugin = build.env_plugin(env)
    if plugin is not None:
        b = plugin(env, model=model, base_url=base_url, api_key=settings.openai_api_key, meter=meter)
        return b.env, b.seed_prompt, b.data
    spec = build.parse_env_spec(env)
    domain = build.build_domain(spec, home=settings.home, split=split, world_seed=world_seed)
    tau = build.build_env(
        domain, model=model, base_url=base_url, api_key=settings.openai_api_key, user=user, meter=meter,
    )
    return tau, None, None


def _cases(env: Any, data: Any, part: PartChoice, limit: int | None) -> list[Any]:
    from diffprompt.errors import ConfigError

    if data is None:
        if part != "all":
            raise ConfigError("--part window|holdout applies to dataset: envs only")
        return list(env.all_cases())[:limit]
    return list(env.all_cases(None if part == "all" else part, limit))


def _version(store: Any, slot: str, version: str | None, seed_prompt: str | None, seed_file: Path | None,
             init: bool) -> Any:
    from diffprompt.errors import ConfigError, NotFoundError

    try:
        state = store.slot_state(slot)
    except NotFoundError:
        if not init:
            raise
        if seed_file is not None:
            try:
                text = seed_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read --seed-file {seed_file}: {exc.strerror or exc}") from None
        elif seed_prompt is not None:
            text = seed_prompt
        else:
            raise ConfigError("--init on a τ env needs --seed-file (there is no default τ prompt)") from None
        return store.create_slot(slot, text, actor="cli:eval")
    if version == "seed":  # the slot's first version
        return store.list_versions(slot)[0]
    v = store.get_version(state.active_version_id if version in (None, "active") else version)
    if v.slot != slot:
        raise ConfigError(f"version {v.id} belongs to slot {v.slot!r}, not {slot!r}")
    return v


def eval_cmd(
    ctx: typer.Context,
    slot: str = typer.Option(..., "--slot", help="The prompt slot."),
    version: str | None = typer.Option(None, "--version", help="Version id, 'active' (default) or 'seed'."),
    env: str = typer.Option(..., "--env", help="dataset:PATH[?labels=..] | tau:airline | tau:retail | tau:<d>:<dir>."),
    model: str = typer.Option("sim", "--model", help="Target model: sim | openai:NAME."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint of the target (default: OPENAI_BASE_URL)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N cases (file order)."),
    part: str | None = typer.Option(
        None, "--part", help="Dataset part: all | window | holdout (default: all; window with --record)."
    ),
    record: bool = typer.Option(False, "--record", help="Store the episodes as traces with reward feedback."),
    init: bool = typer.Option(False, "--init", help="Create the slot if missing (task default or --seed-file)."),
    seed_file: Path | None = typer.Option(None, "--seed-file", help="Seed prompt text for --init."),
    seed: int = typer.Option(0, "--seed", help="Episode seeds (same seed, same version, same data → same score)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Episodes at once."),
    user: str = typer.Option("scripted", "--user", help="τ user simulator: scripted | llm:NAME."),
    split: str = typer.Option("test", "--split", help="τ split."),
    world_seed: int = typer.Option(0, "--world-seed", help="τ generated world seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score one version on an environment (no optimizing); --record makes the episodes a window."""
    from dataclasses import replace

    from diffprompt.errors import ConfigError, ModelError
    from diffprompt.llm import CallMeter, check_reachable
    from diffprompt.optimize.evaluate import evaluate, record_episodes

    if part is not None and part not in ("all", "window", "holdout"):
        raise ConfigError(f"--part must be all, window or holdout, got {part!r}")
    if record and part == "holdout":
        raise ConfigError("refusing to --record the held-out part: the gate's cases must stay unseen")
    settings = common.state(ctx).settings()
    url = base_url or settings.openai_base_url
    check_reachable(model, base_url=url, api_key=settings.openai_api_key)
    meter = CallMeter()
    target, seed_prompt, data = _resolve_env(
        env, model=model, settings=settings, base_url=url, meter=meter, user=user, split=split,
        world_seed=world_seed,
    )
    if part is None:  # --record on a dataset: only window-part episodes are ever stored, so score just those
        part = "window" if (record and data is not None) else "all"
    cases = _cases(target, data, part, limit)  # type: ignore[arg-type]
    if not cases:
        raise ConfigError(f"no cases to evaluate in {env} (part {part})")
    store = common.open_store(ctx)
    try:
        v = _version(store, slot, version, seed_prompt, seed_file, init)
        report, res = evaluate(target, v, cases, seed=seed, concurrency=concurrency)
        errs = [r.error for r in res.results[v.id] if r.error]
        if errs and len(errs) == report.n:  # no score to report: say why, record nothing
            raise ModelError(f"every episode failed ({report.n} of {report.n}); the first: {errs[0]}")
        recorded = 0
        if record:
            rows = list(res.results[v.id])
            if data is not None:
                window = {c.id for c in cases if target.part(target.example(c)) == "window"}
                rows = [r for r in rows if r.case_id in window]
            recorded = record_episodes(store, v, target, rows)
        report = replace(report, recorded=recorded)
    finally:
        store.close()
    if as_json:
        common.print_json({**report.as_dict(), "first_error": errs[0] if errs else None})
        return
    extra = f", accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}" if report.accuracy is not None else ""
    lines = [  # literal: an env path or slot name with [brackets] prints as written
        f"{report.env} · slot {slot} · version {v.id}: score {report.score:.3f} on {report.n} cases{extra}",
        f"  errors {report.errors}, unparsed {report.unparsed}, model calls {report.model_calls}, "
        f"tokens {report.tokens}, {report.seconds:.1f}s",
    ]
    if errs:
        lines.append(f"  first error: {errs[0]}")
    if record:
        lines.append(f"  recorded {recorded} episodes as traces of {slot}")
    common.write_plain("\n".join(lines) + "\n")


def register(root: typer.Typer) -> None:
    """Add ``diffprompt eval`` to the root app."""
    root.command("eval")(eval_cmd)
