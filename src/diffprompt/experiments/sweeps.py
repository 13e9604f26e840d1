"""RQ3 (diffusion steps → held-out score) and RQ4 (DLM vs AR infill vs rewrite at equal budget).

Both start from ``prepare``: the env spec resolved once, the seed prompt (the task kind's default or
the user's) served on the window part and recorded. Every arm × seed is one isolated dry-run round
(``harness.run_arm``) with the same ``OptimizeConfig`` — same screening and held-out cases for every
arm of a seed, and the same cap on target calls (``config.budget.max_calls``) for RQ4.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.errors import ConfigError
from diffprompt.experiments.harness import ArmResult, Window, record_window, run_arm
from diffprompt.optimize.config import OptimizeConfig

DEFAULT_STEPS: tuple[int, ...] = (8, 16, 32, 64, 128)


@dataclass(frozen=True, kw_only=True, slots=True)
class Prepared:
    """A resolved env (with blamer) and its recorded window."""

    env_spec: str
    env: Any
    blamer: Any
    window: Window
    model: str


def prepare(
    env_spec: str,
    *,
    model: str = "sim",
    base_url: str | None = None,
    api_key: str | None = None,
    meter: Any = None,
    judge: str | None = None,
    seed_text: str | None = None,
    window_cases: int = 64,
    concurrency: int = 4,
) -> Prepared:
    """Resolve ``env_spec`` (``dataset:`` envs) and record the seed prompt's window once."""
    from diffprompt.optimize import build

    plugin = build.env_plugin(env_spec)
    if plugin is None:
        raise ConfigError(f"experiments run on dataset:PATH envs; got {env_spec!r}")
    b = plugin(env_spec, model=model, base_url=base_url, api_key=api_key, meter=meter, judge=judge)
    cases = b.env.all_cases("window", window_cases)
    if not cases:
        raise ConfigError(f"{env_spec} has no window-part examples")
    window = record_window(b.env, seed_text or b.seed_prompt, cases, concurrency=concurrency)
    return Prepared(env_spec=env_spec, env=b.env, blamer=b.blamer, window=window, model=model)


def steps_sweep(
    prep: Prepared,
    *,
    dlm: Any,
    steps: Sequence[int] = DEFAULT_STEPS,
    seeds: Sequence[int] = (0, 1, 2),
    config: OptimizeConfig,
    dlm_options: Mapping[str, Any] | None = None,
    on_row: Callable[[ArmResult], None] | None = None,
) -> list[ArmResult]:
    """RQ3: one DLM editor per ``steps`` value, every seed; the rest of the round is identical."""
    from diffprompt.dlm.editor import DLMEditor

    if not steps or min(steps) < 1:
        raise ConfigError("steps must be positive integers")
    rows: list[ArmResult] = []
    cache: dict[tuple[str, ...], float] = {}
    for s in steps:
        editor = DLMEditor(dlm, **{**dict(dlm_options or {}), "steps": int(s)})
        for seed in seeds:
            rows.append(run_arm(f"steps={s}", prep.window, env=prep.env, editor=editor, blamer=prep.blamer,
                                config=config, seed=seed, seed_cache=cache))
            if on_row is not None:
                on_row(rows[-1])
    return rows


def editors_compare(
    prep: Prepared,
    *,
    editors: Sequence[str] = ("dlm", "ar", "rewrite"),  # ar/rewrite need editor_model
    dlm: Any = None,
    editor_model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    config: OptimizeConfig,
    dlm_options: Mapping[str, Any] | None = None,
    on_row: Callable[[ArmResult], None] | None = None,
) -> list[ArmResult]:
    """RQ4: each editor, every seed, the same config and target-call cap (``config.budget``)."""
    from diffprompt.llm import CallMeter
    from diffprompt.optimize import build

    rows: list[ArmResult] = []
    cache: dict[tuple[str, ...], float] = {}
    for kind in editors:
        build.check_editor(kind, editor_model if kind != "dlm" else None)
        meter = CallMeter()
        lm = editor_model if kind in build.LM_EDITORS else None
        editor = build.build_editor(kind, dlm=dlm, model=lm, base_url=base_url, api_key=api_key, meter=meter,
                                    dlm_options=dlm_options)
        label = f"{kind} ({editor_model})" if kind in build.LM_EDITORS else kind
        label += " [ceiling]" if editor.capabilities.oracle else ""
        for seed in seeds:
            rows.append(run_arm(label, prep.window, env=prep.env, editor=editor, blamer=prep.blamer,
                                config=config, seed=seed, editor_meter=meter, seed_cache=cache))
            if on_row is not None:
                on_row(rows[-1])
    return rows
