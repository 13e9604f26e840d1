"""The whole loop in one call: traffic → optimize → promote → traffic → held-out eval → report.

Live traffic is recorded; the round blames, masks, denoises, replays and gates; the promoted version
serves more live traffic; both versions are evaluated on held-out tasks; a report is written.

``run_demo`` orchestrates existing parts and nothing else: the τ runner serves "live" episodes through
the wrapped ``create_agent`` agent (traces + reward feedback land in the store), and
``optimize.service.run_request`` runs the round. Display belongs to the CLI: progress arrives as
``DemoEvent``s through a callback.

Offline by default (generated τ-airline world, simulated target model, scripted users, built-in DLM,
SQLite); ``model``/``user``/``dlm``/``tau_data``/``db_url`` switch on the real parts with the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError
from diffprompt.types import PromptVersion
from tau_envs.types import DomainName

# Rules deleted / garbled from the generated world's policy to make the demo's degraded seed prompt.
DEFAULT_DELETE = ("airline.confirm", "airline.free_bags", "airline.basic_no_change")
DEFAULT_GARBLE = ("airline.cancel_eligibility",)


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything ``run_demo`` needs; validated at construction."""

    home: Path
    db_url: str | None = None  # default: a fresh SQLite file under home/demo/<timestamp>/
    domain: DomainName = "airline"
    slot: str = "tau-airline"
    model: str = "sim"
    user: str = "scripted"
    dlm: str = "builtin"
    editor: str = "dlm"
    tau_data: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    world_seed: int = 0
    world_users: int = 200
    world_tasks: int = 60
    live_split: str = "train"
    heldout_split: str = "test"
    live_trials: int = 2
    heldout_trials: int = 1
    concurrency: int = 4
    delete_rules: Sequence[str] = DEFAULT_DELETE
    garble_rules: Sequence[str] = DEFAULT_GARBLE
    seed: int = 0
    optimize: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.domain not in ("airline", "retail"):
            raise ConfigError(f"unknown domain {self.domain!r}: use airline or retail")
        if self.live_trials < 1 or self.heldout_trials < 1 or self.concurrency < 1:
            raise ConfigError("--trials and --concurrency must be >= 1")


@dataclass(frozen=True, kw_only=True)
class DemoEvent:
    """A progress event for the CLI: ``kind`` plus JSON-able data."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What the demo measured, and where its artefacts are."""

    db_url: str
    slot: str
    seed_version: str
    final_version: str
    run_id: str
    decision: str
    reasons: tuple[str, ...]
    live_before: float
    live_after: float | None
    heldout_seed: float
    heldout_final: float
    report: Path
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["report"] = str(self.report)
        d["reasons"] = list(self.reasons)
        return d


Emit = Callable[[DemoEvent], None]


def _domain(cfg: DemoConfig, split: str) -> Any:
    from tau_envs.domain import load_domain
    from tau_envs.runner import cached_world

    if cfg.tau_data is not None:
        return load_domain(cfg.domain, cfg.tau_data / cfg.domain if (cfg.tau_data / cfg.domain).is_dir()
                           else cfg.tau_data, split=split)
    path = cached_world(cfg.domain, home=cfg.home, seed=cfg.world_seed, n_users=cfg.world_users,
                        n_tasks=cfg.world_tasks)
    return load_domain(cfg.domain, path, split=split)


def seed_policy(cfg: DemoConfig, policy: str) -> str:
    """The degraded seed prompt: the world's policy with some rules deleted and some garbled.

    With official data (``tau_data``) the policy is served as is: the optimizer starts from it.
    """
    if cfg.tau_data is not None or not (cfg.delete_rules or cfg.garble_rules):
        return policy
    from tau_envs.generate import degrade_policy
    from tau_envs.rules import rules_for

    return degrade_policy(policy, rules_for(cfg.domain), delete=cfg.delete_rules, garble=cfg.garble_rules,
                          seed=cfg.seed)


