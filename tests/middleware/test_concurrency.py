"""1,000 conversations through a wrapped create_agent agent: 8 OS threads plus asyncio tasks, with a
promotion in the middle. Runs that started before the promotion keep their version to the end."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool

from agents.support_agent import SEED_PROMPT, _order, check_refund_policy, issue_refund, scripted_model
from diffprompt.middleware import PromptAdaptationMiddleware
from diffprompt.store.memory import MemoryStore
from diffprompt.store.recorder import Recorder

from .conftest import V2_PROMPT, tag

N = 1000
N_EARLY_SYNC, N_EARLY_ASYNC = 8, 12  # in flight across the promotion


@pytest.mark.slow  # ~35 s on a 2-core machine
def test_thousand_concurrent_conversations_with_a_promotion_in_the_middle() -> None:
    store = MemoryStore()
    v1 = store.create_slot("support", SEED_PROMPT)
    v2 = store.add_version("support", V2_PROMPT, parent_id=v1.id, origin="manual")
    recorder = Recorder(store, batch_size=128, flush_interval_s=0.01)
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, refresh_s=0.0)

    promoted = threading.Event()
    early_started = threading.Semaphore(0)

    @tool
    def lookup_order(order_id: str) -> str:
        """Look up an order by id; returns its status and amount as JSON."""
        if order_id.startswith("E"):  # an early conversation: hold it until the promotion happened
            early_started.release()
            assert promoted.wait(20)
        return json.dumps(_order(order_id))

    agent = create_agent(
        scripted_model(), [lookup_order, check_refund_policy, issue_refund], system_prompt="app", middleware=[mw]
    )
    kinds = ["Where is my order #{o}?", "I want a refund for order #{o}, it arrived damaged."]

    def request(i: int, early: bool) -> tuple[dict, dict]:
        oid = f"{'E' if early else 'A'}{1000 + i}"
        msg = {"messages": [{"role": "user", "content": kinds[i % 2].format(o=oid)}]}
        return msg, {"configurable": {"thread_id": f"conv-{i:04d}"}}

    def run_sync(i: int, early: bool = False) -> str:
        inp, cfg = request(i, early)
        if i % 3 == 0:  # some through the streaming path
            last = None
            for chunk in agent.stream(inp, cfg, stream_mode="values"):
                last = chunk
            assert last is not None
            return last["diffprompt_trace_id"]
        return agent.invoke(inp, cfg)["diffprompt_trace_id"]

    async def run_async(i: int, sem: asyncio.Semaphore, early: bool = False) -> str:
        inp, cfg = request(i, early)
        async with sem:
            if i % 3 == 0:
                last = None
                async for chunk in agent.astream(inp, cfg, stream_mode="values"):
                    last = chunk
                assert last is not None
                return last["diffprompt_trace_id"]
            return (await agent.ainvoke(inp, cfg))["diffprompt_trace_id"]

    early_ids = set(range(N_EARLY_SYNC)) | set(range(N // 2, N // 2 + N_EARLY_ASYNC))
    sync_late = list(range(N_EARLY_SYNC, N // 2))
    async_late = list(range(N // 2 + N_EARLY_ASYNC, N))
    async_result: list[str] = []

    async def async_main() -> None:
        # sync tools run in the loop's executor: give it room for the held early runs
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=N_EARLY_ASYNC + 4))
        sem = asyncio.Semaphore(64)
        early = [asyncio.create_task(run_async(i, sem, True)) for i in range(N // 2, N // 2 + N_EARLY_ASYNC)]
        await asyncio.to_thread(promoted.wait, 60)
        late = [asyncio.create_task(run_async(i, sem)) for i in async_late]
        async_result.extend(await asyncio.gather(*early, *late))

    loop_thread = threading.Thread(target=lambda: asyncio.run(async_main()))
    with ThreadPoolExecutor(max_workers=8) as pool:
        early_futs = [pool.submit(run_sync, i, True) for i in range(N_EARLY_SYNC)]
        loop_thread.start()
        for _ in range(N_EARLY_SYNC + N_EARLY_ASYNC):  # every early run is pinned and mid-episode
            assert early_started.acquire(timeout=20)
        store.promote("support", v2.id, actor="test", reason="mid-traffic promotion")
        promoted.set()
        late_ids = list(pool.map(run_sync, sync_late))
        sync_ids = [f.result() for f in early_futs] + late_ids
        loop_thread.join(120)

    assert recorder.flush(30)
    stats = recorder.close()
    trace_ids = sync_ids + async_result
    assert len(trace_ids) == len(set(trace_ids)) == N
    assert store.count_traces("support") == N
    assert stats.submitted == stats.written == N and stats.dropped == 0

    traces = store.list_traces("support")
    assert {t.id for t in traces} == set(trace_ids)
    for t in traces:
        i = int(t.thread_id.split("-")[1])
        expected = v1 if i in early_ids else v2
        assert t.version_id == expected.id, t.thread_id
        assert t.messages[0] == {"role": "system", "content": expected.text}
        assert t.messages[-1]["content"].endswith(tag(expected.text))  # every model call saw it
        calls = [m for m in t.messages if m.get("tool_calls")]
        results = [m for m in t.messages if m["role"] == "tool"]
        assert calls and len(results) == len(calls) == t.tool_calls
        assert results[0]["name"] == "lookup_order" and '"order_id"' in results[0]["content"]
        assert t.model_calls == len(calls) + 1
