"""A user simulator that raises ends the episode as a recorded failure (the trace is kept)."""

from __future__ import annotations

from tau_envs.runner import run_episode
from tau_envs.users.scripted import ScriptedUser
from tests.tau_runner.fakes import ScriptedModel, ai, call, script
from tests.tau_runner.test_episode import FakeDomain


class BrokenUser:
    def reset(self, task, *, seed):
        return "hi, cancel my trip"

    def step(self, agent_message):
        raise KeyError("email")


def test_user_exception_is_a_recorded_failure_with_the_conversation():
    dom = FakeDomain()
    model = ScriptedModel(policy=script([ai("", call("get_user", x="1")), ai("What is your email?")]))
    res = run_episode(dom, dom.task(0), model=model, user=BrokenUser(), system_prompt="POLICY", seed=0)
    assert res.reward == 0.0
    assert res.error is not None and "user simulator failed: KeyError" in res.error
    roles = [m["role"] for m in res.messages]
    assert roles[:4] == ["system", "user", "assistant", "tool"] and "assistant" in roles[4:]


def test_scripted_airline_user_answers_an_email_question():
    user = ScriptedUser()
    user._intent = {"kind": "cancel", "user_id": "mia_li_3668", "reservation_id": "ABC123"}
    reply = user._answer("could you give me your email address?")
    assert "mia_li_3668" in reply and "email" in reply
