"""The HTML report and ``runs show`` read the typed run record, of this schema and of version 1."""

from __future__ import annotations

from diffprompt.optimize.attribution import ExplainBlamer
from diffprompt.optimize.loop import run_round
from diffprompt.optimize.oracle import OracleEditor
from diffprompt.report import build_report, render_html, summary_rows
from tests.optimize.test_loop import CFG, RULE, _explain, _store, _world
from tests.optimize.test_record import V1


def test_report_of_a_round_names_what_was_held_out_and_labels_the_oracle(tmp_path):
    env = _world()
    store, _ = _store(env)
    res = run_round(
        store, "s", env=env, editor=OracleEditor(explore=0.0), config=CFG, seed=1, blamer=ExplainBlamer(_explain)
    )
    assert res.status == "promoted"
    data = build_report(store, res.run_id)
    rows = dict(summary_rows(data))
    assert rows["editor"] == "oracle (oracle: a labelled ceiling)"
    held = res.record.cases
    assert rows["held-out cases"].startswith(f"{len(held.holdout_replay_keys)} replay keys replayed by the gate, none")
    html = render_html(data)
    assert RULE in html and ">candidate<" in html and "final0" not in html and "cand0" not in html
    assert "{'" not in html  # no raw Python dicts


def test_report_and_runs_show_read_a_version_one_record(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from diffprompt import cli
    from diffprompt.store import open_store

    monkeypatch.setenv("DIFFPROMPT_HOME", str(tmp_path / "home"))
    cli._register()

    store = _store(_world())[0]
    store.save_run("run_abc", "s", dict(V1), status="promoted")
    rows = dict(summary_rows(build_report(store, "run_abc")))
    assert rows["status"] == "promoted" and rows["p-value"] == "0.01" and "held-out cases" in rows
    assert "Rule two" in render_html(build_report(store, "run_abc"))

    url = f"sqlite:///{tmp_path}/x.db"
    sql = open_store(url)
    sql.create_slot("s", "- Rule one.\n")
    sql.save_run("run_abc", "s", dict(V1), status="promoted")
    sql.close()
    out = CliRunner().invoke(cli.app, ["--db", url, "runs", "show", "run_abc"])
    assert out.exit_code == 0, out.output
    assert "decision: promote" in out.stdout and "cases: 2 held out for the gate" in out.stdout
    assert "{'" not in out.stdout
