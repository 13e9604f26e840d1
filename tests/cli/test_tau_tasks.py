"""Issue 13 item 13: ``tau run --tasks`` never silently means zero episodes or every task."""

from __future__ import annotations

import pytest

from diffprompt.cli.tau_run import parse_task_range
from diffprompt.errors import ConfigError, DiffpromptError


def test_good_specs() -> None:
    assert parse_task_range("all", 3) == [0, 1, 2]
    assert parse_task_range("0-2,5", 6) == [0, 1, 2, 5]
    assert parse_task_range("1:3", 6) == [1, 2]
    assert parse_task_range("2-2", 6) == [2]
    assert parse_task_range(" 4, 4 ,1 ", 6) == [4, 1]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("5-2", "'5-2' is empty (start after end)"),
        ("3:3", "'3:3' is empty"),
        ("4:1", "'4:1' is empty"),
        ("", "--tasks is empty"),
        ("   ", "--tasks is empty"),
        ("1,,2", "an empty part"),
        ("1,", "an empty part"),
        ("-3", "'-3'"),
        ("a-b", "'a-b'"),
        ("9", "names task 9"),
        ("0-9", "names task 6"),
    ],
)
def test_bad_specs_are_errors(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_task_range(spec, 6)
    assert needle in str(exc.value)


@pytest.mark.parametrize("spec", ["5-2", "3:3", ""])
def test_tau_run_refuses_empty_task_specs_before_any_work(invoke, home, spec: str) -> None:  # type: ignore[no-untyped-def]
    res = invoke("tau", "run", "--domain", "airline", "--tasks", spec, "--no-record", ok=False)
    assert isinstance(res.exception, DiffpromptError) and "--tasks" in str(res.exception)
    assert not (home / "worlds").exists()  # failed before a world was generated
