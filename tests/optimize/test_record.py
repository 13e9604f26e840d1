"""The typed run record: JSON round trip, version-1 (untyped dict) records, unknown keys kept."""

from __future__ import annotations

import json

import pytest

from diffprompt.errors import ValidationError
from diffprompt.optimize import history
from diffprompt.optimize.record import (
    SCHEMA_VERSION,
    AttributionRow,
    CandidateRecord,
    CaseUse,
    CostRecord,
    EpisodeRecord,
    FinalistRecord,
    IterationRecord,
    ReplayCase,
    ReplayRecord,
    RunRecord,
    SpanChangeRecord,
    StopRecord,
    VersionRef,
    VersionReplay,
    WindowInfo,
)
from diffprompt.store.memory import MemoryStore
from diffprompt.types import GateDecision

# What the round wrote before the record had a type (schema version 1), trimmed from a real run.
V1 = {
    "run_id": "run_abc",
    "slot": "s",
    "started_at": "2026-01-01T00:00:00+00:00",
    "seed": 1,
    "config": {"n_candidates": 2},
    "config_hash": "0123456789abcdef",
    "editor": "ar",
    "env": "fake",
    "dry_run": False,
    "actor": "optimizer",
    "incumbent": {"id": "v0", "text": "- Rule one.\n"},
    "window": {"key": "k1", "n": 4, "failures": 2, "successes": 2, "trace_ids": ["t1", "t2"]},
    "attribution": [
        {
            "span_id": "sp_1",
            "score": 0.6,
            "components": {"blame": 2.0, "similarity": 0.1, "likelihood": 0.0},
            "evidence": [{"source": "blame", "trace_id": "t1", "reason": "missing rule", "kind": "missing"}],
            "insert": True,
        }
    ],
    "cases": {"screen": ["k1"], "holdout": ["k2", "k3"]},
    "iterations": [
        {
            "iteration": 0,
            "edit_budget": 3,
            "masked_span_ids": ["sp_2"],
            "inserted": ["sp_1"],
            "masked_prompt": "- Rule one.\n[MASK]",
        }
    ],
    "candidates": [
        {
            "editor": "ar",
            "seed": 0,
            "status": "screened",
            "reason": "",
            "screen_score": 1.0,
            "accepted": True,
            "text": "- Rule one.\n- Rule two.\n",
            "masked_span_ids": ["sp_2"],
            "changed_span_ids": [],
            "new_texts": {"sp_2": "- Rule two."},
            "diff": "+ [sp_3] - Rule two.",
        }
    ],
    "screens": [],
    "replay": {
        "cases": [{"id": "k2", "replay_key": "k2", "slice": ""}],
        "trials": 1,
        "seed": 7920,
        "seconds": 0.01,
        "versions": {
            "incumbent": {
                "mean": 0.0,
                "errors": 0,
                "model_calls": 1,
                "tokens": 10,
                "cost_usd": 0.0,
                "episodes": [{"case": "k2", "trial": 0, "reward": 0.0, "error": None, "calls": 1}],
            },
            "final0": {"mean": 1.0, "errors": 0, "model_calls": 1, "tokens": 12, "cost_usd": 0.0, "episodes": []},
        },
    },
    "scores": {"v0": 0.0, "v1": 1.0},
    "finalist": {
        "index": 0,
        "text": "- Rule one.\n- Rule two.\n",
        "diff": "+ [sp_3] - Rule two.",
        "changed_span_ids": [],
        "span_changes": [{"kind": "added", "old_id": None, "old": None, "new_id": "sp_3", "new": "- Rule two."}],
    },
    "decision": {"kind": "promote", "stats": {"p_value": 0.01, "mean_gain": 1.0}, "reasons": ["significant"]},
    "promoted_version": "v1",
    "rejected_edits": {"sp_2": ["- Bad text."]},
    "ended_at": "2026-01-01T00:01:00+00:00",
    "status": "promoted",
    "updated_at": "2026-01-01T00:01:00+00:00",
    "timings": {"collect": 0.01, "replay": 0.5},
    "cost": {
        "target_calls": 12,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": 0.0,
        "wall_s": 0.6,
        "meter": {"calls": 3, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.0},
    },
    "job_id": "nightly",  # added by the scheduler
    "tick": "c202601010300",
}


