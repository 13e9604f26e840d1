"""agents/tau_agent.py: create_agent + diffprompt middleware records one trace per τ episode, with
the pinned prompt, first-tool-call-only turns, the replay key and the reward as feedback."""

from __future__ import annotations

from agents.tau_agent import build_agent, run_one
from diffprompt.store.memory import MemoryStore
from diffprompt.store.recorder import Recorder
from tests.tau_runner.fakes import ListUser, ScriptedModel, ai, call, script
from tests.tau_runner.test_episode import FakeDomain


def test_episode_is_one_trace_with_pinned_prompt_replay_key_and_reward() -> None:
    store = MemoryStore()
    seed = store.create_slot("tau-air", "# Policy\n\nAlways confirm before cancelling.\n")
    recorder = Recorder(store)
    dom = FakeDomain()
    model = ScriptedModel(
        policy=script(
            [
                ai("", call("get_user", x="1"), call("cancel", x="dropped")),
                ai("", call("cancel", x="A")),
                ai("Your trip is cancelled."),
            ]
        )
    )
    agent = build_agent(dom, model, store=store, slot="tau-air", recorder=recorder)
    results = [run_one(agent, dom, i, user=ListUser(), store=store, recorder=recorder) for i in (0, 2)]
    recorder.close()
    assert [r.reward for r in results] == [1.0, 1.0]
    # the model was served the slot's pinned prompt
    assert model.requests[0][0].content == seed.text
    window = store.window("tau-air")
    assert len(window) == 2
    assert sorted(t.trace.replay_key or "" for t in window) == ["tau:airline:test:0", "tau:airline:test:2"]
    assert all(t.reward == 1.0 for t in window)
    tr = window[0].trace
    assert tr.version_id == seed.id and tr.messages[0] == {"role": "system", "content": seed.text}
    assistant_calls = [len(m.get("tool_calls") or []) for m in tr.messages if m["role"] == "assistant"]
    assert assistant_calls == [1, 1, 0]  # the dropped parallel call is not in the trace
    assert tr.messages[-1] == {"role": "user", "content": "###STOP###"}
    assert {r.trace_id for r in results} == {t.trace.id for t in window}


def test_run_tau_with_middleware_records_failed_episodes_with_reward_zero() -> None:
    from typing import Any

    from diffprompt.middleware import PromptAdaptationMiddleware
    from tau_envs.runner import record_rewards, run_tau

    store = MemoryStore()
    store.create_slot("s", "# Policy\n\nBe careful.\n")
    mw = PromptAdaptationMiddleware("s", store, recorder=Recorder(store))
    dom = FakeDomain()

    def policy(messages: Any) -> Any:
        if messages[1].content == "task 1":
            raise RuntimeError("provider down")
        n = sum(m.type == "ai" for m in messages)
        return [ai("", call("get_user", x="1")), ai("", call("cancel", x="A")), ai("done")][min(n, 2)]

    summ = run_tau(
        dom,
        [0, 1, 2],
        trials=2,
        concurrency=3,
        model_factory=lambda s: ScriptedModel(policy=policy),
        user_factory=lambda t, s: ListUser(first=f"task {t.index}"),
        system_prompt=None,
        middleware_factory=lambda: [mw],
    )
    mw.close()
    assert summ.errors == 2
    assert record_rewards(store, summ.results, slot="s") == 6
    window = store.window("s")
    assert len(window) == 6
    failed = [t for t in window if t.trace.replay_key == "tau:airline:test:1"]
    assert len(failed) == 2 and all(t.reward == 0.0 and t.trace.error for t in failed)
    assert sorted(t.reward or 0.0 for t in window) == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
