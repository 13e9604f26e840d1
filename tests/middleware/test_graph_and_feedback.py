from __future__ import annotations

import dataclasses
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AnyMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.runtime import Runtime

from agents.support_agent import SEED_PROMPT, TOOLS, scripted_model
from diffprompt.errors import NotFoundError, ValidationError
from diffprompt.middleware import normalize_rating, record_feedback, wrap_graph

from .conftest import tag

REFUND = "I want a refund for order #A1007, it arrived damaged."


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@dataclasses.dataclass
class Ctx:
    user: str = "anon"
    system_prompt: str = "context default"


def build_graph(source: str = "config"):  # type: ignore[no-untyped-def]
    model = scripted_model().bind_tools(TOOLS)

    def call_model(state: State, config: RunnableConfig, runtime: Runtime[Ctx]) -> dict:
        if source == "config":
            system = config["configurable"].get("system_prompt", "default prompt")
        else:
            system = runtime.context.system_prompt
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]], config)]}

    g = StateGraph(State, context_schema=Ctx)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode(TOOLS))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    return g.compile()


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_wrap_graph_all_paths_inject_and_record(store, recorder) -> None:
    g = wrap_graph(build_graph(), slot="support", store=store, recorder=recorder)
    out = g.invoke(user(REFUND), {"configurable": {"thread_id": "g1"}})
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))
    aout = await g.ainvoke(user(REFUND), {"configurable": {"thread_id": "g2"}})
    assert aout["messages"][-1].content.endswith(tag(SEED_PROMPT))
    assert list(g.stream(user(REFUND), {"configurable": {"thread_id": "g3"}}, stream_mode="updates"))
    assert [c async for c in g.astream(user(REFUND), {"configurable": {"thread_id": "g4"}})]
    assert recorder.flush(5)
    v = store.active_version("support").id
    for th in ("g1", "g2", "g3", "g4"):
        tr = store.trace_for_thread(th)
        assert tr.version_id == v and g.last_trace_id(th) == tr.id
        assert tr.messages[0] == {"role": "system", "content": SEED_PROMPT}
        assert tr.messages[1]["content"] == REFUND
        assert tr.model_calls == 3 and tr.tool_calls == 2
        assert [m["name"] for m in tr.messages if m["role"] == "tool"] == ["lookup_order", "issue_refund"]
        assert [t["name"] for t in tr.metadata["tools"]] == ["lookup_order", "issue_refund"]
        assert tr.usage.input_tokens > 0 and tr.messages[-1]["content"].endswith(tag(SEED_PROMPT))


def test_wrap_graph_sets_the_context_field_and_records_graph_errors(store, recorder) -> None:
    g = wrap_graph(build_graph("context"), slot="support", store=store, recorder=recorder)
    out = g.invoke(user(REFUND), {"configurable": {"thread_id": "c1"}}, context=Ctx(user="u1"))
    assert out["messages"][-1].content.endswith(tag(SEED_PROMPT))

    def boom(state: State) -> dict:
        raise RuntimeError("graph node failed")

    bad = StateGraph(State)
    bad.add_node("boom", boom)
    bad.add_edge(START, "boom")
    gw = wrap_graph(bad.compile(), slot="support", store=store, recorder=recorder)
    with pytest.raises(RuntimeError, match="graph node failed"):
        gw.invoke(user("hi"), {"configurable": {"thread_id": "c2"}})
    assert recorder.flush(5)
    assert "graph node failed" in (store.trace_for_thread("c2").error or "")


def test_feedback_by_trace_or_thread_long_after_the_episode(store, recorder) -> None:
    g = wrap_graph(build_graph(), slot="support", store=store, recorder=recorder)
    g.invoke(user(REFUND), {"configurable": {"thread_id": "f1"}})
    g.invoke(user(REFUND), {"configurable": {"thread_id": "f1"}})
    latest = g.last_trace_id("f1")
    # immediately after the run: the recorder may still hold the trace; passing it waits for it
    fb = record_feedback(store, trace_id=latest, kind="reward", value=1.0, source="env", recorder=recorder)
    assert fb.id is not None and fb.trace_id == latest
    fb2 = record_feedback(store, thread_id="f1", kind="rating", value=normalize_rating(4, "stars5"))
    assert fb2.trace_id == latest and fb2.value == 0.75
    record_feedback(store, thread_id="f1", kind="comment", text="refund was right")
    assert len(store.feedback_for([latest])) == 3


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(trace_id="tr_nope", kind="reward", value=1.0), NotFoundError, "no trace with id"),
        (dict(thread_id="nobody", kind="reward", value=1.0), NotFoundError, "no trace recorded for thread"),
        (dict(kind="reward", value=1.0), ValidationError, "exactly one of"),
        (dict(trace_id="x", thread_id="y", kind="reward", value=1.0), ValidationError, "exactly one of"),
        (dict(trace_id="x", kind="like", value=1.0), ValidationError, "unknown feedback kind"),
        (dict(trace_id="x", kind="reward", value=1.5), ValidationError, "outside"),
        (dict(trace_id="x", kind="rating", value=-0.1), ValidationError, "normalize_rating"),
        (dict(trace_id="x", kind="judge", value=None), ValidationError, "numeric"),
        (dict(trace_id="x", kind="reward", value=True), ValidationError, "numeric"),
        (dict(trace_id="x", kind="reward", value=float("nan")), ValidationError, "outside"),
        (dict(trace_id="x", kind="comment", value=1.0, text="t"), ValidationError, "carries text"),
        (dict(trace_id="x", kind="comment", text="  "), ValidationError, "non-empty"),
        (dict(trace_id="x", kind="comment", text=None), ValidationError, "a comment needs its text"),
        (dict(trace_id="x", kind="rating", value=1.0, text=None), ValidationError, "must be a string"),
        (dict(trace_id="x", kind="reward", value=1.0, source=None), ValidationError, "source"),
    ],
)
def test_feedback_validation_errors_are_clear_and_write_nothing(store, kwargs, err, match) -> None:
    before = store.stats()["feedback"]
    with pytest.raises(err, match=match):
        record_feedback(store, **kwargs)
    assert store.stats()["feedback"] == before


def test_normalize_rating_scales() -> None:
    assert normalize_rating("up") == normalize_rating(True) == normalize_rating(1) == 1.0
    assert normalize_rating("👎") == normalize_rating(-1) == normalize_rating(False) == 0.0
    assert normalize_rating(1, "stars5") == 0.0 and normalize_rating(5, "stars5") == 1.0
    assert normalize_rating(5.5, "stars10") == 0.5 and normalize_rating(40, "percent") == 0.4
    for bad, scale in [("meh", "thumbs"), (6, "stars5"), (0, "stars5"), ("x", "percent"), (1, "moons")]:
        with pytest.raises(ValidationError):
            normalize_rating(bad, scale)  # type: ignore[arg-type]


def test_store_rejects_feedback_whose_text_is_not_a_string(store) -> None:
    from diffprompt.types import Feedback

    from .helpers import make_trace

    store.add_traces([make_trace(1, id="tr_fb")])
    with pytest.raises(ValidationError, match="text must be a string"):
        store.add_feedback([Feedback(trace_id="tr_fb", kind="comment", value=None, text=None)])  # type: ignore[arg-type]
    assert store.feedback_for(["tr_fb"]) == []


def test_wrap_graph_for_a_missing_slot_fails_at_construction(store, recorder) -> None:
    with pytest.raises(NotFoundError, match="slot 'nope' does not exist"):
        wrap_graph(build_graph(), slot="nope", store=store, recorder=recorder)
