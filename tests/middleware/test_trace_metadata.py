"""Recorded traces name their target model and stay within ``TraceLimits``."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.errors import GraphRecursionError

from agents.fake_models import ScriptedChatModel
from agents.support_agent import SEED_PROMPT, build_agent, scripted_model, support_policy
from diffprompt.errors import ConfigError
from diffprompt.middleware import PromptAdaptationMiddleware, TraceLimits, wrap_graph
from diffprompt.middleware._limits import MIDDLE_MARK, cap
from diffprompt.middleware._run import chat_model_name

from .test_agent_middleware import REFUND, WHERE, cfg, user
from .test_failed_runs import limited, looping


class NamedModel(ScriptedChatModel):
    model_name: str = "smol-test-1"


def test_the_target_models_declared_name_is_recorded(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    named = build_agent(NamedModel(policy=support_policy), [mw])
    anonymous = build_agent(scripted_model(), [mw])
    out, anon = named.invoke(user(REFUND), cfg("m-1")), anonymous.invoke(user(REFUND), cfg("m-2"))
    assert recorder.flush(5)
    assert store.get_trace(out["diffprompt_trace_id"]).metadata["model"] == "smol-test-1"
    assert "model" not in store.get_trace(anon["diffprompt_trace_id"]).metadata  # unknown: not guessed


def test_a_run_whose_first_model_call_fails_still_names_the_target(store, recorder) -> None:
    def down(system, messages, tools):  # type: ignore[no-untyped-def]
        raise ConnectionError("Connection error.")

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    with pytest.raises(ConnectionError):
        mw.wrap(build_agent(NamedModel(policy=down), [mw])).invoke(user(WHERE), cfg("down"))
    assert recorder.flush(5)
    tr = store.trace_for_thread("down", "support")
    assert tr.metadata["model"] == "smol-test-1" and tr.metadata["error_reason"] == "model_error"
    assert tr.error == "model call failed: ConnectionError: Connection error." and tr.model_calls == 0


def test_the_served_model_name_is_the_fallback_and_changes_are_listed(store, recorder) -> None:
    def served(system, messages, tools):  # type: ignore[no-untyped-def]
        msg = support_policy(system, messages, tools)
        name = "served-a" if len(messages) < 3 else "served-b"
        return msg.model_copy(update={"response_metadata": {"model_name": name}})

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    out = build_agent(ScriptedChatModel(policy=served), [mw]).invoke(user(REFUND), cfg("srv"))
    assert recorder.flush(5)
    meta = store.get_trace(out["diffprompt_trace_id"]).metadata
    assert meta["model"] == "served-b" and meta["models"] == ["served-a", "served-b"]


def test_chat_openai_declares_its_model_and_per_call_overrides_win() -> None:
    from langchain_openai import ChatOpenAI

    m = ChatOpenAI(model="smollm2", api_key="local", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    assert chat_model_name(m) == "smollm2"
    assert chat_model_name(m, {"model": "other"}) == "other"
    assert chat_model_name(object()) is None


def test_wrap_graph_records_the_model_name_too(store, recorder) -> None:
    g = wrap_graph(create_agent(NamedModel(policy=support_policy), []), slot="support", store=store,
                   recorder=recorder)
    g.invoke(user("Hi, can you help me with a purchase?"), cfg("wg"))
    assert g.flush(5) and store.trace_for_thread("wg", "support").metadata["model"] == "smol-test-1"


@pytest.mark.parametrize("kwargs", [
    {"max_messages": 3}, {"max_chars": 0}, {"max_message_chars": -1}, {"max_messages": True},
    {"max_chars": 100, "max_message_chars": 60},
])
def test_limits_that_cannot_work_fail_at_construction(kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="TraceLimits"):
        TraceLimits(**kwargs)


def _convo(n_rounds: int, result: str = "ok") -> list[dict]:
    msgs: list[dict] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    for i in range(n_rounds):
        call = {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        msgs += [{"role": "assistant", "content": "", "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": f"c{i}", "content": result}]
    return msgs


def test_cap_leaves_a_normal_trace_alone_and_cuts_long_texts_with_a_marker() -> None:
    msgs = _convo(3)
    assert cap(msgs, TraceLimits()) == (msgs, None)
    out, info = cap(_convo(2, result="x" * 250), TraceLimits(max_message_chars=100, max_chars=10_000))
    assert [m["content"] for m in out if m["role"] == "tool"] == ["x" * 100 + "…[diffprompt: 150 chars truncated]"] * 2
    assert info == {"messages_dropped": 0, "chars_dropped": 300, "messages_cut": 2}
    long_args = [{"role": "user", "content": "u"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{" + "a" * 300 + "}"}}]}]
    out, info = cap(long_args, TraceLimits(max_message_chars=100, max_chars=10_000))
    assert out[1]["tool_calls"][0]["function"]["arguments"].endswith("…[diffprompt: 202 chars truncated]")


def test_cap_keeps_the_replay_prefix_and_the_latest_messages_and_never_orphans_a_tool_result() -> None:
    msgs = _convo(10)  # 22 messages
    out, info = cap(msgs, TraceLimits(max_messages=7))
    assert len(out) <= 7 and out[:2] == msgs[:2]
    assert info is not None
    marker = MIDDLE_MARK.format(n=info["messages_dropped"], c=info["chars_dropped"])
    assert out[2] == {"role": "system", "content": marker}
    assert out[3]["role"] == "assistant" and out[-1] == msgs[-1]  # the tail starts at a call, not its result
    assert info["messages_dropped"] == len(msgs) - len(out) + 1
    by_chars, info2 = cap(_convo(10, result="y" * 100), TraceLimits(max_chars=600, max_message_chars=200))
    assert sum(len(str(m.get("content") or "")) for m in by_chars) <= 600 and by_chars[:2] == msgs[:2]
    assert info2["messages_dropped"] > 0 and by_chars[-1]["content"] == "y" * 100


def test_the_middleware_records_within_its_limits(store, recorder) -> None:
    @tool
    def big_lookup(order_id: str) -> str:
        """Look up an order (returns a very long record)."""
        return "z" * 5_000

    def once(system, messages, tools):  # type: ignore[no-untyped-def]
        if any(m.type == "tool" for m in messages):
            return AIMessage(content="done")
        return AIMessage(content="", tool_calls=[{"name": "big_lookup", "args": {"order_id": "A1"}, "id": "b1"}])

    limits = TraceLimits(max_messages=6, max_chars=5_000, max_message_chars=1_000)
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, limits=limits)
    out = create_agent(ScriptedChatModel(policy=once), [big_lookup], middleware=[mw]).invoke(user(WHERE), cfg("big"))
    looping_agent = mw.wrap(build_agent(ScriptedChatModel(policy=looping), [mw]))
    with pytest.raises(GraphRecursionError):
        looping_agent.invoke(user(WHERE), limited("long", 25))
    assert recorder.flush(5)
    tr = store.get_trace(out["diffprompt_trace_id"])
    tool_msg = next(m for m in tr.messages if m["role"] == "tool")
    assert tool_msg["content"] == "z" * 1_000 + "…[diffprompt: 4000 chars truncated]"
    assert tr.metadata["truncated"] == {"messages_dropped": 0, "chars_dropped": 4_000, "messages_cut": 1}
    assert out["messages"][2].content == "z" * 5_000  # the agent itself saw everything
    long = store.trace_for_thread("long", "support")
    assert len(long.messages) <= 6 and long.messages[0] == {"role": "system", "content": SEED_PROMPT}
    assert long.metadata["truncated"]["messages_dropped"] > 0 and long.metadata["error_reason"] == "recursion_limit"
    assert long.model_calls == 13  # the counts describe the whole run, not the kept messages
