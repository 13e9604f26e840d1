"""The ``Store`` contract as an executable suite: run it against any backend.

Every check is a plain function ``check_*(harness)`` that raises ``AssertionError`` (or the store's
own error) when a backend breaks the contract documented in ``diffprompt.store.base``. Checks are
grouped by concern (``REGISTRY_CHECKS``, ``TRACE_LOG_CHECKS``, ``RUN_LOG_CHECKS``,
``LEASE_CHECKS``; ``ALL_CHECKS`` is all of them). With pytest::

    from diffprompt.store import testing

    @pytest.mark.parametrize("check", testing.ALL_CHECKS, ids=testing.check_id)
    def test_my_backend(check, tmp_path):
        with testing.StoreHarness(lambda clock: MyStore(tmp_path / "db", clock=clock),
                                  shared_data=True) as h:
            check(h)

or without a test runner: ``testing.run_contract(open_fn, shared_data=True)`` returns the failures.
Each check must get a fresh, empty backend. ``shared_data`` says whether two stores opened by the
harness see the same data (a database: yes; an in-process fake: no); the concurrency checks then
use several stores, as separate processes would. Imports only the standard library and diffprompt.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from diffprompt.errors import ConflictError, NotFoundError, ValidationError
from diffprompt.spans import content_hash, segment
from diffprompt.store.base import Store
from diffprompt.store.routing import pick_version
from diffprompt.types import Feedback, Trace, Usage

__all__ = [
    "ALL_CHECKS",
    "LEASE_CHECKS",
    "REGISTRY_CHECKS",
    "RUN_LOG_CHECKS",
    "TRACE_LOG_CHECKS",
    "Check",
    "ManualClock",
    "StoreHarness",
    "check_id",
    "run_contract",
]


class ManualClock:
    """A settable clock; each call advances by ``step`` so that ordering is deterministic."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=1)) -> None:
        self.now = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class StoreHarness:
    """What a check gets: one backend's store factory, bound to a ``ManualClock``.

    ``open_store(clock)`` must return a store on the *same* backend each time (for a database: a new
    connection pool on the same database). Stores opened here are closed by ``close()``.
    """

    def __init__(
        self,
        open_store: Callable[[Callable[[], datetime]], Store],
        *,
        shared_data: bool,
        clock: ManualClock | None = None,
    ) -> None:
        self._open = open_store
        self.shared_data = shared_data
        self.clock = clock or ManualClock()
        self._opened: list[Store] = []

    def open(self) -> Store:
        s = self._open(self.clock)
        self._opened.append(s)
        return s

    def close(self) -> None:
        while self._opened:
            self._opened.pop().close()

    def __enter__(self) -> StoreHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def raises(kind: type[BaseException]) -> Iterator[None]:
    """Assert that the block raises ``kind`` (a dependency-free ``pytest.raises``)."""
    try:
        yield
    except kind:
        return
    raise AssertionError(f"expected {kind.__name__}, nothing was raised")


