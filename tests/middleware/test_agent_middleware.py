from __future__ import annotations

import asyncio
import logging

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from agents.fake_models import ScriptedChatModel
from agents.support_agent import SEED_PROMPT, TOOLS, build_agent, scripted_model
from diffprompt.middleware import FinalAnswerPromptAdaptationMiddleware, PromptAdaptationMiddleware
from diffprompt.store.recorder import Recorder
from diffprompt.store.routing import pick_version

from .conftest import V2_PROMPT, Clock, tag

REFUND = "I want a refund for order #A1007, it arrived damaged."
WHERE = "Where is my order #A1000?"


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def cfg(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def test_invoke_injects_pinned_prompt_and_records_the_episode(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = create_agent(scripted_model(), TOOLS, system_prompt="IGNORED app prompt", middleware=[mw])
    out = agent.invoke(user(REFUND), cfg("t-1"))
    assert out["diffprompt_thread_id"] == "t-1"
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))  # the model saw the slot's prompt
    assert recorder.flush(5)
    tr = store.get_trace(out["diffprompt_trace_id"])
    assert mw.last_trace_id("t-1") == tr.id == mw.last_trace_id()
    assert tr.slot == "support" and tr.thread_id == "t-1"
    assert tr.version_id == store.active_version("support").id
    assert tr.messages[0] == {"role": "system", "content": SEED_PROMPT}
    assert tr.messages[1] == {"role": "user", "content": REFUND}
    calls = [m for m in tr.messages if m.get("tool_calls")]
    results = [m for m in tr.messages if m["role"] == "tool"]
    assert [c["tool_calls"][0]["function"]["name"] for c in calls] == [r["name"] for r in results]
    assert all(r["tool_call_id"] == c["tool_calls"][0]["id"] for c, r in zip(calls, results, strict=True))
    assert tr.model_calls == len(calls) + 1 and tr.tool_calls == len(calls) >= 2
    assert tr.usage.input_tokens > 0 and tr.usage.output_tokens > 0
    assert tr.latency_ms > 0 and len(tr.metadata["model_ms"]) == tr.model_calls
    assert [t["name"] for t in tr.metadata["tools"]] == [r["name"] for r in results]
    assert tr.error is None and tr.metadata["served"] == "pinned"


async def test_async_and_streaming_paths_record_too(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw])
    out = await agent.ainvoke(user(REFUND), cfg("a-1"))
    chunks = [c async for c in agent.astream(user(WHERE), cfg("a-2"), stream_mode="values")]
    sync_chunks = list(agent.stream(user(WHERE), cfg("a-3"), stream_mode="updates"))
    msg_chunks = list(agent.stream(user(REFUND), cfg("a-4"), stream_mode="messages"))
    assert chunks[-1]["diffprompt_trace_id"] and sync_chunks and msg_chunks
    assert recorder.flush(5)
    traces = {t.thread_id: t for t in store.list_traces("support")}
    assert set(traces) == {"a-1", "a-2", "a-3", "a-4"}
    assert traces["a-1"].id == out["diffprompt_trace_id"]
    for t in traces.values():
        assert t.tool_calls >= 1 and any(m["role"] == "tool" for m in t.messages)
        assert t.messages[-1]["content"].endswith(tag(SEED_PROMPT))


def test_thread_keeps_its_version_across_turns_while_new_threads_follow_promotions(store, recorder) -> None:
    clock = Clock()
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, refresh_s=2.0, clock=clock)
    agent = build_agent(scripted_model(), [mw], checkpointer=InMemorySaver())
    v1 = store.active_version("support")
    v2 = store.add_version("support", V2_PROMPT, parent_id=v1.id, origin="manual")
    agent.invoke(user(WHERE), cfg("old"))
    store.promote("support", v2.id, actor="test", reason="better")
    # within refresh_s the process still serves v1 to new threads (cached view) ...
    assert agent.invoke(user(WHERE), cfg("new-0"))["messages"][-1].content.endswith(tag(SEED_PROMPT))
    clock.t += 2.0  # ... and the promotion arrives after at most refresh_s, without a restart
    out_new = agent.invoke(user(REFUND), cfg("new-1"))
    out_old = agent.invoke(user(REFUND), cfg("old"))  # second turn of the old thread
    assert out_new["messages"][-1].content.endswith(tag(V2_PROMPT))
    assert out_old["messages"][-1].content.endswith(tag(SEED_PROMPT))
    assert recorder.flush(5)
    by_thread: dict[str, list] = {}
    for t in store.list_traces("support"):
        by_thread.setdefault(t.thread_id, []).append(t)
    assert [t.version_id for t in by_thread["old"]] == [v1.id, v1.id]
    assert by_thread["new-0"][0].version_id == v1.id and by_thread["new-1"][0].version_id == v2.id
    latest_old = store.trace_for_thread("old")
    assert sum(m["role"] == "user" for m in latest_old.messages) == 2  # whole thread so far
    assert mw.pinned_version("old") == v1.id


