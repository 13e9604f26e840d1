"""Model clients: spec parsing, metering and budgets, ChatClient over the real OpenAI SDK, fail-fast."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from diffprompt.errors import BudgetExceeded, ConfigError, ModelError
from diffprompt.llm import (
    CallMeter,
    ChatClient,
    ModelSpec,
    ScriptedChatClient,
    check_reachable,
    make_chat_model,
    parse_model_spec,
)
from tau_envs.serve import start_server


def echo_responder(messages: Any, tools: Any, seed: int | None) -> dict[str, Any]:
    last = messages[-1]["content"]
    return {"role": "assistant", "content": f"echo[{seed}]: {last}"}


@pytest.fixture
def echo_server():  # type: ignore[no-untyped-def]
    with start_server(responder=echo_responder, model="echo") as h:
        yield h


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_parse_model_spec() -> None:
    assert parse_model_spec("sim") == ModelSpec(provider="sim", name="sim")
    assert parse_model_spec("openai:gpt-4o-mini") == ModelSpec(provider="openai", name="gpt-4o-mini")
    assert str(parse_model_spec("openai:Qwen/Qwen2.5-7B")) == "openai:Qwen/Qwen2.5-7B"
    for bad in ("gpt-4o", "openai:", "anthropic:claude", "", "sim:x"):
        with pytest.raises(ConfigError, match="openai:NAME"):
            parse_model_spec(bad)


def test_meter_prices_by_longest_prefix_and_override() -> None:
    m = CallMeter(prices={"my-model": (1.0, 2.0)})
    assert m.price("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert m.price("gpt-4o-2024-08-06") == (2.50, 10.00)
    assert m.price("gpt-4omni") is None
    u = m.record("my-model", 1_000_000, 500_000)
    assert u.cost_usd == pytest.approx(2.0)
    m.record("unknown-model", 10, 10)
    snap = m.snapshot()
    assert snap.calls == 2 and snap.input_tokens == 1_000_010 and snap.unpriced_calls == 1
    assert snap.cost_usd == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("budget", "kwargs"),
    [("calls", {"max_calls": 2}), ("tokens", {"max_tokens": 5}), ("cost_usd", {"max_cost_usd": 1e-9})],
)
def test_meter_budgets_raise_before_the_next_call(budget: str, kwargs: dict[str, Any]) -> None:
    meter = CallMeter(**kwargs)
    client = ScriptedChatClient(["one two three four five six seven eight"], meter=meter, model="gpt-4o")
    client.complete([{"role": "user", "content": "hi"}])
    if budget == "calls":
        client.complete([{"role": "user", "content": "hi"}])
    with pytest.raises(BudgetExceeded) as exc:
        client.complete([{"role": "user", "content": "hi"}])
    assert exc.value.budget == budget
    assert meter.snapshot().calls == (2 if budget == "calls" else 1)


def test_chat_client_over_real_openai_sdk(echo_server) -> None:  # type: ignore[no-untyped-def]
    meter = CallMeter(prices={"echo": (1.0, 1.0)})
    client = ChatClient("echo", base_url=echo_server.base_url, api_key="k", meter=meter, seed=11)
    out = client.complete([{"role": "user", "content": "hello"}], temperature=0.5, max_tokens=20)
    assert out.text == "echo[11]: hello"
    assert out.finish_reason == "stop" and out.usage.input_tokens > 0 and out.usage.output_tokens > 0
    assert out.usage.cost_usd > 0
    sib = client.with_seed(5)
    assert sib.complete([{"role": "user", "content": "x"}]).text == "echo[5]: x"
    assert meter.snapshot().calls == 2 and echo_server.requests == 2


def test_chat_client_transport_failure_is_model_error() -> None:
    client = ChatClient("m", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k", max_retries=0, timeout_s=2)
    with pytest.raises(ModelError, match="failed"):
        client.complete([{"role": "user", "content": "x"}])


def test_chat_openai_is_metered(echo_server) -> None:  # type: ignore[no-untyped-def]
    meter = CallMeter(max_calls=1)
    model = make_chat_model("openai:echo", base_url=echo_server.base_url, api_key="k", meter=meter)
    assert model.invoke("ping").content == "echo[0]: ping"
    assert meter.snapshot().calls == 1 and meter.snapshot().input_tokens > 0
    with pytest.raises(BudgetExceeded):
        model.invoke("again")
    assert echo_server.requests == 1


def test_make_chat_model_needs_key_and_domain() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_chat_model("openai:gpt-4o", api_key=None)
    with pytest.raises(ConfigError, match="domain"):
        make_chat_model("sim")


def test_check_reachable_fails_fast() -> None:
    assert check_reachable("sim") is None
    with pytest.raises(ConfigError, match="needs an API key"):
        check_reachable("openai:gpt-4o", base_url="https://api.example.com/v1", api_key=None)
    # a server on this machine needs no key: the placeholder is sent, and the port's state decides
    with pytest.raises(ConfigError, match="cannot reach"):
        check_reachable("openai:gpt-4o", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=None)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="cannot reach"):
        check_reachable("openai:gpt-4o", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k")
    assert time.perf_counter() - t0 < 5


def test_resolve_api_key_placeholder_only_for_loopback() -> None:
    from diffprompt.llm import LOCAL_API_KEY, resolve_api_key

    assert resolve_api_key("k", "http://127.0.0.1:8089/v1") == "k"
    for url in ("http://127.0.0.1:8089/v1", "http://localhost:11434/v1", "http://[::1]:8000/v1"):
        assert resolve_api_key(None, url) == LOCAL_API_KEY
    for url in (None, "https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://127.evil.com/v1"):
        assert resolve_api_key(None, url) is None


def test_check_reachable_ok_and_rejected_key() -> None:
    with start_server(responder=echo_responder, model="echo", api_key="secret") as h:
        found = check_reachable("openai:echo", base_url=h.base_url, api_key="secret")
        assert found is not None and found.models == ("echo",)
        with pytest.raises(ConfigError, match="rejected the API key"):
            check_reachable("openai:echo", base_url=h.base_url, api_key="wrong")
