"""Scripted users complain like users and push back on refusals; generated task mixes have the
official share of refusal tasks; the do-nothing baseline scores no more than that share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffprompt.store.memory import MemoryStore
from diffprompt.types import Trace, utcnow
from tau_envs.baseline import DoNothingModel, do_nothing_pass1, no_write_share
from tau_envs.domain import load_domain
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.generate.common import OFFICIAL_NO_WRITE_SHARE
from tau_envs.rules import rules_for
from tau_envs.runner import EpisodeResult, record_rewards, run_episode
from tau_envs.types import STOP_TOKEN, FeedbackUser, Task
from tau_envs.users.scripted import ScriptedUser

WRITES = {
    "airline": {"book_reservation", "cancel_reservation", "send_certificate", "update_reservation_baggages",
                "update_reservation_flights", "update_reservation_passengers"},
    "retail": {"cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
               "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
               "return_delivered_order_items"},
}


def _task(**intent: Any) -> Task:
    base = {"kind": "cancel", "user_id": "ana_lee_1234", "reservation_id": "ABC123", "reason": "change of plan",
            "decline": False, "expect": "act"}
    return Task(index=0, user_id="ana_lee_1234", instruction="", actions=(), intent={**base, **intent})


def test_an_unwanted_change_gets_a_complaint_in_the_users_words() -> None:
    phrasings = set()
    for seed in range(12):
        user = ScriptedUser()
        user.reset(_task(decline=True), seed=seed)
        reply = user.step("All done: your request has been completed successfully.")
        assert STOP_TOKEN in reply and user.feedback() and user.feedback()[0] in reply
        assert isinstance(user, FeedbackUser)
        phrasings.add(user.feedback()[0])
    assert len(phrasings) >= 2  # seeded, varied phrasing


def test_no_complaint_when_the_user_agreed_or_nothing_was_changed() -> None:
    user = ScriptedUser()
    user.reset(_task(), seed=1)
    assert "Yes" in user.step("To be sure: cancel reservation ABC123. Shall I proceed (yes/no)?")
    assert STOP_TOKEN in user.step("The change has been made successfully. Is there anything else?")
    assert user.feedback() == ()
    declined = ScriptedUser()
    declined.reset(_task(decline=True), seed=1)
    assert declined.step("Here is what I will do: cancel ABC123. Do you confirm (yes/no)?").startswith("No")
    assert STOP_TOKEN in declined.step("Understood, I will not make this change. No changes were made.")
    assert declined.feedback() == ()


def test_a_refusal_is_pushed_back_a_bounded_number_of_times() -> None:
    for expect, pushes, complains in (("act", 2, True), ("refuse", 1, False)):
        user = ScriptedUser()
        user.reset(_task(expect=expect), seed=3)
        replies = [user.step("I'm sorry, but I cannot do that.") for _ in range(pushes + 1)]
        assert all(STOP_TOKEN not in r for r in replies[:pushes]), replies
        assert "ABC123" in replies[0]  # the pushback names the user's goal
        assert STOP_TOKEN in replies[pushes]
        assert bool(user.feedback()) is complains
        assert user.step("Anything else?") == STOP_TOKEN


def test_same_seed_same_conversation() -> None:
    def talk(seed: int) -> list[str]:
        u = ScriptedUser()
        out = [u.reset(_task(decline=True), seed=seed)]
        out += [u.step("Sorry, I cannot."), u.step("All done: it has been completed successfully.")]
        return out

    assert talk(5) == talk(5)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {d: generate_world(d, seed=2, n_users=80, n_tasks=60, out_dir=tmp_path_factory.mktemp(d))
            for d in ("airline", "retail")}


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_generated_mix_has_the_official_share_of_refusal_tasks(worlds: dict[str, Path], domain: str) -> None:
    for split in ("test", "train"):
        dom = load_domain(domain, worlds[domain], split=split)
        no_write = [t for t in dom.tasks if not {a.name for a in t.actions} & WRITES[domain]]
        assert len(no_write) == round(len(dom.tasks) * OFFICIAL_NO_WRITE_SHARE[domain])
        assert no_write_share(dom) == pytest.approx(len(no_write) / len(dom.tasks))
        assert all(t.intent and (t.intent["expect"] == "refuse" or t.intent["decline"]) for t in no_write)


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_official_share_matches_the_official_data(tau_data: Path, domain: str) -> None:
    tasks = json.loads((tau_data / domain / "tasks_test.json").read_text())
    no_write = [t for t in tasks if not {a["name"] for a in t["actions"]} & WRITES[domain]]
    assert len(no_write) / len(tasks) == pytest.approx(OFFICIAL_NO_WRITE_SHARE[domain])


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_do_nothing_scores_only_the_refusal_share(worlds: dict[str, Path], domain: str) -> None:
    dom = load_domain(domain, worlds[domain])
    tasks = dom.tasks[:30]
    score = do_nothing_pass1(dom, user_factory=lambda t, s: ScriptedUser(), tasks=tasks, concurrency=2)
    assert score.pass1 <= score.no_write_share + 1e-9
    assert score.no_write_share == pytest.approx(no_write_share(dom, tasks))
    res = run_episode(dom, tasks[0], model=DoNothingModel(), user=ScriptedUser(), system_prompt="", seed=0)
    assert not any(m.get("tool_calls") for m in res.messages)


def test_complaints_land_as_comment_feedback(worlds: dict[str, Path]) -> None:
    from tau_envs.sim.chat_model import SimulatedChatModel

    dom = load_domain("airline", worlds["airline"])
    degraded = degrade_policy(dom.policy, list(rules_for("airline")), delete=["airline.confirm"])
    task = next(t for t in dom.tasks if t.intent and t.intent["task_kind"] == "cancel_decline")
    res = run_episode(dom, task, model=SimulatedChatModel(domain="airline"), user=ScriptedUser(),
                      system_prompt=degraded, seed=0)
    assert res.reward == 0.0 and res.comments, "the user noticed the unwanted cancellation"
    assert any(res.comments[0] in str(m.get("content")) for m in res.messages if m.get("role") == "user")
    store = MemoryStore()
    v = store.create_slot("air", degraded)
    tr = Trace(id="tr_1", slot="air", version_id=v.id, thread_id="th", messages=res.messages,
               started_at=utcnow(), ended_at=utcnow())
    store.add_traces([tr])
    rec = EpisodeResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__}, "trace_id": "tr_1"})
    assert record_rewards(store, [rec]) == 1 + len(res.comments)
    (twf,) = store.window("air")
    assert twf.reward == 0.0 and twf.comments == res.comments
    assert {f.source for f in twf.feedback if f.kind == "comment"} == {"user"}
