"""The check of issue 14: a slot with an incumbent and a canary, live traces imported with their
versions and rewards; ``canary watch --once`` promotes a clearly better canary, rolls back a clearly
worse one and leaves an equal one waiting — each audited, with the statistics in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from diffprompt.errors import ConfigError, NotFoundError

SEED = "# Support\n\nYou help airline customers.\n\n- Be polite.\n"
CANARY = "# Support\n\nYou help airline customers.\n\n- Be polite.\n- Confirm before any booking change.\n"


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    return cli.app


@pytest.fixture
def run(app, home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    db = f"sqlite:///{home / 'canary.db'}"

    def invoke(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        res = runner.invoke(app, ["--db", db, *args])
        assert (res.exit_code == 0) == ok, (res.output, res.exception)
        return res

    return invoke


def _json(res: Any) -> Any:
    return json.loads(res.stdout.strip().splitlines()[-1])


def _records(n: int, canary_rate: int, incumbent_rate: int) -> list[dict[str, Any]]:
    """Interleaved live threads: every other one on the canary; rewards by a fixed pattern (rate/10)."""
    out = []
    for i in range(2 * n):
        on_canary = i % 2 == 0
        rate = canary_rate if on_canary else incumbent_rate
        reward = 1.0 if (i // 2) % 10 < rate else 0.0
        traj = [
            {"role": "system", "content": CANARY if on_canary else SEED},
            {"role": "user", "content": f"I need help with booking {i}."},
            {"role": "assistant", "content": "Done."},
        ]
        out.append({"task_id": i, "trial": 0, "reward": reward, "info": {}, "traj": traj})
    return out


def _slot_with_canary(run, tmp_path: Path, slot: str, canary_rate: int, incumbent_rate: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    seed, canary = tmp_path / "seed.md", tmp_path / "canary.md"
    seed.write_text(SEED)
    canary.write_text(CANARY)
    v1 = _json(run("prompts", "add", slot, str(seed), "--json"))["id"]
    v2 = _json(run("prompts", "add", slot, str(canary), "--json"))["id"]
    run("prompts", "canary", slot, v2, "--share", "0.5", "--actor", "test", "--reason", "offline gate passed")
    live = tmp_path / f"{slot}.json"
    live.write_text(json.dumps(_records(80, canary_rate, incumbent_rate)))
    run("traces", "import", str(live), "--slot", slot)
    return v1, v2


def _state(run, slot: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return next(s for s in _json(run("prompts", "list", "--json")) if s["slot"] == slot)


def test_better_canary_is_promoted_and_audited(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, v2 = _slot_with_canary(run, tmp_path, "better", canary_rate=9, incumbent_rate=3)
    out = _json(run("canary", "watch", "better", "--once", "--json"))
    assert out["decision"] == "promote" and out["action"] == "promoted"
    r = out["stats"]["reward"]
    assert r["canary"]["n"] == r["incumbent"]["n"] == 80
    assert r["canary"]["mean"] == pytest.approx(0.9) and r["incumbent"]["mean"] == pytest.approx(0.3)
    assert r["lo"] > 0 and r["estimate"] == pytest.approx(0.6)
    assert {g["metric"] for g in out["stats"]["guardrails"]} == {"error_rate", "latency_ms", "tokens", "cost_usd"}
    state = _state(run, "better")
    assert state["active_version_id"] == v2 and state["canary_version_id"] is None
    last = _json(run("prompts", "audit", "better", "--json"))[-1]
    assert last["action"] == "promote" and last["actor"] == "rollout-monitor" and last["id"] == out["audit_id"]
    stats = json.loads(last["reason"].split("| stats=", 1)[1])
    assert stats["decision"] == "promote" and stats["reward"]["lo"] == r["lo"]
    # no canary any more: a clear one-line error
    res = run("canary", "watch", "better", "--once", ok=False)
    assert isinstance(res.exception, NotFoundError) and "has no canary" in str(res.exception)


def test_worse_canary_is_rolled_back_and_audited(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _slot_with_canary(run, tmp_path, "worse", canary_rate=2, incumbent_rate=8)
    res = run("canary", "watch", "worse", "--json", "--interval", "0.01")  # keeps watching until decided
    assert len(res.stdout.strip().splitlines()) == 1
    out = _json(res)
    assert out["decision"] == "rollback" and out["action"] == "rolled_back"
    assert out["stats"]["reward"]["hi"] < 0
    state = _state(run, "worse")
    assert state["active_version_id"] == v1 and state["canary_version_id"] is None
    last = _json(run("prompts", "audit", "worse", "--json"))[-1]
    assert last["action"] == "canary_clear" and last["from_version_id"] == v2
    assert last["reason"].startswith("rollout rollback: canary loses significantly")


def test_equal_canary_keeps_waiting_and_the_evaluation_is_recorded(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _slot_with_canary(run, tmp_path, "equal", canary_rate=5, incumbent_rate=5)
    out = _json(run("canary", "watch", "equal", "--once", "--json"))
    assert out["decision"] == "wait" and out["action"] is None and out["audit_id"] is None
    r = out["stats"]["reward"]
    assert r["lo"] < 0 < r["hi"] and r["estimate"] == pytest.approx(0.0)
    state = _state(run, "equal")
    assert state["active_version_id"] == v1 and state["canary_version_id"] == v2
    audit = _json(run("prompts", "audit", "equal", "--json"))
    assert audit[-1]["action"] == "canary"  # no registry move
    rows = [r for r in _json(run("runs", "list", "--slot", "equal", "--json")) if r["status"] == "rollout"]
    assert len(rows) == 1 and rows[0]["decision"] == "wait" and rows[0]["run_id"] == out["record_id"]
    again = _json(run("canary", "watch", "equal", "--once", "--json"))
    rec = _json(run("runs", "show", again["record_id"], "--json"))
    assert [e["decision"] for e in rec["evaluations"]] == ["wait", "wait"]
    # human output names the decision, the arms with intervals and every guardrail
    text = run("canary", "watch", "equal", "--once").stdout
    for word in ("wait", "canary", "incumbent", "error_rate", "latency_ms", "tokens", "cost_usd"):
        assert word in text


def test_bad_config_is_a_config_error(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _slot_with_canary(run, tmp_path, "cfg", canary_rate=5, incumbent_rate=5)
    res = run("canary", "watch", "cfg", "--once", "--alpha", "0.9", ok=False)
    assert isinstance(res.exception, ConfigError) and "alpha" in str(res.exception)
    bad = tmp_path / "bad.toml"
    bad.write_text("[optimize.rollout]\nalpha_gaurd = 0.01\n")
    res = run("canary", "watch", "cfg", "--once", "--config", str(bad), ok=False)
    assert isinstance(res.exception, ConfigError) and "alpha_gaurd" in str(res.exception)
    assert _state(run, "cfg")["canary_version_id"] is not None  # nothing moved
