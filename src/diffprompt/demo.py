"""The whole loop in one call: traffic → optimize → promote → traffic → held-out eval → report.

Live traffic is recorded; the round blames, masks, denoises, replays and gates; the promoted version
serves more live traffic; both versions are evaluated on a held-out split (other tasks than the live
one); a report is written, whatever the gate decided.

``run_demo`` orchestrates existing parts and nothing else: the τ set-up comes from the one τ factory
(``diffprompt.integrations.tau.build_tau`` with ``DEFAULT_SCENARIO``, the scenario that
``bench/RESULTS.md`` reports), the τ runner serves "live" episodes through the wrapped
``create_agent`` agent (traces + reward feedback land in the store), and
``optimize.service.run_request`` runs the round. Display belongs to the CLI: progress arrives as
``DemoEvent``s through a callback.

Offline by default (generated τ-airline world, simulated target model, scripted users, built-in DLM,
SQLite); ``model``/``user``/``dlm``/``tau_data``/``db_url`` switch on the real parts with the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError
from diffprompt.integrations.tau.factory import TauSetup, build_tau, judge_description, record_rewards
from diffprompt.integrations.tau.scenario import Scenario, default_scenario
from diffprompt.llm import check_reachable
from diffprompt.optimize.build import LM_EDITORS, check_editor
from diffprompt.optimize.recorded_build import model_name
from diffprompt.types import PromptVersion


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything ``run_demo`` needs; validated at construction.

    ``scenario`` defaults to the domain's default (``DEFAULT_SCENARIO`` for airline); the
    ``world_*`` fields, when given, resize its generated world (tests use small worlds).
    """

    home: Path
    db_url: str | None = None  # default: a fresh SQLite file under home/demo/<timestamp>/
    domain: str = "airline"
    scenario: Scenario | None = None
    slot: str | None = None  # default tau-<domain>
    model: str = "sim"
    user: str = "scripted"
    judge: str | None = None  # None: the offline default judge; "oracle": the labelled upper bound
    dlm: str = "builtin"
    editor: str = "dlm"
    editor_model: str | None = None  # the OpenAI-compatible model of editor ar/rewrite
    tau_data: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    world_seed: int | None = None
    world_users: int | None = None
    world_tasks: int | None = None
    live_split: str = "train"
    heldout_split: str = "test"
    live_trials: int = 2
    heldout_trials: int = 1
    concurrency: int = 4
    seed: int = 0
    optimize: Mapping[str, Any] = field(default_factory=dict)
    canary_share: float | None = 0.5  # the promoted prompt serves the 2nd live batch as a guarded canary

    def __post_init__(self) -> None:
        check_editor(self.editor, self.editor_model)  # before any traffic is served
        if self.domain not in ("airline", "retail"):
            raise ConfigError(f"unknown domain {self.domain!r}: use airline or retail")
        if self.live_trials < 1 or self.heldout_trials < 1 or self.concurrency < 1:
            raise ConfigError("--trials and --concurrency must be >= 1")
        if self.live_split == self.heldout_split:
            raise ConfigError(f"the held-out split must differ from the live one ({self.live_split!r})")
        if self.canary_share is not None and not 0.0 < self.canary_share < 1.0:
            raise ConfigError(f"--canary must be a share strictly between 0 and 1, got {self.canary_share!r}")

    @property
    def slot_name(self) -> str:
        return self.slot or f"tau-{self.domain}"

    def tau(self) -> TauSetup:
        """The τ set-up of this demo (one factory for demo, CLI, optimize, scheduler and bench)."""
        return build_tau(
            self.domain, home=self.home, scenario=self.scenario or default_scenario(self.domain),
            data_dir=self.tau_data, world_seed=self.world_seed, world_users=self.world_users,
            world_tasks=self.world_tasks, model=self.model, user=self.user, base_url=self.base_url,
            api_key=self.api_key,
        )


@dataclass(frozen=True, kw_only=True)
class DemoEvent:
    """A progress event for the CLI: ``kind`` plus JSON-able data."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What the demo measured, and where its artefacts are.

    ``heldout_seed``/``heldout_final`` are pass^1 on ``heldout_tasks`` tasks of ``heldout_split``,
    none of which the live traffic (and so the round) saw; None when the split shares every task.
    With ``canary_share`` the second live batch runs the promoted prompt as a guarded canary:
    ``final_version`` is the round's promotion, ``canary`` the monitor's decision on that batch
    (active is the canary only once the monitor promoted it) and ``live_after`` the canary arm's
    mean reward.
    """

    db_url: str
    slot: str
    scenario: str
    judge: str
    seed_version: str
    final_version: str
    run_id: str
    decision: str
    reasons: tuple[str, ...]
    live_before: float
    live_after: float | None
    heldout_split: str
    heldout_tasks: int
    heldout_seed: float | None
    heldout_final: float | None
    report: Path
    seconds: float
    canary: Mapping[str, Any] | None = None  # the live canary test of the 2nd batch (rollout.monitor.summary)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["report"] = str(self.report)
        d["reasons"] = list(self.reasons)
        return d


