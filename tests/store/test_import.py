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


def test_a_repeated_record_is_one_trace_with_one_reward(store: Store, historical: Path, tmp_path: Path) -> None:
    data = json.loads(historical.read_text())[:5]
    rep = import_tau_historical(store, _write(tmp_path, [*data, copy.deepcopy(data[2])]), "airline")
    assert (rep.records, rep.traces_added, rep.feedback_added, rep.records_repeated) == (6, 5, 5, 1)
    per_trace = [len(store.feedback_for([t.id])) for t in store.list_traces("airline")]
    assert per_trace == [1] * 5


def test_a_repeat_with_another_reward_is_refused_before_any_write(
    store: Store, historical: Path, tmp_path: Path
) -> None:
    data = json.loads(historical.read_text())[:5]
    clash = copy.deepcopy(data[1])
    clash["reward"] = 1.0 - clash["reward"]
    with pytest.raises(ValidationError, match=r"record 5 .*repeats record 1 with a different reward"):
        import_tau_historical(store, _write(tmp_path, [*data, clash]), "airline")
    assert store.list_slots() == [] and store.count_traces() == 0


def test_the_same_file_into_a_second_slot_imports_there_too(store: Store, historical: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, json.loads(historical.read_text())[:8])
    a = import_tau_historical(store, path, "airline")
    b = import_tau_historical(store, path, "airline-copy")
    assert (a.traces_added, b.traces_added, b.feedback_added) == (8, 8, 8)
    assert store.count_traces("airline") == store.count_traces("airline-copy") == 8
    again = import_tau_historical(store, path, "airline-copy")
    assert (again.traces_added, again.feedback_added) == (0, 0)


def test_an_import_made_with_the_old_ids_is_not_duplicated(store: Store, historical: Path, tmp_path: Path) -> None:
    """Traces imported before ids named the slot are recognised on re-import."""
    from dataclasses import replace

    from diffprompt.store.importers import tau_ids

    path = _write(tmp_path, json.loads(historical.read_text())[:3])
    import_tau_historical(store, path, "airline")
    old = [replace(t, id=tau_ids("airline", "test", r)[0], slot="legacy") for t, r in zip(
        store.list_traces("airline"), json.loads(path.read_text()), strict=True)]
    store.create_slot("legacy", store.active_version("airline").text)
    store.add_traces(old)
    rep = import_tau_historical(store, path, "legacy")
    assert (rep.traces_added, rep.traces_skipped, rep.feedback_added) == (0, 3, 3)
    assert store.count_traces("legacy") == 3


def test_oversized_messages_and_conversations_are_refused(store: Store, historical: Path, tmp_path: Path) -> None:
    from diffprompt.store import importers

    data = json.loads(historical.read_text())[:3]
    big = copy.deepcopy(data)
    big[1]["traj"][1]["content"] = "x" * (importers.MAX_MESSAGE_CHARS + 1)
    with pytest.raises(ValidationError, match=r"record 1 .*traj\[1\]\.content.*cap per message"):
        import_tau_historical(store, _write(tmp_path, big), "airline")
    many = copy.deepcopy(data)
    many[2]["traj"] += [{"role": "user", "content": "again"}] * importers.MAX_MESSAGES
    with pytest.raises(ValidationError, match=r"record 2 .*'traj'.*cap per conversation"):
        import_tau_historical(store, _write(tmp_path, many), "airline")
    assert store.list_slots() == [] and store.count_traces() == 0