def _full() -> RunRecord:
    return RunRecord(
        run_id="run_x",
        slot="s",
        status="rejected",
        started_at="2026-01-01T00:00:00+00:00",
        seed=3,
        config={"n_candidates": 2, "gate": {"alpha": 0.05}},
        config_hash="h",
        editor="dlm",
        editor_capabilities={"whole_prompt": False, "reads_traces": True, "oracle": False},
        env="tau:airline",
        incumbent=VersionRef(id="v0", text="- a.\n"),
        window=WindowInfo(key="k", n=3, failures=1, successes=2, trace_ids=("t1", "t2", "t3")),
        attribution=(AttributionRow(span_id="sp", score=0.5, components={"blame": 1.0}, evidence=({"x": 1},)),),
        cases=CaseUse(
            screen=("c1",),
            holdout=("c2",),
            blamer_trace_ids=("t1",),
            editor_trace_ids=("t1",),
            read_replay_keys=("c1",),
            holdout_replay_keys=("c2",),
        ),
        iterations=(IterationRecord(iteration=0, edit_budget=2, masked_span_ids=("sp",), masked_prompt="[MASK]"),),
        candidates=(
            CandidateRecord(
                editor="dlm", seed=1, status="malformed", reason="cut off", text="x", new_texts={"sp": "x"}, iteration=0
            ),
        ),
        screens=(ReplayRecord(cases=(ReplayCase(id="c1"),), versions={"parent": VersionReplay(mean=0.5)}),),
        replay=ReplayRecord(
            cases=(ReplayCase(id="c2", replay_key="c2", slice="bags"),),
            trials=2,
            seed=9,
            versions={
                "incumbent": VersionReplay(mean=0.0, episodes=(EpisodeRecord(case="c2", error="boom"),)),
                "candidate": VersionReplay(mean=1.0),
            },
        ),
        finalist=FinalistRecord(text="y", span_changes=(SpanChangeRecord(kind="added", new_id="n", new="y"),)),
        scores={"v0": 0.0},
        decision=GateDecision(kind="reject", stats={"p_value": 0.2, "ci": [0.0, 1.0]}, reasons=("not significant",)),
        rejected_edits={"sp": ("x",)},
        stopped=StopRecord(budget="target_calls", limit=10, used=10),
        timings={"edit": 1.5},
        cost=CostRecord(target_calls=10, input_tokens=5, output_tokens=6, meter={"calls": 2.0}),
        extra={"job_id": "j"},
    )


def test_json_round_trip_of_every_part():
    rec = _full()
    data = json.loads(json.dumps(rec.to_json()))  # really JSON: no tuples, no objects
    assert data["schema_version"] == SCHEMA_VERSION and data["job_id"] == "j" and "extra" not in data
    assert RunRecord.from_json(data) == rec


def test_version_one_dict_is_readable():
    rec = RunRecord.from_json(V1)
    assert rec.schema_version == SCHEMA_VERSION and rec.status == "promoted" and rec.finished
    assert rec.incumbent == VersionRef(id="v0", text="- Rule one.\n")
    assert rec.window.key == "k1" and rec.window.trace_ids == ("t1", "t2")
    assert rec.attribution[0].insert and rec.attribution[0].evidence[0]["reason"] == "missing rule"
    assert rec.cases.holdout == ("k2", "k3") and rec.cases.blamer_trace_ids == ()  # v1 did not record reads
    assert rec.replay.versions["final0"].mean == 1.0 and rec.replay.versions["incumbent"].episodes[0].calls == 1
    assert rec.decision == GateDecision(
        kind="promote", stats={"p_value": 0.01, "mean_gain": 1.0}, reasons=("significant",)
    )
    assert rec.rejected_edits == {"sp_2": ("- Bad text.",)} and rec.cost.tokens == 120
    assert rec.extra == {"job_id": "nightly", "tick": "c202601010300"}
    # read-modify-write by any reader keeps what it does not know
    again = rec.to_json()
    assert again["job_id"] == "nightly" and again["tick"] == "c202601010300"
    assert RunRecord.from_json(again) == rec


def test_store_view_and_bad_records():
    store = MemoryStore()
    store.create_slot("s", "- Rule one.\n")
    store.save_run("run_abc", "s", dict(V1), status="promoted")
    rec = RunRecord.from_json(store.get_run("run_abc"))  # the store adds created_at/updated_at (datetimes)
    assert isinstance(rec.created_at, str) and rec.run_id == "run_abc"
    with pytest.raises(ValidationError, match="newer"):
        RunRecord.from_json({**V1, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(ValidationError, match="malformed"):
        RunRecord.from_json({**V1, "seed": "not a number"})
    with pytest.raises(ValidationError):
        RunRecord.from_json({**V1, "window": ["not", "an", "object"]})


def test_history_reads_records_of_both_versions():
    store = MemoryStore()
    store.create_slot("s", "- Rule one.\n")
    store.save_run("run_old", "s", dict(V1), status="promoted")
    store.save_run("run_new", "s", _full().to_json(), status="rejected")
    store.save_run("run_bad", "s", {**V1, "seed": "x"}, status="rejected")  # skipped, never fatal
    mem = history.rejected_edits(store, "s")
    assert mem == {"sp": ("x",), "sp_2": ("- Bad text.",)}
    assert history.finished_run_for(store, "s", "k1").run_id == "run_old"
    assert history.finished_run_for(store, "s", "nope") is None
