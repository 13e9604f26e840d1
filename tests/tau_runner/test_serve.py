"""The OpenAI-compatible sim server with the real ``openai`` client and ``langchain-openai``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from tau_envs.serve import start_server

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_user_details",
            "description": "Get the details of a user.",
            "parameters": {
                "type": "object",
                "properties": {"user_id": {"type": "string"}},
                "required": ["user_id"],
            },
        },
    }
]


def tool_responder(messages: Any, tools: Any, seed: int | None) -> dict[str, Any]:
    """Calls the first tool twice (parallel calls) until a tool result is present, then answers."""
    if any(m.get("role") == "tool" for m in messages):
        return {"role": "assistant", "content": f"done after {messages[-1]['content']}"}
    name = tools[0]["function"]["name"]
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps({"user_id": f"u{i}"})},
            }
            for i in range(2)
        ],
    }


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with start_server(responder=tool_responder) as h:
        yield h


def test_openai_client_roundtrip_with_tool_calls(server) -> None:  # type: ignore[no-untyped-def]
    client = openai.OpenAI(base_url=server.base_url, api_key="any")
    assert [m.id for m in client.models.list().data] == ["sim"]
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "who am I?"}]
    r = client.chat.completions.create(model="sim", messages=msgs, tools=TOOLS, seed=3)  # type: ignore[arg-type]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_user_details", "get_user_details"]
    assert json.loads(calls[0].function.arguments) == {"user_id": "u0"}
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.total_tokens > r.usage.prompt_tokens
    msgs += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "USER-OK"},
    ]
    r2 = client.chat.completions.create(model="sim", messages=msgs, tools=TOOLS)  # type: ignore[arg-type]
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content == "done after USER-OK"
    assert server.requests == 2


def test_langchain_chat_openai_bind_tools(server) -> None:  # type: ignore[no-untyped-def]
    llm = ChatOpenAI(model="sim", base_url=server.base_url, api_key="any", max_retries=0)  # type: ignore[arg-type]
    ai = llm.bind_tools(TOOLS).invoke("hello")
    assert [c["name"] for c in ai.tool_calls] == ["get_user_details"] * 2
    assert ai.tool_calls[1]["args"] == {"user_id": "u1"}
    assert ai.usage_metadata is not None and ai.usage_metadata["input_tokens"] > 0


def test_errors_are_openai_style(server) -> None:  # type: ignore[no-untyped-def]
    base = server.base_url
    r = httpx.post(f"{base}/chat/completions", content=b"not json")
    assert r.status_code == 400 and "bad request body" in r.json()["error"]["message"]
    r = httpx.post(
        f"{base}/chat/completions",
        json={"model": "sim", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    assert r.status_code == 400 and "stream" in r.json()["error"]["message"]
    assert httpx.get(f"{base}/nope").status_code == 404
    client = openai.OpenAI(base_url=base, api_key="any", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="sim", messages=[])
    assert server.errors == 4


def test_policy_failure_is_a_500_not_a_dead_server() -> None:
    def broken(messages: Any, tools: Any, seed: int | None) -> dict[str, Any]:
        raise RuntimeError("policy bug")

    with start_server(responder=broken) as h:
        client = openai.OpenAI(base_url=h.base_url, api_key="any", max_retries=0)
        with pytest.raises(openai.InternalServerError, match="policy bug"):
            client.chat.completions.create(model="sim", messages=[{"role": "user", "content": "x"}])
        assert [m.id for m in client.models.list().data] == ["sim"]


def test_only_loopback_and_clear_port_errors() -> None:
    from diffprompt.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback"):
        start_server(responder=tool_responder, host="0.0.0.0")
    with start_server(responder=tool_responder) as h, pytest.raises(ConfigError, match="--port"):
        start_server(responder=tool_responder, port=h.port)


def test_simulated_policy_served_over_http(tau_data) -> None:  # type: ignore[no-untyped-def]
    tools = json.loads((tau_data / "airline" / "tools_info.json").read_text())
    policy = (tau_data / "airline" / "wiki.md").read_text()
    with start_server("airline", seed=1) as h:
        client = openai.OpenAI(base_url=h.base_url, api_key="any")
        r = client.chat.completions.create(
            model="sim",
            tools=tools,
            messages=[  # type: ignore[arg-type]
                {"role": "system", "content": policy},
                {"role": "user", "content": "Hi, my user id is mia_li_3668 and I want to book a flight."},
            ],
        )
        msg = r.choices[0].message
        assert msg.content or msg.tool_calls  # a well-formed assistant turn from the simulated policy