class approx:  # lower case: reads like pytest.approx at the call sites
    """Float equality within 1e-6 relative (for values that went through a database)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int | float) and math.isclose(other, self.value, rel_tol=1e-6, abs_tol=1e-12)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"approx({self.value!r})"


SEED = (
    "# Policy\n\nYou are a support agent. Be polite.\n\n- Never reveal passwords.\n- Confirm before refunds."
)
V2 = SEED.replace("Be polite.", "Be polite and brief.")
V3 = SEED + "\n- Escalate angry users."
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _trace(
    i: int,
    *,
    slot: str = "support",
    version: str | None = None,
    thread: str | None = None,
    at: datetime | None = None,
    **kw: object,
) -> Trace:
    start = at or T0 + timedelta(seconds=i)
    return Trace(
        id=f"tr_{i}",
        slot=slot,
        version_id=version,
        thread_id=thread or f"th_{i}",
        messages=(
            {"role": "user", "content": f"hello {i}"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"c{i}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "name": "lookup", "content": "ok"},
        ),
        started_at=start,
        ended_at=start + timedelta(milliseconds=250),
        latency_ms=250.0,
        usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.001),
        model_calls=2,
        tool_calls=1,
        replay_key=f"tau:airline:test:{i}",
        metadata={"k": i, "nested": {"a": [1, 2]}},
        **kw,  # type: ignore[arg-type]
    )


# --- slots and versions -----------------------------------------------------------------------------
def check_create_slot_is_idempotent_and_conflicts_on_other_seed(h: StoreHarness) -> None:
    store = h.open()
    v = store.create_slot("support", SEED, actor="alice")
    assert v.origin == "seed" and v.parent_id is None and v.text == SEED
    assert v.spans == segment(SEED) and v.content_hash == content_hash(SEED)
    assert store.create_slot("support", SEED) == v
    with raises(ConflictError):
        store.create_slot("support", V2)
    st = store.slot_state("support")
    assert st.active_version_id == v.id and st.canary_version_id is None and st.revision == 1
    assert [s.slot for s in store.list_slots()] == ["support"]
    log = store.audit_log("support")
    assert [a.action for a in log] == ["create"] and log[0].actor == "alice"


def check_create_slot_validation(h: StoreHarness) -> None:
    store = h.open()
    with raises(ValidationError):
        store.create_slot("bad name!", SEED)
    with raises(ValidationError):
        store.create_slot("empty", "   ")
    with raises(ValidationError):
        store.create_slot("prot", SEED, protected_span_ids=["sp_nope"])
    assert store.list_slots() == []


def check_versions_dedup_order_and_parents(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    store.create_slot("other", "Other prompt.")
    v2 = store.add_version("support", V2, parent_id=seed.id, origin="manual", note="shorter")
    assert store.add_version("support", V2, parent_id=seed.id, origin="manual") == v2
    v3 = store.add_version("support", V3, parent_id=v2.id, origin="optimizer:run_1")
    assert [v.id for v in store.list_versions("support")] == [seed.id, v2.id, v3.id]
    got = store.get_version(v2.id)
    assert got == v2 and got.note == "shorter" and got.spans == segment(V2)
    assert store.active_version("support").id == seed.id  # adding never activates
    other_v = store.list_versions("other")[0]
    with raises(ConflictError):
        store.add_version("support", "x y z.", parent_id=other_v.id, origin="manual")
    with raises(NotFoundError):
        store.add_version("support", "x y z.", parent_id="pv_missing", origin="manual")
    with raises(NotFoundError):
        store.add_version("nope", "x y z.", parent_id=None, origin="manual")
    with raises(NotFoundError):
        store.get_version("pv_missing")
    with raises(NotFoundError):
        store.list_versions("nope")
    with raises(NotFoundError):
        store.slot_state("nope")
    assert len(store.list_versions("support")) == 3


# --- pointer moves ------------------------------------------------------------------------------------
def check_promote_is_audited_idempotent_and_clears_canary(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    v2 = store.add_version("support", V2, parent_id=seed.id, origin="manual")
    v3 = store.add_version("support", V3, parent_id=v2.id, origin="manual")
    e = store.promote("support", v2.id, actor="bob", reason="better")
    assert (e.action, e.from_version_id, e.to_version_id, e.actor, e.reason) == (
        "promote",
        seed.id,
        v2.id,
        "bob",
        "better",
    )
    rev = store.slot_state("support").revision
    assert store.promote("support", v2.id, actor="bob", reason="again") == e  # no-op
    assert store.slot_state("support").revision == rev
    store.set_canary("support", v3.id, 0.25, actor="bob", reason="try")
    assert store.slot_state("support").canary_version_id == v3.id
    e2 = store.promote("support", v2.id, actor="bob", reason="stop canary")  # active, but canary set: clears
    assert e2.id != e.id
    st = store.slot_state("support")
    assert st.active_version_id == v2.id and st.canary_version_id is None and st.canary_share == 0.0
    assert [a.action for a in store.audit_log("support")] == ["create", "promote", "canary", "promote"]
    with raises(NotFoundError):
        store.promote("support", "pv_missing", actor="bob", reason="")
    with raises(ValidationError):
        store.promote("support", v3.id, actor="", reason="who?")
    assert store.slot_state("support") == st


def check_rollback_default_chain_explicit_and_errors(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    v2 = store.add_version("support", V2, parent_id=seed.id, origin="manual")
    v3 = store.add_version("support", V3, parent_id=v2.id, origin="manual")
    with raises(ConflictError):
        store.rollback("support", actor="ops", reason="nothing before the seed")
    store.promote("support", v2.id, actor="ops", reason="")
    store.promote("support", v3.id, actor="ops", reason="")
    e = store.rollback("support", actor="ops", reason="bad")
    assert (e.action, e.from_version_id, e.to_version_id) == ("rollback", v3.id, v2.id)
    assert store.rollback("support", actor="ops", reason="worse").to_version_id == seed.id
    assert store.rollback("support", v3.id, actor="ops", reason="any version").to_version_id == v3.id
    assert (
        store.rollback("support", v3.id, actor="ops", reason="again").id == store.audit_log("support")[-1].id
    )
    # another slot's version: ConflictError, nothing written
    other = store.create_slot("other", "Other prompt.")
    before_log, before_state = store.audit_log("support"), store.slot_state("support")
    with raises(ConflictError):
        store.rollback("support", other.id, actor="ops", reason="wrong slot")
    with raises(ConflictError):
        store.promote("support", other.id, actor="ops", reason="wrong slot")
    with raises(NotFoundError):
        store.rollback("support", "pv_missing", actor="ops", reason="")
    assert store.audit_log("support") == before_log and store.slot_state("support") == before_state


def check_canary_set_clear_validate_and_route(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    v2 = store.add_version("support", V2, parent_id=seed.id, origin="manual")
    for bad in (0.0, 1.0, -0.1, 1.5, float("nan")):
        with raises(ValidationError):
            store.set_canary("support", v2.id, bad, actor="ops", reason="")
    with raises(ConflictError):
        store.set_canary("support", seed.id, 0.5, actor="ops", reason="already active")
    e = store.set_canary("support", v2.id, 0.2, actor="ops", reason="try")
    assert e.action == "canary" and e.canary_share == approx(0.2) and e.to_version_id == v2.id
    assert store.set_canary("support", v2.id, 0.2, actor="ops", reason="same").id == e.id
    st = store.slot_state("support")
    picks = Counter(pick_version(st, f"thread-{i}") for i in range(4000))
    assert abs(picks[v2.id] / 4000 - 0.2) < 0.03 and set(picks) == {seed.id, v2.id}
    assert all(pick_version(st, f"thread-{i}") == pick_version(st, f"thread-{i}") for i in range(50))
    c = store.set_canary("support", None, 0, actor="ops", reason="done")
    assert c.action == "canary_clear" and c.from_version_id == v2.id
    assert store.set_canary("support", None, 0, actor="ops", reason="again").id == c.id
    st = store.slot_state("support")
    assert st.canary_version_id is None and {pick_version(st, f"t{i}") for i in range(100)} == {seed.id}


def check_compare_and_set_moves(h: StoreHarness) -> None:
    """``expected_active``: a move applies only while that version is still active; else nothing."""
    store = h.open()
    seed = store.create_slot("support", SEED)
    v2 = store.add_version("support", V2, parent_id=seed.id, origin="manual")
    v3 = store.add_version("support", V3, parent_id=seed.id, origin="manual")
    store.promote("support", v2.id, actor="ops", reason="", expected_active=seed.id)
    before_log, before_state = store.audit_log("support"), store.slot_state("support")
    with raises(ConflictError):
        store.promote("support", v3.id, actor="bot", reason="stale", expected_active=seed.id)
    with raises(ConflictError):
        store.set_canary("support", v3.id, 0.2, actor="bot", reason="stale", expected_active=seed.id)
    assert store.audit_log("support") == before_log and store.slot_state("support") == before_state
    store.set_canary("support", v3.id, 0.2, actor="bot", reason="fresh", expected_active=v2.id)
    assert store.slot_state("support").canary_version_id == v3.id


def check_protected_spans(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    ids = [s.id for s in seed.spans[:2]]
    rev = store.slot_state("support").revision
    store.set_protected_spans("support", ids, actor="alice", reason="legal")
    st = store.slot_state("support")
    assert st.protected_span_ids == tuple(ids) and st.revision == rev + 1
    store.set_protected_spans("support", ids, actor="alice", reason="same")  # no-op
    assert store.slot_state("support").revision == rev + 1
    with raises(ValidationError):
        store.set_protected_spans("support", ["sp_unknown"], actor="alice", reason="")
    assert store.slot_state("support").protected_span_ids == tuple(ids)
    assert store.audit_log("support")[-1].action == "protect"


def check_concurrent_promotions_are_serialised(h: StoreHarness) -> None:
    s0 = h.open()
    seed = s0.create_slot("support", SEED)
    versions = [seed.id] + [
        s0.add_version("support", SEED + f"\n- rule {i}.", parent_id=seed.id, origin="manual").id
        for i in range(3)
    ]
    # SQL backends: every thread its own store (own pool, like separate processes); memory shares one.
    stores = [s0] if not h.shared_data else [h.open() for _ in range(4)]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        st = stores[k % len(stores)]
        try:
            for j in range(6):
                st.promote("support", versions[(k + j) % len(versions)], actor=f"w{k}", reason=f"{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = s0.audit_log("support")
    assert log[0].action == "create"
    for prev, cur in itertools.pairwise(log):  # a chain: each move starts where the last ended
        assert cur.from_version_id == prev.to_version_id and cur.from_version_id != cur.to_version_id
    st = s0.slot_state("support")
    assert st.active_version_id == log[-1].to_version_id and st.revision == len(log)


# --- traces -------------------------------------------------------------------------------------------
def check_traces_roundtrip_dedup_and_queries(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    batch = [_trace(i, version=seed.id) for i in range(5)]
    assert store.add_traces(batch) == 5
    assert store.add_traces([*batch[:3], _trace(5, version=seed.id), _trace(5, version=seed.id)]) == 1
    assert store.add_traces([]) == 0
    assert store.count_traces() == 6 and store.count_traces("support") == 6 and store.count_traces("x") == 0
    got = store.get_trace("tr_2")
    assert got == batch[2]  # messages, usage, metadata, timestamps survive exactly
    assert got.started_at.tzinfo is not None
    with raises(NotFoundError):
        store.get_trace("tr_missing")
    assert [t.id for t in store.list_traces("support")] == [f"tr_{i}" for i in range(6)]
    assert [t.id for t in store.list_traces("support", limit=2)] == ["tr_4", "tr_5"]
    assert [
        t.id for t in store.list_traces(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    ] == ["tr_2", "tr_3"]
    store.add_traces([_trace(9, slot="other", version="pv_x")])
    assert [t.id for t in store.list_traces(version_id="pv_x")] == ["tr_9"]
    assert len(store.list_traces()) == 7


def check_trace_for_thread_is_most_recent(h: StoreHarness) -> None:
    store = h.open()
    store.add_traces([_trace(1, thread="conv"), _trace(3, thread="conv"), _trace(2, thread="conv", slot="b")])
    assert store.trace_for_thread("conv").id == "tr_3"
    assert store.trace_for_thread("conv", slot="b").id == "tr_2"
    with raises(NotFoundError):
        store.trace_for_thread("nobody")


def check_trace_validation_writes_nothing(h: StoreHarness) -> None:
    store = h.open()
    bad = Trace(id="", slot="s", version_id=None, thread_id="t", messages=(), started_at=T0, ended_at=T0)
    with raises(ValidationError):
        store.add_traces([_trace(1), bad])
    assert store.count_traces() == 0


def check_concurrent_trace_writers_dedup(h: StoreHarness) -> None:
    s0 = h.open()
    stores = [s0] if not h.shared_data else [h.open() for _ in range(3)]
    counts: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        n = 0
        for b in range(5):  # overlapping id ranges across workers
            n += stores[k % len(stores)].add_traces([_trace(i) for i in range(b * 20, b * 20 + 40)])
        with lock:
            counts.append(n)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 120 == s0.count_traces()


# --- feedback, window, stats --------------------------------------------------------------------------
def check_feedback_validation_is_all_or_nothing(h: StoreHarness) -> None:
    store = h.open()
    store.add_traces([_trace(1), _trace(2)])
    good = Feedback(trace_id="tr_1", kind="reward", value=1.0, source="env")
    for bad in (
        Feedback(trace_id="tr_2", kind="reward", value=1.5),
        Feedback(trace_id="tr_2", kind="reward", value=-0.01),
        Feedback(trace_id="tr_2", kind="rating", value=None),
        Feedback(trace_id="tr_2", kind="thumbs", value=1.0),  # type: ignore[arg-type]
        Feedback(trace_id="tr_2", kind="comment", value=None, text="  "),
        Feedback(trace_id="tr_2", kind="comment", value=0.5, text="x"),
        Feedback(trace_id="tr_2", kind="comment", value=None, text=None),  # type: ignore[arg-type]
        Feedback(trace_id="tr_2", kind="reward", value=1.0, text=None),  # type: ignore[arg-type]
    ):
        with raises(ValidationError):
            store.add_feedback([good, bad])
    with raises(NotFoundError):
        store.add_feedback([good, Feedback(trace_id="tr_unknown", kind="reward", value=0.0)])
    assert store.feedback_for(["tr_1", "tr_2"]) == []
    assert store.stats()["feedback"] == 0


def check_feedback_window_and_stats(h: StoreHarness) -> None:
    store = h.open()
    seed = store.create_slot("support", SEED)
    store.add_traces([_trace(i, version=seed.id) for i in range(4)] + [_trace(10, slot="other")])
    out = store.add_feedback(
        [
            Feedback(trace_id="tr_0", kind="reward", value=1.0, source="env", created_at=T0),
            Feedback(
                trace_id="tr_0", kind="reward", value=0.0, source="env", created_at=T0 + timedelta(hours=1)
            ),
            Feedback(trace_id="tr_1", kind="reward", value=1.0, source="env"),
            Feedback(trace_id="tr_2", kind="rating", value=0.8, source="user"),
            Feedback(trace_id="tr_2", kind="comment", value=None, text="too long", source="user"),
            Feedback(trace_id="tr_10", kind="reward", value=0.0),
        ]
    )
    assert all(f.id is not None for f in out) and len({f.id for f in out}) == 6
    assert [f.kind for f in store.feedback_for(["tr_2"])] == ["rating", "comment"]
    win = store.window("support")
    assert [w.trace.id for w in win] == ["tr_0", "tr_1", "tr_2", "tr_3"]
    assert [w.reward for w in win] == [0.0, 1.0, approx(0.8), None]
    assert win[2].comments == ("too long",)
    assert [w.trace.id for w in store.window("support", limit=1)] == ["tr_3"]
    st = store.stats("support")
    assert st["traces"] == 4 and st["feedback"] == 5 and st["rewarded_traces"] == 2
    assert st["mean_reward"] == approx(0.5)  # latest reward of tr_0 (0.0) and tr_1 (1.0)
    assert st["feedback_by_kind"] == {"comment": 1, "rating": 1, "reward": 3}
    assert st["versions"] == 1
    assert store.stats()["traces"] == 5 and store.stats()["feedback"] == 6
    empty = store.stats("nobody")
    assert empty["traces"] == 0 and empty["mean_reward"] is None


# --- runs and leases ----------------------------------------------------------------------------------
def check_runs(h: StoreHarness) -> None:
    store = h.open()
    store.save_run("run_1", "support", {"config": {"seed": 1}, "candidates": []}, status="running")
    store.save_run("run_2", "other", {"x": 1}, status="done")
    store.save_run("run_1", "support", {"config": {"seed": 1}, "candidates": [1, 2]}, status="done")
    r = store.get_run("run_1")
    assert (
        r["status"] == "done"
        and r["candidates"] == [1, 2]
        and r["run_id"] == "run_1"
        and r["slot"] == "support"
    )
    assert [x["run_id"] for x in store.list_runs("support")] == ["run_1"]
    assert len(store.list_runs()) == 2 and len(store.list_runs(limit=1)) == 1
    with raises(NotFoundError):
        store.get_run("run_missing")


def check_leases(h: StoreHarness) -> None:
    store, clock = h.open(), h.clock
    assert store.acquire_lease("sched", "a", 30)
    assert store.acquire_lease("sched", "a", 30)  # renew
    assert not store.acquire_lease("sched", "b", 30)
    clock.advance(31)
    assert store.acquire_lease("sched", "b", 30)  # expired: taken over
    assert not store.acquire_lease("sched", "a", 30)
    store.release_lease("sched", "a")  # not the owner: no effect
    assert not store.acquire_lease("sched", "a", 30)
    store.release_lease("sched", "b")
    assert store.acquire_lease("sched", "a", 30)


Check = Callable[[StoreHarness], None]
REGISTRY_CHECKS: tuple[Check, ...] = (
    check_create_slot_is_idempotent_and_conflicts_on_other_seed,
    check_create_slot_validation,
    check_versions_dedup_order_and_parents,
    check_promote_is_audited_idempotent_and_clears_canary,
    check_rollback_default_chain_explicit_and_errors,
    check_canary_set_clear_validate_and_route,
    check_protected_spans,
    check_compare_and_set_moves,
    check_concurrent_promotions_are_serialised,
)
TRACE_LOG_CHECKS: tuple[Check, ...] = (
    check_traces_roundtrip_dedup_and_queries,
    check_trace_for_thread_is_most_recent,
    check_trace_validation_writes_nothing,
    check_concurrent_trace_writers_dedup,
    check_feedback_validation_is_all_or_nothing,
    check_feedback_window_and_stats,
)
RUN_LOG_CHECKS: tuple[Check, ...] = (check_runs,)
LEASE_CHECKS: tuple[Check, ...] = (check_leases,)
ALL_CHECKS: tuple[Check, ...] = REGISTRY_CHECKS + TRACE_LOG_CHECKS + RUN_LOG_CHECKS + LEASE_CHECKS


def check_id(check: Any) -> str:
    """A short test id for a check (``check_runs`` -> ``runs``)."""
    return str(getattr(check, "__name__", check)).removeprefix("check_")


def run_contract(
    open_store: Callable[[Callable[[], datetime]], Store],
    *,
    shared_data: bool,
    checks: Sequence[Check] = ALL_CHECKS,
) -> list[tuple[str, BaseException]]:
    """Run ``checks`` (each on a fresh harness); returns ``(check id, error)`` for every failure.

    ``open_store`` must give an *empty* backend the first time it is called for each check (e.g.
    create a fresh database or schema per call of an outer factory).
    """
    failures: list[tuple[str, BaseException]] = []
    for check in checks:
        with StoreHarness(open_store, shared_data=shared_data) as h:
            try:
                check(h)
            except Exception as exc:
                failures.append((check_id(check), exc))
    return failures
