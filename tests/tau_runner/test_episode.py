"""Official τ episode semantics through the create_agent τ agent, with fakes for model and user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tau_envs.runner import EpisodeResult, episode_seed, run_episode, run_tau
from tau_envs.types import MAX_STEPS, STOP_TOKEN, TRANSFER_TOOL, Action, RewardInfo, StepResult, Task
from tests.tau_runner.fakes import ListUser, ScriptedModel, ai, call, script

TOOLS_INFO = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": []},
        },
    }
    for name in ("get_user", "cancel", TRANSFER_TOOL)
]


@dataclass
class FakeEnv:
    actions: list[Action] = field(default_factory=list)
    done: bool = False

    def step(self, action: Action) -> StepResult:
        self.actions.append(action)
        if action.name == TRANSFER_TOOL:
            self.done = True
            return StepResult(observation="Transfer successful", done=True)
        if action.name not in ("get_user", "cancel"):
            return StepResult(observation=f"Unknown action {action.name}", done=False)
        return StepResult(observation=f"{action.name} ok {dict(action.kwargs)}", done=False)

    def reward(self, agent_texts: list[str]) -> RewardInfo:
        ok = [a.name for a in self.actions] == ["get_user", "cancel"]
        return RewardInfo(reward=1.0 if ok else 0.0, db_hash="h", gold_hash="h" if ok else "g", outputs_ok=True)


class FakeDomain:
    name = "airline"
    split = "test"
    tools_info = TOOLS_INFO

    def __init__(self) -> None:
        self.tasks = [Task(index=i, user_id=f"u{i}", instruction="cancel my trip", actions=()) for i in range(3)]
        self.envs: list[FakeEnv] = []

    def task(self, i: int) -> Task:
        return self.tasks[i]

    def make_env(self, task: Task) -> FakeEnv:
        env = FakeEnv()
        self.envs.append(env)
        return env


def _run(turns: list[Any], replies: tuple[str, ...] = (STOP_TOKEN,), **kw: Any) -> tuple[EpisodeResult, Any]:
    dom = FakeDomain()
    model = ScriptedModel(policy=script(turns) if isinstance(turns, list) else turns)
    res = run_episode(
        dom, dom.tasks[0], model=model, user=ListUser(replies=replies), system_prompt="POLICY", seed=7, **kw
    )
    return res, (dom, model)


def test_success_path_executes_tools_and_ends_on_stop() -> None:
    res, (dom, model) = _run([ai("", call("get_user", x="1")), ai("", call("cancel", x="A")), ai("Done, cancelled.")])
    assert res.error is None
    assert res.reward == 1.0 and res.stop_reason == "stop" and res.steps == 3
    assert [a.name for a in dom.envs[0].actions] == ["get_user", "cancel"]
    roles = [m["role"] for m in res.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
    assert res.messages[0]["content"] == "POLICY"
    assert res.messages[-1]["content"] == STOP_TOKEN
    assert res.messages[3]["content"] == "get_user ok {'x': '1'}"
    # the model saw the system prompt and the tool schemas verbatim
    assert model.requests[0][0].content == "POLICY"
    assert res.usage.input_tokens == 30 and res.usage.output_tokens == 6


def test_only_first_tool_call_of_a_turn_is_executed() -> None:
    res, (dom, model) = _run(
        [
            ai("", call("get_user", x="1"), call("cancel", x="A"), call("cancel", x="B")),
            ai("", call("cancel", x="A")),
            ai("bye"),
        ]
    )
    assert [a.kwargs for a in dom.envs[0].actions] == [{"x": "1"}, {"x": "A"}]
    assert res.dropped_tool_calls == 2
    first_turn = res.messages[2]
    assert len(first_turn["tool_calls"]) == 1
    # the dropped calls are invisible to the model on its next turn as well
    assert len(model.requests[1][2].tool_calls) == 1
    assert res.reward == 1.0


def test_transfer_ends_the_episode_and_is_scored() -> None:
    res, (_dom, model) = _run([ai("", call("get_user", x="1")), ai("", call(TRANSFER_TOOL, x="s")), ai("never")])
    assert res.stop_reason == "transfer" and res.steps == 2 and len(model.requests) == 2
    assert res.reward_info is not None and res.reward == 0.0
    assert res.messages[-1]["role"] == "tool"


def test_user_turns_continue_until_stop_token() -> None:
    replies = ("my id is u0", "yes please", f"thanks {STOP_TOKEN}")
    user_seen: list[str] = []
    res, _ = _run(
        [
            ai("what is your id?"),
            ai("", call("get_user", x="u0")),
            ai("confirm?"),
            ai("", call("cancel", x="A")),
            ai("cancelled"),
        ],
        replies=replies,
    )
    assert res.stop_reason == "stop" and res.reward == 1.0
    assert [m["content"] for m in res.messages if m["role"] == "user"][1:] == list(replies)
    del user_seen


def test_step_limit_ends_with_reward_zero() -> None:
    res, (dom, model) = _run([ai("", call("get_user", x="1"))])  # loops on tool calls forever
    assert res.steps == MAX_STEPS and len(model.requests) == MAX_STEPS
    assert res.stop_reason == "max_steps" and res.reward == 0.0 and res.reward_info is None
    assert len(dom.envs[0].actions) == MAX_STEPS  # the 30th step's tool call still runs
    assert res.error is None


def test_stop_on_the_last_allowed_step_still_counts() -> None:
    res, _ = _run([ai("", call("get_user", x="1")), ai("", call("cancel", x="A")), ai("done")], max_steps=3)
    assert res.steps == 3 and res.stop_reason == "stop" and res.reward == 1.0


def test_unknown_tool_is_an_observation_not_a_crash() -> None:
    res, _ = _run([ai("", call("fly_to_moon", x="1")), ai("sorry")])
    assert res.error is None
    assert res.messages[3]["content"] == "Unknown action fly_to_moon"


def test_model_exception_ends_episode_with_reward_zero_and_error() -> None:
    def boom(messages: Any) -> Any:
        if len(messages) > 3:
            raise RuntimeError("provider exploded")
        return ai("", call("get_user", x="1"))

    res, _ = _run(boom)
    assert res.reward == 0.0 and res.error is not None and "provider exploded" in res.error
    assert res.steps == 2


def test_user_exception_is_data_too() -> None:
    class BadUser(ListUser):
        def step(self, agent_message: str) -> str:
            raise ValueError("user sim down")

    dom = FakeDomain()
    res = run_episode(
        dom,
        dom.tasks[0],
        model=ScriptedModel(policy=script([ai("hello")])),
        user=BadUser(),
        system_prompt="P",
        seed=1,
    )
    assert res.reward == 0.0 and "user sim down" in (res.error or "")


def test_run_tau_concurrent_is_deterministic_and_isolates_failures() -> None:
    dom = FakeDomain()

    def policy(messages: Any) -> Any:
        first_user = messages[1].content
        if first_user == "task 1":
            raise RuntimeError("bad task")
        n = sum(1 for m in messages if m.type == "ai")
        return [ai("", call("get_user", x="1")), ai("", call("cancel", x="A")), ai("done")][min(n, 2)]

    def user_factory(task: Task, seed: int) -> ListUser:
        return ListUser(first=f"task {task.index}")

    seen: list[EpisodeResult] = []
    summ = run_tau(
        dom,
        [0, 1, 2],
        trials=3,
        concurrency=4,
        model_factory=lambda s: ScriptedModel(policy=policy),
        user_factory=user_factory,
        system_prompt=lambda t, k: f"P{t.index}",
        seed=5,
        on_result=seen.append,
    )
    assert len(summ.results) == 9 and len(seen) == 9
    assert [(r.task_index, r.trial) for r in summ.results] == [(t, k) for t in range(3) for k in range(3)]
    assert summ.errors == 3 and all("bad task" in (r.error or "") for r in summ.results if r.task_index == 1)
    assert summ.pass_hat_k == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 2 / 3})
    assert [r.seed for r in summ.results] == [episode_seed(5, t, k) for t in range(3) for k in range(3)]
    assert summ.results[0].messages[0]["content"] == "P0"
    assert len({r.thread_id for r in summ.results}) == 9


def test_episode_seed_is_stable_and_distinct() -> None:
    seeds = {episode_seed(0, t, k) for t in range(50) for k in range(4)}
    assert len(seeds) == 200
    assert episode_seed(3, 2, 1) == episode_seed(3, 2, 1)


def test_official_task_replaying_gold_actions_scores_one(tau_data) -> None:  # type: ignore[no-untyped-def]
    from tau_envs.domain import load_domain

    dom = load_domain("retail", tau_data, split="dev")
    task = next(t for t in dom.tasks if t.actions and t.actions[-1].name != TRANSFER_TOOL)
    turns = [ai("", call(a.name, **dict(a.kwargs))) for a in task.actions]
    turns.append(ai("All done. " + " ".join(task.outputs)))
    res = run_episode(
        dom,
        task,
        model=ScriptedModel(policy=script(turns)),
        user=ListUser(),
        system_prompt=dom.policy,
        seed=0,
    )
    assert res.error is None and res.stop_reason == "stop"
    assert res.reward_info is not None and res.reward_info.db_hash == res.reward_info.gold_hash
    assert res.reward == 1.0
    # a wrong final answer (missing required outputs, or a skipped write) scores 0 on the same task
    bad = run_episode(
        dom,
        task,
        model=ScriptedModel(policy=script([ai("bye")])),
        user=ListUser(),
        system_prompt=dom.policy,
        seed=0,
    )
    assert bad.reward == 0.0 and bad.error is None
