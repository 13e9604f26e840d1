"""``OptimizeRequest`` → one round: the glue the CLI, the scheduler and the demo share.

A request is plain JSON-able data (so scheduled jobs can persist it); ``run_request`` resolves its
specs with ``optimize.build`` and calls ``loop.run_round``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError
from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.result import RoundEvent, RoundResult


@dataclass(frozen=True, kw_only=True, slots=True)
class OptimizeRequest:
    """Everything needed to run a round for a slot, as plain data."""

    slot: str
    env: str = "tau:airline"
    editor: str = "dlm"
    model: str = "sim"
    user: str = "scripted"
    judge: str | None = None
    editor_model: str | None = None
    dlm: str = "builtin"
    likelihood: bool = False
    split: str = "test"
    world_seed: int = DEFAULT_SCENARIO.world_seed  # the generated τ world: one default for every entry point
    world_users: int = DEFAULT_SCENARIO.world_users
    world_tasks: int = DEFAULT_SCENARIO.world_tasks
    seed: int = 0
    dry_run: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    # --env recorded / real models: a live toolkit (module:attr), model-call bound, request settings
    tools: str | None = None
    max_steps: int | None = None
    model_settings: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = dict(self.config)
        d["model_settings"] = dict(self.model_settings)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizeRequest:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown optimize request keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))


def _load_dlm(spec: str) -> Any:
    if spec == "builtin":
        from diffprompt.dlm.model import load_builtin

        return load_builtin()
    from diffprompt.dlm import backends

    return backends.load_dlm(spec)


def run_request(
    store: Any,
    req: OptimizeRequest,
    *,
    home: Path,
    api_key: str | None = None,
    base_url: str | None = None,
    events: Callable[[RoundEvent], None] | None = None,
    run_id: str | None = None,
    actor: str = "optimizer",
    meter: Any = None,
) -> RoundResult:
    """Resolve ``req`` and run one round.

    The slot is checked first (``NotFoundError``), so a bad slot fails before any world is generated
    or model loaded.
    """
    from diffprompt.optimize import build

    cfg = OptimizeConfig.from_dict(dict(req.config))
    state = store.slot_state(req.slot)
    plugin = build.env_plugin(req.env)  # dataset:PATH and other registered env kinds
    spec = build.parse_env_spec(req.env) if plugin is None else None
    build.check_editor(req.editor, req.editor_model)  # before any world is built or model loaded
    dlm = _load_dlm(req.dlm) if (req.editor == "dlm" or req.likelihood) else None  # fails fast: ModelError
    if plugin is not None:
        bundle = plugin(req.env, model=req.model, base_url=base_url, api_key=api_key, meter=meter,
                        judge=req.judge, protected=state.protected_span_ids, tools=req.tools,
                        max_steps=req.max_steps, model_settings=req.model_settings)
        env, blamer = bundle.env, bundle.blamer
    else:
        env, blamer = _tau_env_and_blamer(req, spec, state, home=home, base_url=base_url, api_key=api_key,
                                          meter=meter)
    editor = build.build_editor(
        req.editor, dlm=dlm, model=req.editor_model, base_url=base_url, api_key=api_key, meter=meter,
        model_settings=req.model_settings,
    )
    likelihood = build.DLMLikelihood(dlm, seed=req.seed) if (req.likelihood and dlm is not None) else None
    return run_round(
        store,
        req.slot,
        env=env,
        editor=editor,
        config=cfg,
        seed=req.seed,
        events=events,
        blamer=blamer,
        likelihood=likelihood,
        meter=meter,
        dry_run=req.dry_run,
        run_id=run_id,
        actor=actor,
    )


def _tau_env_and_blamer(
    req: OptimizeRequest, spec: Any, state: Any, *, home: Path, base_url: str | None, api_key: str | None,
    meter: Any,
) -> tuple[Any, Any]:
    from diffprompt.optimize import build

    domain = build.build_domain(
        spec,
        home=home,
        split=req.split,
        world_seed=req.world_seed,
        world_users=req.world_users,
        world_tasks=req.world_tasks,
    )
    env = build.build_env(
        domain, model=req.model, base_url=base_url, api_key=api_key, user=req.user, meter=meter
    )
    blamer = build.build_blamer(
        domain,
        judge=req.judge,
        base_url=base_url,
        api_key=api_key,
        meter=meter,
        protected=state.protected_span_ids,
    )
    return env, blamer
