"""FAULT: stop PostgreSQL in the middle of recording. No agent call fails; after the restart every
trace lands (counts equal)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agents.support_agent import SEED_PROMPT, build_agent, requests, scripted_model
from diffprompt.middleware import PromptAdaptationMiddleware
from diffprompt.store import open_store
from diffprompt.store.recorder import Recorder

from .pgcluster import PgCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg():  # type: ignore[no-untyped-def]
    why = PgCluster.unavailable()
    if why:
        pytest.skip(f"private PostgreSQL cluster unavailable: {why}")
    cluster = PgCluster()
    try:
        cluster.init()
    except Exception as exc:
        cluster.destroy()
        pytest.skip(f"could not start a private PostgreSQL cluster: {exc}")
    yield cluster
    cluster.destroy()


def test_postgres_outage_mid_recording_loses_nothing_and_breaks_nothing(pg, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    store = open_store(pg.url)
    store.create_slot("support", SEED_PROMPT)
    recorder = Recorder(
        store, batch_size=16, flush_interval_s=0.01, backoff_s=0.05, max_backoff_s=0.5, spool_dir=tmp_path / "spool"
    )
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder, refresh_s=0.1)
    agent = build_agent(scripted_model(), [mw])
    texts = requests(300)
    trace_ids: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def converse(i: int) -> None:
        try:
            out = agent.invoke(
                {"messages": [{"role": "user", "content": texts[i]}]}, {"configurable": {"thread_id": f"pg-{i}"}}
            )
            with lock:
                trace_ids.append(out["diffprompt_trace_id"])
        except BaseException as exc:  # the test's point: there must be none
            failures.append(exc)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(converse, range(100)))  # database up
        pg.stop()
        t0 = time.perf_counter()
        list(pool.map(converse, range(100, 200)))  # database down: agents keep serving
        down_s = time.perf_counter() - t0
        down_stats = recorder.stats()
        pg.start()
        list(pool.map(converse, range(200, 300)))  # back up

    assert not failures, failures[:3]
    assert len(trace_ids) == 300
    assert not down_stats.db_up and down_stats.spooled > 0 and down_stats.retries > 0
    assert down_s < 60
    assert recorder.flush(60), recorder.stats()
    stats = recorder.close()
    assert stats.dropped == 0 and stats.pending == 0 and stats.spool_backlog == 0
    assert store.count_traces("support") == 300
    assert {t.id for t in store.list_traces("support")} == set(trace_ids)
    assert not list((tmp_path / "spool").glob("spool-*"))
    store.close()
