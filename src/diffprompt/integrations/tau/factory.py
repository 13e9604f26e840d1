"""The one τ factory: world, target model, user simulator and judge from specs, resolved once.

``build_tau(...)`` validates the specs (``ConfigError`` naming the fix) and returns a ``TauSetup``
that the demo, ``diffprompt tau run``, ``optimize --env tau:...`` (through ``optimize.build``), the
scheduler and ``bench/optimize.py`` all use:

- ``setup.domain(split)`` — official/user data from ``data_dir``, else the scenario's generated world
  (cached under ``home/worlds``);
- ``setup.seed_prompt(domain)`` — the scenario's degraded policy (official data is served as is);
- ``setup.model_factory`` / ``setup.user_factory`` — ``(seed) -> chat model`` and
  ``(task, seed) -> user simulator``;
- ``setup.replay(domain)`` — a ``TauReplay``; ``setup.blamer(domain, judge=...)`` — the round's judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from diffprompt.errors import ConfigError
from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO, Scenario, default_scenario
from diffprompt.llm import CallMeter, ModelSpec, check_reachable, make_chat_model, parse_model_spec

ModelFactory = Callable[[int], Any]
UserFactory = Callable[[Any, int], Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class UserSpec:
    """``scripted`` (offline, driven by the task's intent) or ``llm:NAME`` (OpenAI-compatible)."""

    kind: Literal["scripted", "llm"]
    model: str = ""

    def __str__(self) -> str:
        return "scripted" if self.kind == "scripted" else f"llm:{self.model}"


def parse_user_spec(spec: str) -> UserSpec:
    """``scripted`` | ``llm:NAME`` → ``UserSpec`` (``ConfigError`` otherwise)."""
    text = spec.strip()
    if text == "scripted":
        return UserSpec(kind="scripted")
    kind, sep, name = text.partition(":")
    if kind == "llm" and sep and name.strip():
        return UserSpec(kind="llm", model=name.strip())
    raise ConfigError(f"unknown --user {spec!r}: use 'scripted' (offline) or 'llm:MODEL' (OpenAI-compatible)")


def target_model(
    spec: str | ModelSpec,
    *,
    domain: str,
    seed: int = 0,
    base_url: str | None = None,
    api_key: str | None = None,
    meter: CallMeter | None = None,
    **kw: Any,
) -> Any:
    """The τ agent's target model: ``sim`` → the simulated policy for ``domain``; else ``make_chat_model``."""
    ms = parse_model_spec(spec) if isinstance(spec, str) else spec
    if ms.provider != "sim":
        return make_chat_model(ms, base_url=base_url, api_key=api_key, seed=seed, meter=meter, **kw)
    from langchain_core.callbacks import BaseCallbackHandler

    from diffprompt.llm import MeterCallback
    from tau_envs.sim.chat_model import SimulatedChatModel

    callbacks: list[BaseCallbackHandler] | None = None if meter is None else [MeterCallback(meter, ms.name)]
    return SimulatedChatModel(domain=domain, seed=seed, callbacks=callbacks)


def make_user_factory(
    spec: UserSpec, *, base_url: str | None = None, api_key: str | None = None, meter: CallMeter | None = None
) -> UserFactory:
    """``(task, seed) -> UserSimulator`` for a parsed user spec (one client shared by every episode)."""
    if spec.kind == "scripted":
        from tau_envs.users.scripted import ScriptedUser

        return lambda task, seed: ScriptedUser()
    from diffprompt.llm import ChatClient
    from tau_envs.users.llm import LLMUser

    client = ChatClient(spec.model, base_url=base_url, api_key=api_key, meter=meter)
    return lambda task, seed: LLMUser(client)


@dataclass(frozen=True, kw_only=True)
class TauSetup:
    """A resolved τ set-up (see the module docstring). Build it with ``build_tau``."""

    scenario: Scenario
    home: Path | None
    data_dir: Path | None
    model: ModelSpec
    user: UserSpec
    base_url: str | None
    api_key: str | None
    user_base_url: str | None
    meter: CallMeter = field(default_factory=CallMeter)
    max_steps: int = 30

    @property
    def domain_name(self) -> str:
        return self.scenario.domain

    @property
    def simulated(self) -> tuple[str, ...]:
        """What is simulated in this set-up, in words (the demo prints it)."""
        out = []
        if self.data_dir is None:
            out.append(f"a generated τ {self.domain_name} world (seed {self.scenario.world_seed})")
        if self.model.provider == "sim":
            out.append("the target model (a seeded rule-following policy, `--model sim`)")
        if self.user.kind == "scripted":
            out.append("the users (scripted from each task's intent)")
        return tuple(out)

    def check_endpoints(self) -> None:
        """Fail fast (before any work) when a real model is asked for without a key or reachable URL."""
        check_reachable(self.model, base_url=self.base_url, api_key=self.api_key)
        if self.user.kind == "llm":
            check_reachable(f"openai:{self.user.model}", base_url=self.user_base_url or self.base_url,
                            api_key=self.api_key)

    def world_dir(self) -> Path:
        """The data directory: ``data_dir`` (or its ``<domain>/`` child), else the cached generated world."""
        if self.data_dir is not None:
            child = self.data_dir / self.domain_name
            return child if child.is_dir() else self.data_dir
        from tau_envs.runner import cached_world

        if self.home is None:
            raise ConfigError("a generated τ world needs a home directory (--home or DIFFPROMPT_HOME)")
        s = self.scenario
        return cached_world(s.domain, home=self.home, seed=s.world_seed, n_users=s.world_users,
                            n_tasks=s.world_tasks)

    def domain(self, split: str = "test") -> Any:
        """The loaded τ domain of ``split``."""
        from tau_envs.domain import load_domain

        return load_domain(self.domain_name, self.world_dir(), split=split)

    def seed_prompt(self, domain: Any) -> str:
        """The scenario's degraded policy; official or user data (``data_dir``) is served as is."""
        if self.data_dir is not None:
            return str(domain.policy)
        return self.scenario.degrade(domain.policy, domain.rules)

    def model_factory(self, seed: int) -> Any:
        """A fresh target model seeded with ``seed`` (metered by ``self.meter``)."""
        return target_model(self.model, domain=self.domain_name, seed=seed, base_url=self.base_url,
                            api_key=self.api_key, meter=self.meter)

    @property
    def user_factory(self) -> UserFactory:
        return make_user_factory(self.user, base_url=self.user_base_url or self.base_url, api_key=self.api_key,
                                 meter=self.meter)

    def run(
        self,
        domain: Any,
        tasks: Sequence[int],
        *,
        trials: int,
        concurrency: int,
        system_prompt: str | None,
        middleware_factory: Callable[[], Sequence[Any]] | None = None,
        seed: int = 0,
        on_result: Callable[[Any], None] | None = None,
    ) -> Any:
        """``tau_envs.runner.run_tau`` over ``tasks`` with this set-up's model, users and step limit."""
        from tau_envs.runner import run_tau

        return run_tau(domain, list(tasks), trials=trials, concurrency=concurrency, model_factory=self.model_factory,
                       user_factory=self.user_factory, system_prompt=system_prompt,
                       middleware_factory=middleware_factory, seed=seed, max_steps=self.max_steps,
                       on_result=on_result)

    def replay(self, domain: Any) -> Any:
        """A ``TauReplay`` on ``domain`` with this set-up's model and users."""
        from diffprompt.integrations.tau.replay import TauReplay

        return TauReplay(domain, model_factory=self.model_factory, user_factory=self.user_factory,
                         max_steps=self.max_steps)


def build_tau(
    domain: str | None = None,
    *,
    home: Path | None,
    scenario: Scenario | None = None,
    data_dir: Path | None = None,
    world_seed: int | None = None,
    world_users: int | None = None,
    world_tasks: int | None = None,
    model: str | ModelSpec = "sim",
    user: str = "scripted",
    base_url: str | None = None,
    api_key: str | None = None,
    user_base_url: str | None = None,
    meter: CallMeter | None = None,
    max_steps: int = 30,
) -> TauSetup:
    """Resolve the specs into a ``TauSetup``; nothing is generated, loaded or called yet.

    ``scenario`` defaults to the domain's default (``DEFAULT_SCENARIO`` for airline); the world
    arguments override its world. Raises ``ConfigError`` for an unknown domain, model or user spec.
    """
    base = scenario or (default_scenario(domain) if domain else DEFAULT_SCENARIO)
    if domain is not None and domain != base.domain:
        raise ConfigError(f"scenario {base.name!r} is a {base.domain} scenario, not {domain}")
    if max_steps < 1:
        raise ConfigError("--max-steps must be >= 1")
    return TauSetup(
        scenario=base.with_world(seed=world_seed, users=world_users, tasks=world_tasks),
        home=Path(home) if home is not None else None,
        data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
        model=parse_model_spec(model) if isinstance(model, str) else model,
        user=parse_user_spec(user),
        base_url=base_url,
        api_key=api_key,
        user_base_url=user_base_url,
        meter=meter if meter is not None else CallMeter(),
        max_steps=max_steps,
    )


def record_rewards(store: Any, results: Sequence[Any], *, recorder: Any = None, slot: str | None = None) -> int:
    """Attach each recorded episode's reward as ``reward`` feedback (``tau_envs.runner.record_rewards``)."""
    from tau_envs.runner import record_rewards as _record

    return _record(store, results, recorder=recorder, slot=slot)


def judge_description(judge: str | None) -> str:
    """In words, which judge ``tau_blamer`` / ``build_blamer`` use for ``judge`` (the demo prints it)."""
    from diffprompt.integrations.tau.oracle import ORACLE_JUDGE

    if judge is None:
        return ("evidence judge (offline, honest): it reads the conversation, the tool calls and results, the "
                "reward, the user's comments and the environment's differing writes, never the rule book")
    if judge == ORACLE_JUDGE:
        return ("oracle: the simulated model's own account of each failure (it reads the rule book, so it "
                "is an upper bound, not a real judge)")
    return f"LLM judge {judge} (OpenAI-compatible), reading the traces and their feedback"


def tau_blamer(domain: Any, *, judge: str | None = None, protected: Sequence[str] = ()) -> Any:
    """The offline τ judge for ``domain``: the honest evidence judge, or the oracle by name.

    ``judge="oracle"`` → the simulated model's own failure explanation (a labelled upper bound).
    Otherwise the honest evidence judge (``tau_envs.judge.TauJudge``): conversation, reward, user
    feedback and the environment's evidence only — never the rule catalogue.
    """
    from diffprompt.integrations.tau.oracle import ORACLE_JUDGE, tau_explainer
    from diffprompt.optimize.attribution import ExplainBlamer
    from tau_envs.rules import Rule, rules_for

    if judge not in (None, ORACLE_JUDGE):
        raise ConfigError(f"unknown offline judge {judge!r}: use 'oracle' or an OpenAI-compatible model")
    if judge is None:
        from tau_envs.judge import TauJudge

        return TauJudge(domain, protected=protected)
    rules = [Rule.from_json(r) if isinstance(r, dict) else r for r in domain.rules] or list(rules_for(domain.name))
    return ExplainBlamer(tau_explainer(domain.tools_info, rules), protected=protected)
