"""``diffprompt experiment steps|editors``: table, plot and rows written; arms share cases and seeds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffprompt.experiments import render
from diffprompt.experiments.harness import ArmResult

SEED = (
    "You read movie reviews written by critics for a film magazine.\n"
    "Decide how the critic felt about the film overall, weighing praise against complaints.\n"
)


def _run(home: Path, *args: str) -> dict:  # type: ignore[type-arg]
    from diffprompt import cli

    cli._register()
    res = CliRunner().invoke(cli.app, ["--db", f"sqlite:///{home / 'x.db'}", "experiment", *args, "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _arm(arm: str, seed: int, held: float, inc: float = 0.5) -> ArmResult:
    return ArmResult(arm=arm, seed=seed, status="rejected", incumbent=inc, held_out=held, served=inc,
                     target_calls=10, editor_forwards=8, editor_calls=0, seconds=1.0, edit_seconds=0.5,
                     candidates=2, valid=1, p_value=None, text="")


def test_render_table_and_svgs() -> None:
    rows = [_arm("steps=8", 0, 0.6), _arm("steps=8", 1, 0.8), _arm("steps=64", 0, 0.7), _arm("steps=64", 1, 0.7)]
    md = render.table(rows, title="t")
    assert "| steps=8 | 2 | 0.500 | 0.700 ± 0.141 |" in md and "| steps=64 | 2 | 0.500 | 0.700 ± 0.000 |" in md
    for svg in (render.steps_svg(rows, title="t"), render.editors_svg(rows, title="t")):
        assert ET.fromstring(svg).tag.endswith("svg")


def test_editors_experiment_same_cases_per_seed(home: Path, sentiment_file: Path, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text(SEED)
    out = tmp_path / "exp"
    meta = _run(home, "editors", "--env", f"dataset:{sentiment_file}", "--editors", "oracle,oracle-rewrite",
                "--seeds", "0,1", "--window", "24", "--holdout", "16", "--screen", "4", "--seed-file",
                str(seed_file), "--max-calls", "400", "--out", str(out))
    assert meta["experiment"] == "editors" and meta["max_calls"] == 400
    data = json.loads((out / "editors.json").read_text())
    rows = data["rows"]
    assert len(rows) == 4 and {r["arm"] for r in rows} == {"oracle [ceiling]", "oracle-rewrite [ceiling]"}
    for seed in (0, 1):  # both editors gate on the same held-out cases for a seed
        replayed = [tuple(r["replayed"]) for r in rows if r["seed"] == seed]
        assert replayed[0] and replayed[0] == replayed[1]
    assert all(r["incumbent"] == 0.0 and r["held_out"] > 0.8 and r["status"] == "dry_run" for r in rows)
    assert all(r["target_calls"] <= 400 for r in rows)
    md = (out / "editors.md").read_text()
    assert "oracle [ceiling]" in md and ET.parse(out / "editors.svg").getroot().tag.endswith("svg")


@pytest.mark.slow
def test_steps_experiment_with_the_builtin_dlm(home: Path, sentiment_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text(SEED)
    _run(home, "steps", "--env", f"dataset:{sentiment_file}", "--steps", "2,4", "--seeds", "0",
         "--candidates", "1", "--iterations", "1", "--window", "16", "--holdout", "10", "--screen", "4",
         "--seed-file", str(seed_file), "--out", str(out))
    rows = json.loads((out / "steps.json").read_text())["rows"]
    assert [r["arm"] for r in rows] == ["steps=2", "steps=4"]
    # one forward per denoising step, plus the one scoring forward of the draft rows when the judge gave hints
    two, four = (r["editor_forwards"] for r in rows)
    assert four - two == 2 and two - 2 in (0, 1)
    assert "steps=4" in (out / "steps.md").read_text()


def test_editors_experiment_without_an_editor_model_fails_before_any_work(home: Path, sentiment_file: Path,
                                                                           tmp_path: Path) -> None:
    from diffprompt import cli

    cli._register()
    out = tmp_path / "exp"
    res = CliRunner().invoke(cli.app, ["--db", f"sqlite:///{home / 'x.db'}", "experiment", "editors", "--env",
                                       f"dataset:{sentiment_file}", "--editors", "dlm,ar", "--out", str(out)])
    assert res.exit_code != 0 and "--editor-model" in str(res.exception)
    assert not out.exists()  # no window recorded, no DLM loaded, nothing written


def test_editors_help_names_what_editor_model_is_for() -> None:
    from diffprompt import cli

    cli._register()
    res = CliRunner().invoke(cli.app, ["experiment", "editors", "--help"], terminal_width=200)
    assert res.exit_code == 0
    flat = " ".join(res.stdout.split())
    line = flat[flat.index("--editor-model"):flat.index("--max-calls")]
    assert "required when --editors names either" in line and "offline" not in line
