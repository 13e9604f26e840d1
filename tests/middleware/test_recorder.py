from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprompt.store.memory import MemoryStore
from diffprompt.store.recorder import Recorder, trace_from_json, trace_to_json
from diffprompt.types import Trace, Usage

from .helpers import FlakyStore, make_trace

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False), st.text(max_size=20)
)
json_val = st.recursive(
    json_leaf,
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=8), ch, max_size=3),
    max_leaves=10,
)
tzs = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.dictionaries(st.text(max_size=8), json_val, max_size=4), max_size=5),
    metadata=st.dictionaries(st.text(max_size=8), json_val, max_size=4),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=tzs),
    latency=st.floats(min_value=0, max_value=1e9),
    tokens=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.floats(0, 1e6)),
    opt=st.tuples(st.none() | st.text(max_size=10), st.none() | st.text(max_size=10)),
)
def test_trace_json_round_trip_is_exact(messages, metadata, start, latency, tokens, opt) -> None:
    tr = Trace(
        id="tr_1",
        slot="s",
        version_id=opt[0],
        thread_id="t",
        messages=tuple(messages),
        started_at=start,
        ended_at=start + timedelta(microseconds=7),
        latency_ms=latency,
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=tokens[2]),
        model_calls=3,
        tool_calls=2,
        replay_key=opt[1],
        error=opt[0],
        metadata=metadata,
    )
    line = trace_to_json(tr)
    assert "\n" not in line
    assert trace_from_json(line) == tr


def test_batches_everything_into_the_store() -> None:
    store = FlakyStore()
    rec = Recorder(store, batch_size=100, flush_interval_s=0.01)
    for i in range(1000):
        rec.submit(make_trace(i))
    assert rec.flush(10)
    st_ = rec.close()
    assert store.count_traces() == 1000
    assert st_.submitted == st_.written == 1000
    assert st_.dropped == st_.spooled == 0 and st_.pending == 0
    assert store.add_calls < 100  # batched, not one insert per trace


def test_resubmitted_ids_are_counted_as_duplicates() -> None:
    store = MemoryStore()
    rec = Recorder(store, flush_interval_s=0.01)
    tr = make_trace(1)
    rec.submit(tr)
    rec.flush(5)
    rec.submit(tr)
    s = rec.close()
    assert store.count_traces() == 1 and s.written == 1 and s.duplicates == 1


def test_store_down_spools_in_memory_then_replays() -> None:
    store = FlakyStore()
    store.down.set()
    rec = Recorder(store, batch_size=50, flush_interval_s=0.01, backoff_s=0.01, max_backoff_s=0.05)
    for i in range(300):
        rec.submit(make_trace(i))  # never raises
    assert not rec.flush(0.5)
    mid = rec.stats()
    assert not mid.db_up and mid.retries >= 1 and mid.spooled == 300 and mid.spool_backlog == 300
    assert store.count_traces() == 0
    store.down.clear()
    assert rec.flush(10)
    s = rec.close()
    assert store.count_traces() == 300
    assert s.replayed == 300 and s.dropped == 0 and s.db_up and s.spool_backlog == 0


def test_file_spool_survives_a_restart(tmp_path: Path) -> None:
    store = FlakyStore()
    store.down.set()
    spool = tmp_path / "spool"
    rec = Recorder(store, flush_interval_s=0.01, backoff_s=0.01, spool_dir=spool)
    traces = [make_trace(i) for i in range(120)]
    for tr in traces:
        rec.submit(tr)
    s = rec.close(timeout=0.5)
    assert s.spooled == 120 and s.dropped == 0
    assert list(spool.glob("spool-*.jsonl"))
    # a new recorder (next process) against the recovered store adopts our files
    store.down.clear()
    rec2 = Recorder(store, flush_interval_s=0.01, spool_dir=spool)
    assert rec2.flush(10)
    rec2.close()
    assert store.count_traces() == 120
    assert {t.id for t in store.list_traces()} == {t.id for t in traces}
    assert store.get_trace(traces[7].id) == traces[7]  # exact round trip through the spool
    assert not list(spool.iterdir())


