"""The Store contract (``diffprompt.store.testing``), run against memory, SQLite file and PostgreSQL.

PostgreSQL runs under the ``postgres`` marker and skips with the reason when no server is reachable
(``DIFFPROMPT_TEST_PG_URL``; ``.ci/run`` starts one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from diffprompt.store import Store, testing
from diffprompt.store.memory import MemoryStore


@pytest.mark.parametrize("check", testing.ALL_CHECKS, ids=testing.check_id)
def test_contract(check: testing.Check, harness: testing.StoreHarness) -> None:
    check(harness)


def test_suite_covers_every_protocol_method() -> None:
    """Each part of the Protocol has checks, and the union is exactly the four parts plus close()."""
    from diffprompt.store import base

    parts = (base.Registry, base.TraceLog, base.RunLog, base.Leases)
    methods = {m for p in parts for m in p.__dict__ if not m.startswith("_")}
    store_methods = {m for m in dir(base.Store) if not m.startswith("_")}
    assert store_methods == methods | {"close"}
    assert all(testing.REGISTRY_CHECKS) and testing.TRACE_LOG_CHECKS and testing.RUN_LOG_CHECKS
    assert len(testing.ALL_CHECKS) == len(set(testing.ALL_CHECKS))


def test_run_contract_passes_for_memory_and_reports_a_broken_backend(tmp_path: Path) -> None:
    """The exported runner is usable on its own, and a backend that breaks the contract is caught."""
    assert testing.run_contract(lambda clock: MemoryStore(clock=clock), shared_data=False) == []

    class ForgetfulStore(MemoryStore):
        def add_traces(self, traces):  # type: ignore[no-untyped-def]
            return super().add_traces(list(traces)[:1])  # loses all but the first trace of a batch

    failures = testing.run_contract(
        lambda clock: ForgetfulStore(clock=clock), shared_data=False, checks=testing.TRACE_LOG_CHECKS
    )
    assert "traces_roundtrip_dedup_and_queries" in [name for name, _ in failures]


def test_store_is_the_union_of_its_parts() -> None:
    from diffprompt.store import Leases, Registry, RunLog, TraceLog

    s: Store = MemoryStore()
    assert all(isinstance(s, p) for p in (Registry, TraceLog, RunLog, Leases, Store))
    open_fn: Callable[[Callable[[], datetime]], Store] = lambda clock: MemoryStore(clock=clock)  # noqa: E731
    with testing.StoreHarness(open_fn, shared_data=False) as h:
        assert isinstance(h.open(), Registry)
