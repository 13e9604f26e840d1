"""Runs that die outside a model call are still recorded: recursion limit, tools, other middleware, streams."""

from __future__ import annotations

import asyncio

import pytest
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.errors import GraphRecursionError

from agents.fake_models import ScriptedChatModel
from agents.support_agent import SEED_PROMPT, build_agent, scripted_model
from diffprompt.middleware import PromptAdaptationMiddleware, wrap_graph

from .test_agent_middleware import REFUND, WHERE, ExplodingRecorder, cfg, user


def looping(system, messages, tools):  # type: ignore[no-untyped-def]
    """SmolLM2's failure mode: a tool call on every turn, never a final answer."""
    return AIMessage(content="", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1000"},
                                              "id": f"call_{len(messages)}"}])


def limited(thread: str, limit: int = 7) -> dict:
    return {**cfg(thread), "recursion_limit": limit}


def test_recursion_limit_is_recorded_with_its_reason_before_the_error_reaches_the_caller(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(build_agent(ScriptedChatModel(policy=looping), [mw]))
    with pytest.raises(GraphRecursionError, match="Recursion limit of 7"):
        agent.invoke(user(WHERE), limited("loop-1"))
    assert mw.flush(5)  # the trace was handed to the recorder before the raise: no sweep, no close()
    tr = store.trace_for_thread("loop-1", "support")
    assert tr.metadata["outcome"] == "error" and tr.metadata["error_reason"] == "recursion_limit"
    assert tr.error is not None and tr.error.startswith("recursion_limit: GraphRecursionError: Recursion limit of 7")
    assert mw.last_trace_id("loop-1") == tr.id
    assert tr.messages[0] == {"role": "system", "content": SEED_PROMPT}
    assert tr.messages[1] == {"role": "user", "content": WHERE}
    calls = [m for m in tr.messages if m.get("tool_calls")]
    results = [m for m in tr.messages if m["role"] == "tool"]
    # limit 7: model, tools, model, tools, model, tools, model -> 4 model calls, 3 tool rounds ran
    assert tr.model_calls == 4 == len(calls) and len(results) == 3 == len(tr.metadata["tools"])
    assert [r["tool_call_id"] for r in results] == [c["tool_calls"][0]["id"] for c in calls[:3]]
    fb = mw.record_feedback(thread_id="loop-1", kind="rating", value=0.0, text="it never answered")
    assert fb.trace_id == tr.id and store.trace_for_thread("loop-1", "support").id == tr.id


async def test_async_and_streaming_runs_that_hit_the_limit_are_recorded(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(build_agent(ScriptedChatModel(policy=looping), [mw]))
    with pytest.raises(GraphRecursionError):
        await agent.ainvoke(user(WHERE), limited("al"))
    with pytest.raises(GraphRecursionError):
        async for _ in agent.astream(user(WHERE), limited("as"), stream_mode="updates"):
            pass
    with pytest.raises(GraphRecursionError):
        list(agent.stream(user(WHERE), limited("ss"), stream_mode="values"))
    outs = await asyncio.gather(*(agent.ainvoke(user(WHERE), limited(f"par-{i}")) for i in range(6)),
                                return_exceptions=True)
    assert all(isinstance(o, GraphRecursionError) for o in outs)
    assert mw.flush(5) and store.count_traces() == 9 and len(mw.runs) == 0
    for thread in ("al", "as", "ss", *(f"par-{i}" for i in range(6))):
        tr = store.trace_for_thread(thread, "support")
        assert tr.metadata["error_reason"] == "recursion_limit" and tr.model_calls == 4


def test_a_stream_closed_early_is_recorded_as_closed(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(build_agent(ScriptedChatModel(policy=looping), [mw]))
    gen = agent.stream(user(WHERE), limited("closed", 50), stream_mode="updates")
    for i, _ in enumerate(gen):
        if i == 2:  # model, tools, model: the run is in flight
            break
    gen.close()
    assert mw.flush(5)
    tr = store.trace_for_thread("closed", "support")
    assert tr.metadata["error_reason"] == "stream_closed" and tr.error.startswith("stream_closed: GeneratorExit")
    assert tr.model_calls >= 2


@tool
def broken_lookup(order_id: str) -> str:
    """Look up an order (this one's backend is down)."""
    raise RuntimeError(f"orders backend unreachable for {order_id}")


def test_a_tool_that_raises_is_recorded_and_the_error_propagates(store, recorder) -> None:
    def call_broken(system, messages, tools):  # type: ignore[no-untyped-def]
        return AIMessage(content="", tool_calls=[{"name": "broken_lookup", "args": {"order_id": "A1"}, "id": "c1"}])

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    from langchain.agents import create_agent

    agent = mw.wrap(create_agent(ScriptedChatModel(policy=call_broken), [broken_lookup], middleware=[mw]))
    with pytest.raises(RuntimeError, match="orders backend unreachable for A1"):
        agent.invoke(user(WHERE), cfg("tool-boom"))
    assert mw.flush(5)
    tr = store.trace_for_thread("tool-boom", "support")
    assert tr.metadata["error_reason"] == "tool_error"
    assert tr.error == "tool_error: RuntimeError: orders backend unreachable for A1"
    assert tr.metadata["tools"][0]["name"] == "broken_lookup" and tr.metadata["tools"][0]["status"] == "raised"
    assert tr.messages[-1]["tool_calls"][0]["function"]["name"] == "broken_lookup"  # the call that broke


class CrashAfterModel(AgentMiddleware):
    """Another middleware failing after the model answered (like a scripted user's KeyError)."""

    def after_model(self, state, runtime):  # type: ignore[no-untyped-def]
        if not state["messages"][-1].tool_calls:
            raise KeyError("email")
        return None


def test_an_exception_in_another_middleware_is_recorded_with_the_answer_so_far(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(build_agent(scripted_model(), [mw, CrashAfterModel()]))
    with pytest.raises(KeyError, match="email"):
        agent.invoke(user(REFUND), cfg("mw-boom"))
    assert mw.flush(5)
    tr = store.trace_for_thread("mw-boom", "support")
    assert tr.metadata["error_reason"] == "exception" and tr.error == "exception: KeyError: 'email'"
    assert tr.messages[-1]["role"] == "assistant" and tr.messages[-1]["content"].startswith("I refunded")
    assert tr.tool_calls >= 2


def test_per_call_callbacks_work_like_wrap(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(ScriptedChatModel(policy=looping), [mw])
    with pytest.raises(GraphRecursionError):
        agent.invoke(user(WHERE), {**limited("cb"), "callbacks": mw.callbacks})
    assert mw.flush(5) and store.trace_for_thread("cb", "support").metadata["error_reason"] == "recursion_limit"


def test_a_broken_recorder_never_replaces_the_agents_exception(store) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=ExplodingRecorder(store))
    agent = mw.wrap(build_agent(ScriptedChatModel(policy=looping), [mw]))
    with pytest.raises(GraphRecursionError):
        agent.invoke(user(WHERE), limited("x"))


def test_without_wrap_close_still_records_the_run(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(ScriptedChatModel(policy=looping), [mw])
    with pytest.raises(GraphRecursionError):
        agent.invoke(user(WHERE), limited("plain"))
    assert mw.flush(5) and store.count_traces() == 0  # nothing saw the end yet ...
    mw.close()  # ... shutdown records it
    tr = store.trace_for_thread("plain", "support")
    assert tr.metadata["error_reason"] == "did_not_finish" and tr.model_calls == 4
    assert sum(m["role"] == "tool" for m in tr.messages) == 3


def test_successful_runs_through_wrap_are_unchanged(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(build_agent(scripted_model(), [mw]))
    out = agent.invoke(user(REFUND), cfg("ok"))

    async def many() -> list:
        return await asyncio.gather(*(agent.ainvoke(user(WHERE), cfg(f"ok-{i}")) for i in range(5)))

    outs = asyncio.run(many())
    assert mw.flush(5) and store.count_traces() == 6
    tr = store.get_trace(out["diffprompt_trace_id"])
    assert tr.error is None and tr.metadata["outcome"] == "ok" and "error_reason" not in tr.metadata
    assert all(store.get_trace(o["diffprompt_trace_id"]).metadata["outcome"] == "ok" for o in outs)


def test_wrap_graph_names_the_reason_too(store, recorder) -> None:
    g = wrap_graph(build_agent(ScriptedChatModel(policy=looping)), slot="support", store=store,
                   recorder=recorder)
    with pytest.raises(GraphRecursionError):
        g.invoke(user(WHERE), limited("g"))
    assert g.flush(5)
    tr = store.trace_for_thread("g", "support")
    assert tr.metadata["error_reason"] == "recursion_limit" and tr.error.startswith("recursion_limit: ")


def test_an_interrupt_is_a_pause_not_a_failure(store, recorder) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command, interrupt

    @tool
    def ask_human(question: str) -> str:
        """Ask a human and wait for the answer."""
        return str(interrupt(question))

    def policy(system, messages, tools):  # type: ignore[no-untyped-def]
        if not any(m.type == "tool" for m in messages):
            return AIMessage(content="", tool_calls=[{"name": "ask_human", "args": {"question": "ok?"}, "id": "h1"}])
        return AIMessage(content=f"the human said {messages[-1].content}")

    from langchain.agents import create_agent

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = mw.wrap(create_agent(ScriptedChatModel(policy=policy), [ask_human], middleware=[mw],
                                 checkpointer=InMemorySaver()))
    paused = agent.invoke(user(WHERE), cfg("hitl"))
    assert paused["__interrupt__"] and mw.flush(5) and store.count_traces() == 0 and len(mw.runs) == 1
    out = agent.invoke(Command(resume="yes"), cfg("hitl"))
    assert mw.flush(5)
    (tr,) = store.list_traces("support")
    assert tr.id == out["diffprompt_trace_id"] == paused["diffprompt_trace_id"]
    assert tr.metadata["outcome"] == "ok" and tr.messages[-1]["content"] == "the human said yes"