def test_adopts_files_of_dead_processes_and_counts_torn_lines(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    traces = [make_trace(i) for i in range(5)]
    body = "\n".join(trace_to_json(t) for t in traces) + '\n{"id": "tr_torn", "slo'
    (spool / "spool-999999999-deadbeef-000000.jsonl").write_text(body)
    store = MemoryStore()
    rec = Recorder(store, flush_interval_s=0.01, spool_dir=spool)
    assert rec.flush(10)
    s = rec.close()
    assert store.count_traces() == 5 and s.replayed == 5 and s.dropped == 1


def test_queue_overflow_goes_to_the_spool_not_the_floor() -> None:
    gate = threading.Event()

    class SlowStore(MemoryStore):
        def add_traces(self, traces):  # type: ignore[no-untyped-def]
            gate.wait(10)
            return super().add_traces(traces)

    store = SlowStore()
    rec = Recorder(store, batch_size=5, max_queue=10, flush_interval_s=0.01)
    t0 = time.perf_counter()
    for i in range(200):
        rec.submit(make_trace(i))
    assert time.perf_counter() - t0 < 1.0  # submit does not wait on the blocked store
    assert rec.stats().spooled > 0
    gate.set()
    assert rec.flush(10)
    s = rec.close()
    assert store.count_traces() == 200 and s.dropped == 0


def test_invalid_trace_is_dropped_counted_and_the_rest_written(caplog) -> None:
    store = MemoryStore()
    rec = Recorder(store, batch_size=10, flush_interval_s=0.01)
    good = [make_trace(i) for i in range(9)]
    for tr in good[:4]:
        rec.submit(tr)
    rec.submit(make_trace(99, slot=""))  # the store rejects it (ValidationError)
    for tr in good[4:]:
        rec.submit(tr)
    assert rec.flush(5)
    s = rec.close()
    assert store.count_traces() == 9 and s.dropped == 1 and s.written == 9
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_outage_in_the_middle_of_a_stream_loses_nothing() -> None:
    store = FlakyStore()
    rec = Recorder(store, batch_size=20, flush_interval_s=0.005, backoff_s=0.005, max_backoff_s=0.02)
    ids = []

    def producer(k: int) -> None:
        for i in range(250):
            tr = make_trace(k * 1000 + i)
            ids.append(tr.id)
            rec.submit(tr)
            if i % 50 == 0:
                time.sleep(0.005)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.01)
    store.down.set()
    time.sleep(0.1)
    store.down.clear()
    for t in threads:
        t.join()
    assert rec.flush(10)
    s = rec.close()
    assert store.count_traces() == 1000 == len(set(ids))
    assert s.submitted == 1000 and s.dropped == 0
    assert s.written + s.duplicates >= 1000


def test_an_unlinked_sqlite_file_is_not_reported_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Deleting the database under a live process: traces go to the spool, not into a ghost file."""
    from diffprompt.store import open_store

    from .helpers import make_trace

    db = tmp_path / "live.db"
    store = open_store(f"sqlite:///{db}")
    rec = Recorder(store, spool_dir=tmp_path / "spool", flush_interval_s=0.005, backoff_s=0.01, max_backoff_s=0.05)
    first = make_trace(1)
    rec.submit(first)
    assert rec.flush(5) and rec.stats().written == 1
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"live.db{suffix}").unlink(missing_ok=True)
    lost = make_trace(2)
    rec.submit(lost)
    assert not rec.flush(1)
    st = rec.stats()
    assert st.written == 1 and st.dropped == 0 and st.spooled >= 1 and not st.db_up
    assert st.last_error is not None and "deleted" in st.last_error
    rec.close(timeout=1)
    assert any(lost.id in p.read_text() for p in (tmp_path / "spool").glob("spool-*"))
    store.close()


def test_a_full_disk_is_named_as_such() -> None:
    import sqlite3

    import sqlalchemy as sa

    from diffprompt.errors import StoreError
    from diffprompt.store.engine import translate_errors

    with pytest.raises(StoreError, match="the disk holding the database is full") as info, translate_errors(
        "sqlite:///x.db"
    ):
        raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert "server is running" not in str(info.value)


def test_feedback_while_the_recorder_cannot_write_names_the_database_error() -> None:
    """Not "no trace with id ...; check the id": the trace is held by the recorder, and says why."""
    from diffprompt.errors import StoreError
    from diffprompt.middleware import record_feedback

    from .helpers import FlakyStore, make_trace

    store = FlakyStore()
    rec = Recorder(store, flush_interval_s=0.005, backoff_s=0.01, max_backoff_s=0.05)
    store.down.set()
    tr = make_trace(1)
    rec.submit(tr)
    with pytest.raises(StoreError, match=r"feedback not recorded: .*database is down \(test double\)"):
        record_feedback(store, trace_id=tr.id, kind="reward", value=1.0, recorder=rec, flush_timeout=0.5)
    store.down.clear()
    assert rec.flush(5)
    assert record_feedback(store, trace_id=tr.id, kind="reward", value=1.0, recorder=rec).trace_id == tr.id
    rec.close()


def test_a_really_full_sqlite_database_is_named_full_and_spooled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``PRAGMA max_page_count`` makes SQLite hit its size limit: the error SQLite gives on a full disk."""
    from sqlalchemy import event

    from diffprompt.errors import StoreError
    from diffprompt.store import open_store

    from .helpers import make_trace

    store = open_store(f"sqlite:///{tmp_path / 'full.db'}")
    with store.engine.connect() as c:  # type: ignore[attr-defined]
        pages = int(c.exec_driver_sql("PRAGMA page_count").scalar())

    @event.listens_for(store.engine, "connect")  # type: ignore[attr-defined]
    def _cap(dbapi_conn, _rec) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages + 2}")

    store.engine.dispose()  # type: ignore[attr-defined]
    big = [make_trace(i, messages=({"role": "user", "content": "x" * 50_000},)) for i in range(20)]
    with pytest.raises(StoreError, match="disk holding the database is full"):
        store.add_traces(big)
    rec = Recorder(store, spool_dir=tmp_path / "spool", flush_interval_s=0.005, backoff_s=0.01, max_backoff_s=0.05)
    for tr in big:
        rec.submit(tr)
    assert not rec.flush(1)
    st = rec.stats()
    assert st.dropped == 0 and st.spooled == 20 and "full" in (st.last_error or "")
    rec.close(timeout=1)
    store.close()