class _Factories:
    """Target-model and user factories for a config (resolved once)."""

    def __init__(self, cfg: DemoConfig, meter: Any) -> None:
        from diffprompt.llm import parse_model_spec

        self.cfg = cfg
        self.meter = meter
        self.model_spec = parse_model_spec(cfg.model)

    def model(self, seed: int) -> Any:
        from diffprompt.llm import make_chat_model

        return make_chat_model(self.model_spec, base_url=self.cfg.base_url, api_key=self.cfg.api_key,
                               seed=seed, domain=self.cfg.domain, meter=self.meter)

    def user(self, task: Any, seed: int) -> Any:
        if self.cfg.user == "scripted":
            from tau_envs.users.scripted import ScriptedUser

            return ScriptedUser()
        from diffprompt.llm import ChatClient
        from tau_envs.users.llm import LLMUser

        name = self.cfg.user.partition(":")[2]
        return LLMUser(ChatClient(name, base_url=self.cfg.base_url, api_key=self.cfg.api_key, meter=self.meter))


def check_endpoints(cfg: DemoConfig) -> None:
    """Fail fast (before any work) when a real model is asked for without a key or reachable URL."""
    from diffprompt.llm import check_reachable, parse_model_spec

    if not (cfg.user == "scripted" or (cfg.user.startswith("llm:") and cfg.user[4:].strip())):
        raise ConfigError(f"unknown --user {cfg.user!r}: use 'scripted' or 'llm:MODEL'")
    check_reachable(parse_model_spec(cfg.model), base_url=cfg.base_url, api_key=cfg.api_key)
    if cfg.user.startswith("llm:"):
        check_reachable(f"openai:{cfg.user[4:]}", base_url=cfg.base_url, api_key=cfg.api_key)


def serve_live(store: Any, cfg: DemoConfig, dom: Any, factories: _Factories, *, phase: str, seed: int,
               emit: Emit) -> Any:
    """Serve the split's tasks as live traffic through the wrapped agent; record traces + rewards."""
    from diffprompt.middleware import PromptAdaptationMiddleware
    from diffprompt.store.recorder import Recorder
    from tau_envs.runner import record_rewards, run_tau

    recorder = Recorder(store, spool_dir=cfg.home / "spool")
    mw = PromptAdaptationMiddleware(cfg.slot, store, recorder=recorder, refresh_s=0.5)
    total = len(dom.tasks) * cfg.live_trials
    emit(DemoEvent(kind="traffic_start", data={"phase": phase, "episodes": total}))
    try:
        summary = run_tau(
            dom, list(range(len(dom.tasks))), trials=cfg.live_trials, concurrency=cfg.concurrency,
            model_factory=factories.model, user_factory=factories.user, system_prompt=None,
            middleware_factory=lambda: [mw], seed=seed,
            on_result=lambda r: emit(DemoEvent(kind="episode", data={"phase": phase, "reward": r.reward})),
        )
        record_rewards(store, summary.results, recorder=recorder, slot=cfg.slot)
    finally:
        mw.close()  # flushes and stops the recorder too
    emit(DemoEvent(kind="traffic_done", data={
        "phase": phase, "pass_hat_k": dict(summary.pass_hat_k), "episodes": len(summary.results),
        "errors": summary.errors, "seconds": round(summary.seconds, 2),
    }))
    return summary


def evaluate(cfg: DemoConfig, dom: Any, factories: _Factories, prompts: Mapping[str, str], *, seed: int,
             emit: Emit) -> dict[str, float]:
    """pass^1 of each prompt on the held-out split (same tasks, same seeds; not recorded)."""
    from tau_envs.runner import run_tau

    def progress(phase: str) -> Callable[[Any], None]:
        return lambda r: emit(DemoEvent(kind="episode", data={"phase": phase, "reward": r.reward}))

    out: dict[str, float] = {}
    for name, text in prompts.items():
        s = run_tau(dom, list(range(len(dom.tasks))), trials=cfg.heldout_trials, concurrency=cfg.concurrency,
                    model_factory=factories.model, user_factory=factories.user, system_prompt=text, seed=seed,
                    on_result=progress(f"heldout:{name}"))
        out[name] = float(s.pass_hat_k.get(1, 0.0))
    emit(DemoEvent(kind="heldout", data=dict(out)))
    return out


