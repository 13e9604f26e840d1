"""``diffprompt eval`` and ``diffprompt experiment`` print paths and labels as written (no rich markup)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner


def _invoke(home: Path, *args: str) -> str:
    from diffprompt import cli

    cli._register()
    res = CliRunner().invoke(cli.app, ["--db", f"sqlite:///{home / 'x.db'}", *args])
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


def test_eval_prints_an_env_path_with_brackets_as_written(home: Path, sentiment_file: Path, tmp_path: Path) -> None:
    odd = tmp_path / "[bold]data"
    odd.mkdir()
    data = Path(shutil.copy(sentiment_file, odd / "sent.jsonl"))
    out = _invoke(home, "eval", "--slot", "s", "--env", f"dataset:{data}", "--init", "--limit", "8")
    first = out.splitlines()[0]
    assert first.startswith("dataset:[bold]data-sent · slot s · version ")  # rich would eat "[bold]"


def test_experiment_prints_the_table_and_out_path_as_written(home: Path, sentiment_file: Path,
                                                             tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text("Decide how the critic felt about the film.\n")
    out_dir = tmp_path / "[red]exp"
    out = _invoke(home, "experiment", "editors", "--env", f"dataset:{sentiment_file}", "--editors", "oracle",
                  "--seeds", "0", "--window", "16", "--holdout", "8", "--screen", "2", "--seed-file",
                  str(seed_file), "--max-calls", "200", "--out", str(out_dir))
    assert "| oracle [ceiling] |" in out
    assert f"wrote {out_dir / 'editors'}.md, .svg, .json\n" in out
    md = (out_dir / "editors.md").read_text()
    assert out == md.rstrip("\n") + "\n" + f"wrote {out_dir / 'editors'}.md, .svg, .json\n"