def test_pinned_version_survives_a_process_restart_via_the_checkpoint(store, recorder) -> None:
    saver = InMemorySaver()
    v1 = store.active_version("support")
    mw1 = PromptAdaptationMiddleware("support", store, recorder=recorder)
    build_agent(scripted_model(), [mw1], checkpointer=saver).invoke(user(WHERE), cfg("t"))
    v2 = store.add_version("support", V2_PROMPT, parent_id=v1.id, origin="manual")
    store.promote("support", v2.id, actor="test", reason="r")
    mw2 = PromptAdaptationMiddleware("support", store, recorder=recorder)  # a fresh process
    out = build_agent(scripted_model(), [mw2], checkpointer=saver).invoke(user(REFUND), cfg("t"))
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))
    assert mw2.pinned_version("t") == v1.id


def test_canary_serves_a_hashed_share_of_new_threads(store, recorder) -> None:
    v1 = store.active_version("support")
    v2 = store.add_version("support", V2_PROMPT, parent_id=v1.id, origin="manual")
    store.set_canary("support", v2.id, 0.3, actor="test", reason="try")
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw])
    threads = [f"c-{i}" for i in range(120)]
    for t in threads:
        agent.invoke(user(WHERE), cfg(t))
    assert recorder.flush(5)
    state = store.slot_state("support")
    got = {t.thread_id: t for t in store.list_traces("support")}
    for th in threads:
        assert got[th].version_id == pick_version(state, th)
        assert got[th].metadata["canary"] == (got[th].version_id == v2.id)
    share = sum(t.version_id == v2.id for t in got.values()) / len(threads)
    assert 0.15 < share < 0.45


def test_no_thread_id_gets_a_fresh_thread_per_run(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw])
    a, b = agent.invoke(user(WHERE)), agent.invoke(user(WHERE))
    assert a["diffprompt_thread_id"] != b["diffprompt_thread_id"]
    assert recorder.flush(5)
    assert store.trace_for_thread(b["diffprompt_thread_id"]).id == b["diffprompt_trace_id"]


def test_store_unreachable_from_the_start_serves_the_apps_own_prompt(store, recorder, caplog) -> None:
    store.reads_down.set()
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw])  # create_agent(system_prompt=SEED_PROMPT)
    with caplog.at_level(logging.WARNING, logger="diffprompt.middleware"):
        out = agent.invoke(user(WHERE), cfg("x"))
        agent.invoke(user(WHERE), cfg("y"))
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))
    assert sum("cannot refresh" in r.getMessage() for r in caplog.records) == 1  # once per outage
    assert recorder.flush(5)
    tr = store.get_trace(out["diffprompt_trace_id"])
    assert tr.version_id is None and tr.metadata["served"] == "fallback"
    assert tr.messages[0] == {"role": "system", "content": SEED_PROMPT}


def test_store_down_later_keeps_serving_the_last_known_prompt(store, recorder) -> None:
    clock = Clock()
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, clock=clock)
    agent = create_agent(scripted_model(), TOOLS, system_prompt="app prompt", middleware=[mw])
    agent.invoke(user(WHERE), cfg("a"))
    store.reads_down.set()
    store.down.set()  # writes fail too: traces are retried/spooled, the agent never notices
    clock.t += 10
    out = agent.invoke(user(REFUND), cfg("b"))
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))
    store.reads_down.clear()
    store.down.clear()
    assert recorder.flush(5)
    assert store.get_trace(out["diffprompt_trace_id"]).version_id == store.active_version("support").id


class ExplodingRecorder(Recorder):
    def submit(self, trace) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("recorder bug")


def test_bookkeeping_bugs_never_break_the_agent(store, monkeypatch, caplog) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=ExplodingRecorder(store))
    agent = build_agent(scripted_model(), [mw])
    out = agent.invoke(user(REFUND), cfg("z"))
    assert out["messages"][-1].content.startswith("I refunded")
    from diffprompt.middleware import _run

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise ValueError("bug in bookkeeping")

    monkeypatch.setattr(_run.RunRecord, "on_model_result", broken)
    monkeypatch.setattr(_run.RunRecord, "on_tool", broken)
    monkeypatch.setattr(_run.RunRecord, "finish", broken)
    out = agent.invoke(user(REFUND), cfg("z2"))
    assert out["messages"][-1].content.startswith("I refunded")
    monkeypatch.setattr(mw.view, "pin", broken)
    out = agent.invoke(user(REFUND), cfg("z3"))
    assert out["messages"][-1].content.startswith("I refunded")
    assert any("bookkeeping" in r.getMessage() or "cannot record" in r.getMessage() for r in caplog.records)