def run_demo(cfg: DemoConfig, *, emit: Emit | None = None) -> DemoResult:
    """Run the whole loop once (see the module docstring).

    Raises ``ConfigError`` before any work for an unusable model endpoint.
    """
    from diffprompt.llm import CallMeter
    from diffprompt.optimize.service import OptimizeRequest, run_request
    from diffprompt.report import write_report
    from diffprompt.store import open_store

    say: Emit = emit or (lambda e: None)
    t0 = time.perf_counter()
    check_endpoints(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = cfg.home / "demo" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    db_url = cfg.db_url or f"sqlite:///{run_dir / 'diffprompt.db'}"
    store = open_store(db_url)
    try:
        live = _domain(cfg, cfg.live_split)
        heldout = _domain(cfg, cfg.heldout_split)
        seed_text = seed_policy(cfg, live.policy)
        seed_version: PromptVersion = store.create_slot(cfg.slot, seed_text, actor="demo")
        say(DemoEvent(kind="setup", data={
            "db_url": db_url, "world": str(live.data_dir), "slot": cfg.slot, "seed_version": seed_version.id,
            "deleted": list(cfg.delete_rules if cfg.tau_data is None else ()),
            "garbled": list(cfg.garble_rules if cfg.tau_data is None else ()),
            "live_tasks": len(live.tasks), "heldout_tasks": len(heldout.tasks),
        }))
        meter = CallMeter()
        factories = _Factories(cfg, meter)
        before = serve_live(store, cfg, live, factories, phase="before", seed=cfg.seed, emit=say)
        request = OptimizeRequest(
            slot=cfg.slot, env=f"tau:{cfg.domain}" + (f":{live.data_dir}" if cfg.tau_data else ""),
            editor=cfg.editor, model=cfg.model, user=cfg.user, dlm=cfg.dlm, split=cfg.live_split,
            world_seed=cfg.world_seed, world_users=cfg.world_users, world_tasks=cfg.world_tasks,
            seed=cfg.seed, config=dict(cfg.optimize),
        )
        result = run_request(store, request, home=cfg.home, api_key=cfg.api_key, base_url=cfg.base_url,
                             events=lambda e: say(DemoEvent(kind=f"round:{e.kind}", data=dict(e.data))),
                             meter=meter, actor="demo")
        say(DemoEvent(kind="candidates", data={"candidates": [
            {k: c.get(k) for k in ("editor", "status", "screen_score", "new_texts", "reason")}
            for c in result.record.get("candidates", [])
        ], "finalist_diff": (result.record.get("finalist") or {}).get("diff", "")}))
        final = store.active_version(cfg.slot)
        after = None
        if final.id != seed_version.id:
            after = serve_live(store, cfg, live, factories, phase="after", seed=cfg.seed + 1, emit=say)
        scores = evaluate(cfg, heldout, factories, {"seed": seed_version.text, "final": final.text},
                          seed=cfg.seed + 7, emit=say)
        live_before = float(before.pass_hat_k.get(1, 0.0))
        live_after = float(after.pass_hat_k.get(1, 0.0)) if after is not None else None
        report = write_report(store, result.run_id, run_dir / "report.html", extra={
            "live pass^1 before": f"{live_before:.3f}",
            "live pass^1 after": "-" if live_after is None else f"{live_after:.3f}",
            f"held-out pass^1 ({cfg.heldout_split} split), seed prompt": f"{scores['seed']:.3f}",
            f"held-out pass^1 ({cfg.heldout_split} split), final prompt": f"{scores['final']:.3f}",
        })
        out = DemoResult(
            db_url=db_url, slot=cfg.slot, seed_version=seed_version.id, final_version=final.id,
            run_id=result.run_id, decision=result.decision.kind, reasons=tuple(result.decision.reasons),
            live_before=live_before, live_after=live_after, heldout_seed=scores["seed"],
            heldout_final=scores["final"], report=report, seconds=round(time.perf_counter() - t0, 1),
        )
        say(DemoEvent(kind="done", data=out.as_dict()))
        return out
    finally:
        store.close()