Emit = Callable[[DemoEvent], None]


def _task_key(task: Any) -> tuple[str, str]:
    return str(task.user_id), str(task.instruction)


def heldout_indices(live: Any, heldout: Any) -> list[int]:
    """Indices of ``heldout``'s tasks that are not also live tasks (same user and instruction)."""
    seen = {_task_key(t) for t in live.tasks}
    return [i for i, t in enumerate(heldout.tasks) if _task_key(t) not in seen]


def serve_live(store: Any, cfg: DemoConfig, dom: Any, tau: TauSetup, *, phase: str, seed: int, emit: Emit) -> Any:
    """Serve the split's tasks as live traffic through the wrapped agent; record traces + rewards."""
    from diffprompt.middleware import PromptAdaptationMiddleware
    from diffprompt.store.recorder import Recorder

    recorder = Recorder(store, spool_dir=cfg.home / "spool")
    mw = PromptAdaptationMiddleware(cfg.slot_name, store, recorder=recorder, refresh_s=0.5)
    total = len(dom.tasks) * cfg.live_trials
    emit(DemoEvent(kind="traffic_start", data={"phase": phase, "episodes": total}))
    try:
        summary = tau.run(
            dom, range(len(dom.tasks)), trials=cfg.live_trials, concurrency=cfg.concurrency, system_prompt=None,
            middleware_factory=lambda: [mw], seed=seed,
            on_result=lambda r: emit(DemoEvent(kind="episode", data={"phase": phase, "reward": r.reward})),
        )
        record_rewards(store, summary.results, recorder=recorder, slot=cfg.slot_name)
    finally:
        mw.close()  # flushes and stops the recorder too
    emit(DemoEvent(kind="traffic_done", data={
        "phase": phase, "pass_hat_k": dict(summary.pass_hat_k), "episodes": len(summary.results),
        "errors": summary.errors, "seconds": round(summary.seconds, 2),
    }))
    return summary


def evaluate(cfg: DemoConfig, dom: Any, tau: TauSetup, prompts: Mapping[str, str], indices: list[int], *,
             seed: int, emit: Emit) -> dict[str, float]:
    """pass^1 of each prompt on ``indices`` of the held-out split (same tasks, same seeds; not recorded)."""
    def progress(phase: str) -> Callable[[Any], None]:
        return lambda r: emit(DemoEvent(kind="episode", data={"phase": phase, "reward": r.reward}))

    out: dict[str, float] = {}
    for name, text in prompts.items():
        s = tau.run(dom, indices, trials=cfg.heldout_trials, concurrency=cfg.concurrency, system_prompt=text,
                    seed=seed, on_result=progress(f"heldout:{name}"))
        out[name] = float(s.pass_hat_k.get(1, 0.0))
    emit(DemoEvent(kind="heldout", data={"split": dom.split, "tasks": len(indices), **out}))
    return out


