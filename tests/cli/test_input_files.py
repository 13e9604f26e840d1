"""Issue 13 item 10 (CLI part): unreadable, binary or non-UTF-8 inputs and unwritable outputs are
one-line errors, and nothing is half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diffprompt.cli import common
from diffprompt.errors import ConfigError, DiffpromptError
from tests.cli.conftest import last_json

BAD = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    "latin-1": ("Politique: réservations".encode("latin-1"), "not UTF-8"),
}


@pytest.fixture(params=sorted(BAD))
def bad_file(request, tmp_path: Path) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    data, needle = BAD[request.param]
    f = tmp_path / f"{request.param}.md"
    f.write_bytes(data)
    return f, needle


def test_read_text_file_names_what_and_why(tmp_path: Path) -> None:
    good = tmp_path / "ok.md"
    good.write_text("héllo\n", encoding="utf-8")
    assert common.read_text_file(good, "prompt file") == "héllo\n"
    for path, needle in ((tmp_path / "missing.md", "No such file"), (tmp_path, "directory")):
        with pytest.raises(ConfigError, match="cannot read prompt file") as exc:
            common.read_text_file(path, "prompt file")
        assert needle in str(exc.value)


def test_prompts_add_refuses_binary_and_non_utf8(invoke, bad_file) -> None:  # type: ignore[no-untyped-def]
    path, needle = bad_file
    res = invoke("prompts", "add", "s", str(path), ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception)
    assert last_json(invoke("prompts", "list", "--json")) == []


def test_init_prompt_refuses_binary_and_non_utf8(invoke, bad_file) -> None:  # type: ignore[no-untyped-def]
    path, needle = bad_file
    res = invoke("init", "--slot", "s", "--prompt", str(path), ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception)
    assert last_json(invoke("prompts", "list", "--json")) == []


def test_optimize_config_refuses_binary_non_utf8_and_bad_syntax(invoke, bad_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, needle = bad_file
    res = invoke("optimize", "--slot", "s", "--config", str(path), ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception)
    for name, text in (("c.json", "{nope"), ("c.toml", "[optimize\n"), ("l.json", "[1, 2]")):
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        res = invoke("optimize", "--slot", "s", "--config", str(f), ok=False)
        assert isinstance(res.exception, DiffpromptError) and "--config" in str(res.exception), name


def test_tau_run_policy_file_refuses_binary_and_non_utf8(invoke, bad_file) -> None:  # type: ignore[no-untyped-def]
    path, needle = bad_file
    res = invoke("tau", "run", "--domain", "airline", "--policy-file", str(path), "--no-record", ok=False)
    assert isinstance(res.exception, DiffpromptError) and needle in str(res.exception)


def test_traces_export_to_an_unwritable_path_fails_before_writing(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker / "export.jsonl", tmp_path):  # under a file; a directory
        res = invoke("traces", "export", "-o", str(out), ok=False)
        assert isinstance(res.exception, DiffpromptError) and "cannot write --out" in str(res.exception)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # failed before the DB was opened; no temp file


def test_writable_path_and_atomic_write(tmp_path: Path) -> None:
    out = common.write_text_file(tmp_path / "new" / "x.jsonl", iter(["a\n", "b\n"]), "--out")
    assert out.read_text() == "a\nb\n" and sorted(p.name for p in out.parent.iterdir()) == ["x.jsonl"]

    def boom():  # type: ignore[no-untyped-def]
        yield "partial\n"
        raise OSError(28, "No space left on device")

    with pytest.raises(ConfigError, match="No space left"):
        common.write_text_file(out, boom(), "--out")
    assert out.read_text() == "a\nb\n" and sorted(p.name for p in out.parent.iterdir()) == ["x.jsonl"]


def test_a_binary_config_toml_is_one_line(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b"\x00\x01\xff")
    env = {"DIFFPROMPT_HOME": str(home), "DIFFPROMPT_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "diffprompt.cli", "prompts", "list", "--json"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "config file" in p.stderr
