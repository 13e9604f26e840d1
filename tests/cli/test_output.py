"""Issue 13 items 3 and 4: ids are never cut, exact text when piped, user text printed literally."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from diffprompt.cli import common
from diffprompt.errors import DiffpromptError
from tests.cli.conftest import last_json

LONG = "You help customers of Example Air. " * 6  # one 210-character line
PROMPT = f"# Policy\n\n{LONG.strip()}\n\n- Never share passwords.   \n- Confirm refunds."  # no final newline


def _slot(invoke, tmp_path: Path, text: str = PROMPT) -> dict:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.md"
    f.write_text(text, encoding="utf-8")
    return last_json(invoke("prompts", "add", "support", str(f), "--json"))


def test_prompts_show_writes_the_exact_text_when_piped(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = _slot(invoke, tmp_path)
    assert invoke("prompts", "show", "support").stdout == PROMPT  # no wrapping, padding or header
    assert invoke("prompts", "show", v["id"]).stdout == PROMPT
    spans = invoke("prompts", "show", "support", "--spans").stdout
    assert all(line == line.rstrip() for line in spans.splitlines())


def test_ids_are_never_cut_in_lists(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1 = _slot(invoke, tmp_path)
    f2 = tmp_path / "p2.md"
    f2.write_text(PROMPT + "\n- Be brief.", encoding="utf-8")
    v2 = last_json(invoke("prompts", "add", "support", str(f2), "--json"))
    out = invoke("prompts", "list", "support").stdout
    assert v1["id"] in out and v2["id"] in out and "…" not in out
    assert v1["id"] in invoke("prompts", "list").stdout


def test_a_narrow_terminal_table_keeps_ids_whole() -> None:
    buf = io.StringIO()
    term = Console(file=buf, width=60, force_terminal=True, color_system=None)
    ids = [f"pv_{i:020d}" for i in range(2)]
    rows = [(i, f"optimizer:run_{'a' * 28}", i, 12, "2026-12-01T17:09:34+00:00", "active") for i in ids]
    cols = ("id", "origin", "parent_id", "spans", "created_at", "status")
    common.print_table(common.table(cols, rows, ids={"id", "origin", "parent_id"}), term)
    text = buf.getvalue()
    assert all(i in text for i in ids) and f"optimizer:run_{'a' * 28}" in text and "…" not in text
    assert term.width == 60  # the console is restored


def test_markup_in_user_text_prints_literally(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.md"
    f.write_text(PROMPT, encoding="utf-8")
    assert "[active]" in invoke("prompts", "add", "support", str(f)).stdout
    f2 = tmp_path / "p2.md"
    f2.write_text(PROMPT + "\n- [bold]Be brief[/bold].", encoding="utf-8")
    v2 = last_json(invoke("prompts", "add", "support", str(f2), "--note", "[red]x", "--json"))
    out = invoke("prompts", "promote", "support", v2["id"], "--actor", "[/x]", "--reason", "[/]").stdout
    assert "by [/x]" in out
    audit = invoke("prompts", "audit", "support").stdout
    assert "[/x]" in audit and "[/]" in audit
    assert invoke("prompts", "show", "support").stdout.endswith("- [bold]Be brief[/bold].")


def test_help_text_brackets_are_not_eaten(invoke) -> None:  # type: ignore[no-untyped-def]
    assert "[optimize]" in invoke("optimize", "--help").stdout


def test_error_messages_with_brackets_print_literally(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    import typer

    monkeypatch.setattr(sys, "argv", ["diffprompt"])

    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise DiffpromptError("slot '[/x]' is\nbad")

    with pytest.raises(SystemExit) as exc:
        common.run_app(app)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: slot '[/x]' is bad"


def test_runs_and_traces_lists_keep_ids_whole(invoke, cli_db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from diffprompt.store import open_store
    from diffprompt.types import Trace

    v = _slot(invoke, tmp_path)
    store = open_store(cli_db)
    run_id = "run_" + "0123456789abcdef" * 3
    store.save_run(run_id, "support", {"editor": "dlm", "promoted_version": v["id"]}, status="promoted")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    trace_id = "tr_" + "fedcba9876543210" * 3
    store.add_traces([Trace(id=trace_id, slot="support", version_id=v["id"], thread_id="th-" + "x" * 40,
                            messages=({"role": "user", "content": "hi"},), started_at=t0, ended_at=t0)])
    store.close()
    runs = invoke("runs", "list").stdout
    assert run_id in runs and v["id"] in runs and "…" not in runs
    traces = invoke("traces", "list").stdout
    assert trace_id in traces and v["id"] in traces and "…" not in traces


def test_tau_run_report_prints_episode_errors_literally(capsys) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from diffprompt.cli.tau_run import _report
    from diffprompt.llm import CallMeter

    res = SimpleNamespace(task_index=3, trial=0, error="KeyError: [/x] in [bold]", stop_reason=None, reward=0.0)
    summary = SimpleNamespace(results=[res], pass_hat_k={1: 0.0}, mean_reward=0.0)
    dom = SimpleNamespace(name="airline", split="test", data_dir=Path("/data/[w]"))
    _report(summary, dom=dom, slot="s", version_id="pv_" + "1" * 20, meter=CallMeter(), wall=1.0, n_feedback=0,
            model="openai:[m]", user="scripted", as_json=False)
    out = capsys.readouterr()
    assert "KeyError: [/x] in [bold]" in out.err and "openai:[m]" in out.out and "pv_" + "1" * 20 in out.out