def run_demo(cfg: DemoConfig, *, emit: Emit | None = None) -> DemoResult:
    """Run the whole loop once (see the module docstring).

    Raises ``ConfigError`` before any work for an unusable model endpoint. A rejected candidate is an
    outcome, not an error: the report is written and the result says why.
    """
    from diffprompt.optimize.config import OptimizeConfig
    from diffprompt.optimize.service import OptimizeRequest, run_request
    from diffprompt.report import write_report
    from diffprompt.rollout import monitor
    from diffprompt.store import open_store

    say: Emit = emit or (lambda e: None)
    t0 = time.perf_counter()
    tau = cfg.tau()
    tau.check_endpoints()
    if cfg.editor in LM_EDITORS:  # the editor's endpoint too, before any traffic is served
        check_reachable(f"openai:{model_name(str(cfg.editor_model))}", base_url=cfg.base_url, api_key=cfg.api_key)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = cfg.home / "demo" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    db_url = cfg.db_url or f"sqlite:///{run_dir / 'diffprompt.db'}"
    store = open_store(db_url)
    try:
        live = tau.domain(cfg.live_split)
        heldout = tau.domain(cfg.heldout_split)
        held = heldout_indices(live, heldout)
        seed_version: PromptVersion = store.create_slot(cfg.slot_name, tau.seed_prompt(live), actor="demo")
        official = cfg.tau_data is not None
        say(DemoEvent(kind="setup", data={
            "db_url": db_url, "world": str(live.data_dir), "slot": cfg.slot_name, "seed_version": seed_version.id,
            "scenario": "official data, policy as is" if official else tau.scenario.name,
            "deleted": [] if official else list(tau.scenario.delete),
            "garbled": [] if official else list(tau.scenario.garble),
            "simulated": list(tau.simulated), "judge": judge_description(cfg.judge),
            "editor": f"{cfg.editor} ({cfg.editor_model})" if cfg.editor in LM_EDITORS else cfg.editor,
            "live_tasks": len(live.tasks), "heldout_tasks": len(held), "live_split": cfg.live_split,
            "heldout_split": cfg.heldout_split,
        }))
        before = serve_live(store, cfg, live, tau, phase="before", seed=cfg.seed, emit=say)
        env = f"tau:{cfg.domain}" + (f":{live.data_dir}" if official else "")
        s = tau.scenario
        request = OptimizeRequest(
            slot=cfg.slot_name, env=env, editor=cfg.editor, editor_model=cfg.editor_model,
            model=cfg.model, user=cfg.user, judge=cfg.judge,
            dlm=cfg.dlm, split=cfg.live_split, world_seed=s.world_seed, world_users=s.world_users,
            world_tasks=s.world_tasks, seed=cfg.seed, config=dict(cfg.optimize),
        )
        result = run_request(store, request, home=cfg.home, api_key=cfg.api_key, base_url=cfg.base_url,
                             events=lambda e: say(DemoEvent(kind=f"round:{e.kind}", data=dict(e.data))),
                             meter=tau.meter, actor="demo")
        record = result.record
        say(DemoEvent(kind="candidates", data={"candidates": [
            {"editor": c.editor, "status": c.status, "screen_score": c.screen_score,
             "new_texts": dict(c.new_texts), "reason": c.reason}
            for c in record.candidates
        ], "finalist_diff": record.finalist.diff if record.finalist is not None else "",
            "read_cases": len(record.cases.read_replay_keys) if record.cases is not None else 0,
            "holdout_cases": len(record.cases.holdout) if record.cases is not None else 0}))
        final = store.active_version(cfg.slot_name)
        after, canary = None, None
        if final.id != seed_version.id:
            if cfg.canary_share is not None:  # guarded: the seed stays active, the promoted prompt is a canary
                monitor.guard_promotion(store, cfg.slot_name, incumbent_id=seed_version.id, promoted_id=final.id,
                                        share=cfg.canary_share, actor="demo")
            after = serve_live(store, cfg, live, tau, phase="after", seed=cfg.seed + 1, emit=say)
            if cfg.canary_share is not None:
                rollout = OptimizeConfig.from_dict(dict(cfg.optimize)).rollout
                canary = monitor.summary(monitor.watch_once(store, cfg.slot_name, rollout))
                say(DemoEvent(kind="canary", data=canary))
        scores: dict[str, float] = {}
        if held:
            scores = evaluate(cfg, heldout, tau, {"seed": seed_version.text, "final": final.text}, held,
                              seed=cfg.seed + 7, emit=say)
        live_before = float(before.pass_hat_k.get(1, 0.0))
        live_after = float(after.pass_hat_k.get(1, 0.0)) if after is not None else None
        if canary is not None:  # the promoted prompt's own live threads (the canary arm)
            live_after = canary["canary_mean"]
        extra = {
            "scenario": tau.scenario.describe() if not official else "official data, policy as is",
            "simulated": "; ".join(tau.simulated) or "nothing",
            "judge": judge_description(cfg.judge),
            "live pass^1 before": f"{live_before:.3f}",
            "live pass^1 after": "-" if live_after is None else f"{live_after:.3f}",
        }
        if canary is not None:
            c = {k: f"{v:.3f}" if isinstance(v, float) else str(v) for k, v in canary.items()}
            extra["live canary test"] = (
                f"{c['decision']}: canary {c['canary_mean']} vs incumbent {c['incumbent_mean']} over "
                f"{c['canary_n']} vs {c['incumbent_n']} threads, difference {c['difference']} [{c['lo']}, {c['hi']}]"
            )
        if scores:
            label = f"held-out pass^1 ({cfg.heldout_split} split, {len(held)} tasks the round never saw)"
            extra[f"{label}, seed prompt"] = f"{scores['seed']:.3f}"
            extra[f"{label}, final prompt"] = f"{scores['final']:.3f}"
        report = write_report(store, result.run_id, run_dir / "report.html", extra=extra)
        out = DemoResult(
            db_url=db_url, slot=cfg.slot_name, scenario=str(extra["scenario"]), judge=str(extra["judge"]),
            seed_version=seed_version.id, final_version=final.id, run_id=result.run_id,
            decision=result.decision.kind, reasons=tuple(result.decision.reasons), live_before=live_before,
            live_after=live_after, heldout_split=cfg.heldout_split, heldout_tasks=len(held),
            heldout_seed=scores.get("seed"), heldout_final=scores.get("final"), report=report,
            seconds=round(time.perf_counter() - t0, 1), canary=canary,
        )
        say(DemoEvent(kind="done", data=out.as_dict()))
        return out
    finally:
        store.close()
