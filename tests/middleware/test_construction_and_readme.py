"""Construction-time checks, the default spool, feedback right after a run, and the README snippet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents.support_agent import SEED_PROMPT, TOOLS, build_agent, scripted_model
from diffprompt.errors import NotFoundError, StoreError, ValidationError
from diffprompt.middleware import PromptAdaptationMiddleware
from diffprompt.store import open_store
from diffprompt.store.engine import make_engine
from diffprompt.store.memory import MemoryStore
from diffprompt.store.recorder import Recorder, default_spool_dir
from diffprompt.store.sql import SQLStore

README = Path(__file__).resolve().parents[2] / "README.md"
REFUND = "I want a refund for order #A1007, it arrived damaged."


def user(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_missing_or_invalid_slot_fails_at_construction(store, recorder) -> None:
    with pytest.raises(NotFoundError, match=r"slot 'billing' does not exist.*create_slot"):
        PromptAdaptationMiddleware("billing", store, recorder=recorder)
    for bad in ("", "   ", "bad name!"):
        with pytest.raises(ValidationError, match="invalid slot name"):
            PromptAdaptationMiddleware(bad, store, recorder=recorder)


def test_a_store_that_is_down_at_construction_does_not_stop_the_process(store, recorder, caplog) -> None:
    store.reads_down.set()
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    assert "cannot check slot 'support' now" in caplog.text
    store.reads_down.clear()
    out = build_agent(scripted_model(), [mw]).invoke(user(REFUND), {"configurable": {"thread_id": "d1"}})
    assert mw.flush(5) and store.get_trace(out["diffprompt_trace_id"]).slot == "support"


def test_feedback_right_after_a_run_waits_for_the_queued_trace(store) -> None:
    # a batching window longer than the run: the trace is still queued when the feedback comes
    mw = PromptAdaptationMiddleware("support", store, recorder=Recorder(store, flush_interval_s=0.5))
    agent = build_agent(scripted_model(), [mw])
    out = agent.invoke(user(REFUND), {"configurable": {"thread_id": "t-42"}})
    fb = mw.record_feedback(thread_id="t-42", kind="rating", value=1.0, text="solved it")
    assert fb.trace_id == out["diffprompt_trace_id"]
    mw.close()


class DownSQLStore(SQLStore):
    """A real SQLite store whose trace writes fail while ``down`` is set (the database is down)."""

    down = False

    def add_traces(self, traces):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreError("database is down (test double)")
        return super().add_traces(traces)


def _sql_store(path: Path) -> DownSQLStore:
    open_store(f"sqlite:///{path}").close()  # create the schema
    s = DownSQLStore(make_engine(f"sqlite:///{path}"))
    s.create_slot("support", SEED_PROMPT)
    return s


def test_default_recorder_spools_under_home_when_the_db_is_down_at_close(tmp_path: Path, home: Path) -> None:
    store = _sql_store(tmp_path / "app.db")
    mw = PromptAdaptationMiddleware("support", store)  # the README's form: no recorder, no spool_dir
    store.down = True
    out = build_agent(scripted_model(), [mw]).invoke(user(REFUND), {"configurable": {"thread_id": "s1"}})
    mw.close(timeout=1)
    spool = default_spool_dir(store)
    assert spool is not None and spool.parent == home / "spool"
    spooled = list(spool.glob("spool-*.jsonl"))
    assert spooled and out["diffprompt_trace_id"] in spooled[0].read_text()
    assert mw.recorder.stats().dropped == 0
    store.down = False
    again = Recorder.for_store(store)  # the next process replays it, into the same database
    assert again.flush(5)
    again.close()
    assert store.get_trace(out["diffprompt_trace_id"]).thread_id == "s1"
    store.close()


def test_each_database_gets_its_own_default_spool(tmp_path: Path, home: Path) -> None:
    a, b = _sql_store(tmp_path / "a.db"), _sql_store(tmp_path / "b.db")
    assert default_spool_dir(a) != default_spool_dir(b)
    assert default_spool_dir(a) == default_spool_dir(DownSQLStore(make_engine(f"sqlite:///{tmp_path / 'a.db'}")))
    assert default_spool_dir(MemoryStore()) is None  # nothing durable to replay into
    assert default_spool_dir(a, tmp_path / "mine") == tmp_path / "mine"
    a.close()
    b.close()


def _readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Wrap your agent") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_middleware_snippet_runs_top_to_bottom(tmp_path: Path, home: Path, monkeypatch) -> None:
    """The README's code, as printed, with a scripted model and the example tools."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompt.md").write_text(SEED_PROMPT, encoding="utf-8")
    code = _readme_snippet()
    assert "model" in code and "tools" in code
    ns: dict = {"model": scripted_model(), "tools": TOOLS}
    exec(compile(code, "README.md", "exec"), ns)  # our own README, as printed
    store = ns["store"]
    try:
        tr = store.trace_for_thread("t-42")
        kinds = sorted(f.kind for f in store.feedback_for([tr.id]))
        assert tr.slot == "support" and "rating" in kinds
    finally:
        store.close()


def test_memory_store_is_usable_without_home(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_slot("support", SEED_PROMPT)
    mw = PromptAdaptationMiddleware("support", store, spool_dir=tmp_path / "sp")
    out = build_agent(scripted_model(), [mw]).invoke(user(REFUND), {"configurable": {"thread_id": "m"}})
    mw.close()
    assert store.get_trace(out["diffprompt_trace_id"]).thread_id == "m"
