"""The one τ factory (``diffprompt.integrations.tau``): specs, scenarios, judges, replay cases."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from diffprompt.errors import ConfigError
from diffprompt.integrations.tau import (
    DEFAULT_SCENARIO,
    RETAIL_SCENARIO,
    TauReplay,
    build_tau,
    default_scenario,
    get_scenario,
    target_model,
    tau_blamer,
)
from diffprompt.integrations.tau.factory import judge_description
from diffprompt.types import Feedback, Trace, TraceWithFeedback, new_id, utcnow
from tau_envs.rules import rules_for

SMALL = {"world_users": 30, "world_tasks": 6}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tau-home")


def test_bad_specs_are_config_errors(home: Path) -> None:
    with pytest.raises(ConfigError, match="unknown domain"):
        build_tau("space", home=home)
    with pytest.raises(ConfigError, match="--user"):
        build_tau("airline", home=home, user="robot")
    with pytest.raises(ConfigError):
        build_tau("airline", home=home, model="gpt-4o")  # neither sim nor openai:NAME
    with pytest.raises(ConfigError, match="retail scenario"):
        build_tau("airline", home=home, scenario=RETAIL_SCENARIO)
    with pytest.raises(ConfigError, match="unknown scenario"):
        get_scenario("nope")
    with pytest.raises(ConfigError, match="home"):
        build_tau("airline", home=None).domain("test")


def test_one_default_scenario_per_domain() -> None:
    assert default_scenario("airline") is DEFAULT_SCENARIO and default_scenario("retail") is RETAIL_SCENARIO
    assert get_scenario(DEFAULT_SCENARIO.name) is DEFAULT_SCENARIO
    setup = build_tau(home=Path("."))
    assert setup.scenario == DEFAULT_SCENARIO  # no world override: the scenario as named
    assert build_tau(home=Path("."), world_tasks=7).scenario == DEFAULT_SCENARIO.with_world(tasks=7)


@pytest.mark.parametrize("scenario", [DEFAULT_SCENARIO, RETAIL_SCENARIO], ids=lambda s: s.name)
def test_scenario_degrades_the_worlds_policy_the_same_way_every_time(home: Path, scenario) -> None:
    setup = build_tau(scenario.domain, home=home, **SMALL)
    dom = setup.domain("test")
    seed = setup.seed_prompt(dom)
    assert seed == setup.seed_prompt(dom)  # fixed by the scenario, not by a run's seed
    by_id = {r.id: r for r in rules_for(scenario.domain)}
    for rid in scenario.delete + scenario.garble:
        assert by_id[rid].text in dom.policy and by_id[rid].text not in seed
    assert len(seed) < len(dom.policy)


def test_judges_honest_by_default_oracle_only_by_name(home: Path) -> None:
    from diffprompt.optimize.attribution import ExplainBlamer
    from tau_envs.judge import TauJudge

    dom = build_tau("airline", home=home, **SMALL).domain("test")
    assert isinstance(tau_blamer(dom), TauJudge)
    assert isinstance(tau_blamer(dom, judge="oracle"), ExplainBlamer)
    with pytest.raises(ConfigError, match="oracle"):
        tau_blamer(dom, judge="gpt-4o")
    assert judge_description(None).startswith("evidence judge") and "never the rule book" in judge_description(None)
    assert judge_description("oracle").startswith("oracle") and "upper bound" in judge_description("oracle")


def test_build_routes_tau_through_the_factory(home: Path) -> None:
    from diffprompt.optimize import build
    from tau_envs.judge import TauJudge

    spec = build.parse_env_spec("tau:airline")
    dom = build.build_domain(spec, home=home, world_users=30, world_tasks=6)
    env = build.build_env(dom)
    assert isinstance(env, TauReplay) and env.domain is dom
    assert isinstance(build.build_blamer(dom), TauJudge)


def test_sim_target_lives_in_the_integration() -> None:
    from diffprompt.llm import make_chat_model
    from tau_envs.sim.chat_model import SimulatedChatModel

    m = target_model("sim", domain="airline", seed=3)
    assert isinstance(m, SimulatedChatModel) and m.seed == 3 and m.domain == "airline"
    with pytest.raises(ConfigError, match=r"integrations\.tau"):
        make_chat_model("sim")


def _trace(key: str, reward: float, thread: str) -> TraceWithFeedback:
    now = utcnow()
    tr = Trace(id=new_id("tr_"), slot="s", version_id=None, thread_id=thread, messages=(), started_at=now,
               ended_at=now, replay_key=key)
    return TraceWithFeedback(trace=tr, feedback=(Feedback(trace_id=tr.id, kind="reward", value=reward, source="env"),))


def test_replay_cases_do_not_depend_on_arrival_order(home: Path) -> None:
    setup = build_tau("airline", home=home, **SMALL)
    env = setup.replay(setup.domain("test"))
    traces = [_trace(f"tau:airline:test:{i % 4}", float(i % 3 == 0), f"tau-run-{i % 4}-{i // 4}") for i in range(8)]
    traces.append(_trace("tau:airline:train:0", 0.0, "other-split"))
    first = env.cases(traces)
    shuffled = list(traces)
    random.Random(1).shuffle(shuffled)
    again = env.cases(shuffled)
    assert [(c.id, c.trace_id) for c in first] == [(c.id, c.trace_id) for c in again]
    assert [c.id for c in first] == [f"tau:airline:test:{i}" for i in range(4)]  # task order, this split only
    reward = {t.trace.id: t.reward for t in traces}
    assert reward[first[1].trace_id] == 0.0  # task 1 has a success and a failure: the failure stands for it
    assert replace(first[0]).data == {"index": 0}