def test_model_errors_propagate_and_the_episode_is_recorded_as_failed(store, recorder) -> None:
    def failing(system, messages, tools):  # type: ignore[no-untyped-def]
        if len(messages) > 1:
            raise ConnectionError("provider timeout")
        return AIMessage(content="", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1"}, "id": "c1"}])

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(ScriptedChatModel(policy=failing), [mw])
    with pytest.raises(ConnectionError, match="provider timeout"):
        agent.invoke(user(WHERE), cfg("boom"))
    mw.close()  # open failed runs are recorded at the latest at shutdown (else after a grace period)
    tr = store.trace_for_thread("boom")
    assert "provider timeout" in (tr.error or "") and tr.model_calls == 1 and tr.tool_calls == 1


def test_async_refresh_does_not_block_the_event_loop(store, recorder) -> None:
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, refresh_s=0.0)
    agent = build_agent(scripted_model(), [mw])

    async def main() -> list:
        return await asyncio.gather(*(agent.ainvoke(user(WHERE), cfg(f"as-{i}")) for i in range(20)))

    outs = asyncio.run(main())
    assert len({o["diffprompt_trace_id"] for o in outs}) == 20
    assert recorder.flush(5) and store.count_traces() == 20


def _agent_nodes(agent) -> list[str]:  # type: ignore[no-untyped-def]
    return list(agent.get_graph().nodes)


def test_runs_start_without_a_graph_node_and_the_final_answer_variant_drops_the_end_node(store, recorder) -> None:
    exact = PromptAdaptationMiddleware("support", store, recorder=recorder)
    fast = FinalAnswerPromptAdaptationMiddleware("support", store, recorder=recorder)
    assert type(exact) is PromptAdaptationMiddleware  # a plain class: construction never swaps it
    assert isinstance(fast, PromptAdaptationMiddleware) and type(fast) is FinalAnswerPromptAdaptationMiddleware
    a_exact, a_fast = build_agent(scripted_model(), [exact]), build_agent(scripted_model(), [fast])
    assert not any("before_agent" in n for n in _agent_nodes(a_exact))
    assert any("after_agent" in n for n in _agent_nodes(a_exact))
    assert not any("agent" in n.split(".")[-1] for n in _agent_nodes(a_fast) if "." in n)
    outs = [a_fast.invoke(user(REFUND), cfg("f-1")), asyncio.run(a_fast.ainvoke(user(WHERE), cfg("f-2")))]
    last = list(a_fast.stream(user(WHERE), cfg("f-3"), stream_mode="values"))[-1]
    ref = a_exact.invoke(user(REFUND), cfg("e-1"))
    assert recorder.flush(5)
    for out in [*outs, last]:
        tr = store.get_trace(out["diffprompt_trace_id"])
        assert tr.error is None and tr.version_id == store.active_version("support").id
        assert tr.messages[0] == {"role": "system", "content": SEED_PROMPT}
        assert tr.messages[-1]["content"] == out["messages"][-1].content
        assert tr.model_calls == len(tr.metadata["model_ms"]) and tr.tool_calls >= 1
    same, other = store.get_trace(outs[0]["diffprompt_trace_id"]), store.get_trace(ref["diffprompt_trace_id"])
    assert same.messages == other.messages and same.tool_calls == other.tool_calls


def test_an_after_model_loop_back_to_the_model_stays_one_trace(store, recorder) -> None:
    from langchain.agents.middleware import AgentMiddleware, hook_config
    from langchain_core.messages import HumanMessage

    class SecondTurn(AgentMiddleware):  # a simulated user answering once, like the τ episode loop
        @hook_config(can_jump_to=["model"])
        def after_model(self, state, runtime):  # type: ignore[no-untyped-def]
            last = state["messages"][-1]
            if last.tool_calls or sum(isinstance(m, HumanMessage) for m in state["messages"]) > 1:
                return None
            return {"messages": [HumanMessage(content=REFUND)], "jump_to": "model"}

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw, SecondTurn()])
    out = agent.invoke(user(WHERE), cfg("loop"))
    assert recorder.flush(5)
    (tr,) = store.list_traces("support")
    assert tr.id == out["diffprompt_trace_id"] and sum(m["role"] == "user" for m in tr.messages) == 2
    assert tr.model_calls == sum(m.type == "ai" for m in out["messages"])


def test_a_checkpointed_thread_after_a_failed_run_starts_a_new_trace(store, recorder) -> None:
    fail = {"on": True}

    def policy(system, messages, tools):  # type: ignore[no-untyped-def]
        if fail["on"] and len(messages) > 1:
            raise ConnectionError("provider timeout")
        return AIMessage(content="", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A1"}, "id": "c1"}]) \
            if len(messages) == 1 else AIMessage(content="done")

    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    agent = build_agent(ScriptedChatModel(policy=policy), [mw], checkpointer=InMemorySaver())
    with pytest.raises(ConnectionError):
        agent.invoke(user(WHERE), cfg("ck"))
    fail["on"] = False
    out = agent.invoke(user(WHERE), cfg("ck"))  # the state still names the failed run's trace
    assert recorder.flush(5)
    traces = {t.id: t for t in store.list_traces("support")}
    assert len(traces) == 2 and out["diffprompt_trace_id"] in traces
    failed = next(t for t in traces.values() if t.id != out["diffprompt_trace_id"])
    assert "provider timeout" in (failed.error or "") and traces[out["diffprompt_trace_id"]].error is None
