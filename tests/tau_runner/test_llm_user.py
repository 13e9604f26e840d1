"""LLMUser: the instruction-driven system prompt, mirrored roles, ###STOP###, seeding, metering."""

from __future__ import annotations

from typing import Any

from diffprompt.llm import CallMeter, ChatClient, ScriptedChatClient
from tau_envs.serve import start_server
from tau_envs.types import STOP_TOKEN, Task
from tau_envs.users.llm import GREETING, LLMUser, user_system_prompt

TASK = Task(
    index=3,
    user_id="mia_li_3668",
    instruction="Your user id is mia_li_3668. You want to cancel HATHAT.",
    actions=(),
)


def test_system_prompt_carries_instruction_and_rules() -> None:
    text = user_system_prompt(TASK.instruction)
    assert TASK.instruction in text and STOP_TOKEN in text
    low = text.lower()
    assert "one line" in low and "make up" in low


def test_conversation_roles_are_mirrored_and_stop_ends() -> None:
    client = ScriptedChatClient(["Hi, I'd like to cancel a trip.", "mia_li_3668", f"  {STOP_TOKEN}  "])
    user = LLMUser(client, temperature=0.7)
    first = user.reset(TASK, seed=9)
    assert first == "Hi, I'd like to cancel a trip."
    req0 = client.requests[0]
    assert req0[0]["role"] == "system" and TASK.instruction in req0[0]["content"]
    assert req0[1] == {"role": "user", "content": GREETING}
    assert user.step("What is your user id?") == "mia_li_3668"
    assert client.requests[1][-1] == {"role": "user", "content": "What is your user id?"}
    assert client.requests[1][-2] == {"role": "assistant", "content": "Hi, I'd like to cancel a trip."}
    assert user.step("Cancelled.") == STOP_TOKEN  # whitespace around a bare stop token is dropped
    assert user.usage.output_tokens > 0


def test_reset_starts_a_fresh_conversation() -> None:
    client = ScriptedChatClient(["a", "b"])
    user = LLMUser(client)
    user.reset(TASK, seed=1)
    user.step("x")
    user.reset(TASK, seed=2)
    assert len(client.requests[-1]) == 2


def test_seed_travels_with_requests_through_chat_client() -> None:
    seen: list[Any] = []

    def responder(messages: Any, tools: Any, seed: int | None) -> dict[str, Any]:
        seen.append(seed)
        return {"role": "assistant", "content": "hello there"}

    meter = CallMeter()
    with start_server(responder=responder) as h:
        user = LLMUser(ChatClient("u-model", base_url=h.base_url, api_key="k", meter=meter))
        assert user.reset(TASK, seed=42) == "hello there"
        user.step("how can I help?")
        user.reset(TASK, seed=43)
    assert seen == [42, 42, 43]
    assert meter.snapshot().calls == 3
