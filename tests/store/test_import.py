"""Importing τ-bench historical runs: counts, rewards, idempotency, all-or-nothing validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from diffprompt.errors import ValidationError
from diffprompt.store import Store
from diffprompt.store.importers import import_tau_historical, load_tau_historical


@pytest.fixture(scope="module")
def historical(tau_data: Path) -> Path:
    return tau_data / "airline" / "historical_gpt-4o-airline.json"


def test_import_gpt4o_airline(store: Store, historical: Path) -> None:
    rep = import_tau_historical(store, historical, "airline")
    assert (rep.records, rep.traces_added, rep.feedback_added, rep.slot_created) == (200, 200, 200, True)
    assert rep.mean_reward == pytest.approx(0.42)
    st = store.stats("airline")
    assert st["traces"] == 200 and st["feedback"] == 200 and st["mean_reward"] == pytest.approx(0.42)
    seed = store.active_version("airline")
    assert rep.version_ids == (seed.id,) and seed.text.startswith("# Airline Agent Policy")
    traces = store.list_traces("airline")
    assert {t.version_id for t in traces} == {seed.id}
    first = json.loads(historical.read_text())[0]
    t0 = traces[0]
    assert list(t0.messages) == first["traj"] and t0.replay_key == f"tau:airline:test:{first['task_id']}"
    assert t0.metadata["trial"] == first["trial"] and t0.metadata["info"] == first["info"]
    assert t0.tool_calls == sum(len(m.get("tool_calls") or ()) for m in first["traj"])
    assert store.trace_for_thread(t0.thread_id).id == t0.id
    fb = store.feedback_for([t0.id])
    assert [(f.kind, f.value, f.source) for f in fb] == [("reward", first["reward"], "import")]
    # idempotent
    again = import_tau_historical(store, historical, "airline")
    assert (again.traces_added, again.traces_skipped, again.feedback_added) == (0, 200, 0)
    assert store.stats("airline")["feedback"] == 200


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "runs.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.__setitem__("reward", 1.5), "'reward'"),
        (lambda r: r.pop("traj"), "'traj'"),
        (lambda r: r["traj"][2].__setitem__("role", "robot"), "traj[2].role"),
        (lambda r: r["traj"].pop(0), "traj[0]"),
        (lambda r: r.__setitem__("trial", "x"), "'trial'"),
    ],
)
def test_malformed_record_imports_nothing(
    store: Store, historical: Path, tmp_path: Path, mutate, field
) -> None:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(json.loads(historical.read_text())[:20])
    mutate(data[13])
    with pytest.raises(ValidationError) as ei:
        import_tau_historical(store, _write(tmp_path, data), "airline")
    assert "record 13" in str(ei.value) and field in str(ei.value)
    assert store.list_slots() == [] and store.count_traces() == 0


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        load_tau_historical(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_tau_historical(bad)
    with pytest.raises(ValidationError, match="JSON list"):
        load_tau_historical(_write(tmp_path, {"a": 1}))
