"""Issue 13 item 8 at the command line: a live CLI ``optimize`` holds a heartbeat, so no worker marks it
abandoned; a run whose process died is marked abandoned by whoever looks (``runs list``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from diffprompt import heartbeat
from diffprompt.scheduler import Worker
from diffprompt.store import open_store
from tests.cli.conftest import last_json

LATER = timedelta(hours=1)  # "much later": far beyond any grace, but the live run keeps renewing


def test_a_live_cli_optimize_is_never_abandoned(invoke, cli_db: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from diffprompt.optimize import service

    f = tmp_path / "p.md"
    f.write_text("# Policy\n\nYou help customers.\n", encoding="utf-8")
    invoke("prompts", "add", "s", str(f))
    seen: dict[str, Any] = {}

    def fake_run_request(store, req, *, run_id, **kw):  # type: ignore[no-untyped-def]
        store.save_run(run_id, req.slot, {"editor": req.editor}, status="running")  # as the round does
        other = open_store(cli_db)  # a worker in another process looks while the round is in progress
        worker = Worker(other, lambda *a: {}, owner="worker", lease_ttl_s=5)
        assert worker.heartbeat()  # it is the leader and looks at running runs
        seen["abandoned_now"] = heartbeat.abandon_expired(other, by="worker", grace_s=5)
        seen["abandoned_later"] = heartbeat.abandon_expired(
            other, by="worker", grace_s=5, now=datetime.now(UTC) + LATER
        )
        seen["status"] = other.get_run(run_id)["status"]
        other.close()
        store.save_run(run_id, req.slot, {"editor": req.editor}, status="rejected")
        decision = SimpleNamespace(kind="reject", reasons=("fake",))
        return SimpleNamespace(
            run_id=run_id, status="rejected", decision=decision, incumbent_score=None, candidate_score=None,
            p_value=None, promoted_version_id=None,
            summary=lambda: {"run_id": run_id, "status": "rejected"},
        )

    monkeypatch.setattr(service, "run_request", fake_run_request)
    out = last_json(invoke("optimize", "--slot", "s", "--json"))
    assert seen == {"abandoned_now": [], "abandoned_later": [], "status": "running"}
    store = open_store(cli_db)
    assert store.get_run(out["run_id"])["status"] == "rejected"  # not overwritten with "abandoned"
    assert store.acquire_lease(heartbeat.lease_name(out["run_id"]), "probe", 5)  # released at the end
    store.close()


def test_runs_list_marks_a_dead_run_abandoned(invoke, cli_db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.md"
    f.write_text("# Policy\n\nYou help customers.\n", encoding="utf-8")
    invoke("prompts", "add", "s", str(f))
    past = datetime.now(UTC) - LATER
    old = open_store(cli_db, clock=lambda: past)  # a CLI run kill -9'd an hour ago: no heartbeat since
    old.save_run("run_dead", "s", {"editor": "dlm"}, status="running")
    old.acquire_lease(heartbeat.lease_name("run_dead"), "dead-process", 60)
    old.save_run("run_fresh", "s", {"editor": "dlm"}, status="running")
    old.close()
    live = open_store(cli_db)
    with heartbeat.run_heartbeat(live, "run_fresh", owner="alive", ttl_s=60):  # still renewing
        rows = {r["run_id"]: r["status"] for r in last_json(invoke("runs", "list", "--json"))}
    live.close()
    assert rows == {"run_dead": "abandoned", "run_fresh": "running"}
