"""SimulatedChatModel: the LangChain adapter over SimulatedPolicy, in create_agent and alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tau_envs.domain import load_domain
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.runner import run_tau
from tau_envs.sim.chat_model import SimulatedChatModel
from tau_envs.users.scripted import ScriptedUser


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world("airline", seed=3, n_users=40, n_tasks=14, out_dir=tmp_path_factory.mktemp("w") / "a")


def test_tool_call_and_usage_shape(world: Path) -> None:
    dom = load_domain("airline", world, split="test")
    model = SimulatedChatModel(domain="airline", seed=0).bind_tools(dom.tools_info)
    task = dom.tasks[0]
    first = ScriptedUser().reset(task, seed=0)
    msg = model.invoke([SystemMessage(dom.policy), HumanMessage(first)])
    assert msg.usage_metadata and msg.usage_metadata["input_tokens"] > 0
    assert len(msg.tool_calls) <= 1
    again = model.invoke([SystemMessage(dom.policy), HumanMessage(first)])
    assert again.content == msg.content and again.tool_calls == msg.tool_calls  # deterministic


def test_prompt_quality_changes_reward_through_create_agent(world: Path) -> None:
    dom = load_domain("airline", world, split="test")
    from tau_envs.rules import rules_for

    rules = rules_for("airline")
    ids = [r.id for r in rules][:6]
    weak = degrade_policy(dom.policy, rules, delete=ids, seed=0)

    def score(prompt: str) -> float:
        s = run_tau(
            dom, list(range(len(dom.tasks))), trials=1, concurrency=2,
            model_factory=lambda seed: SimulatedChatModel(domain="airline", seed=seed),
            user_factory=lambda task, seed: ScriptedUser(), system_prompt=prompt, seed=0,
        )
        assert not s.errors
        return s.mean_reward

    full, degraded = score(dom.policy), score(weak)
    assert full > degraded + 0.15, (full, degraded)
