"""Fixtures for CLI tests: the registered app and an ``invoke`` helper on an isolated database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner


@pytest.fixture(scope="session")
def cli_app():  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    return cli.app


@pytest.fixture
def cli_db(home: Path) -> str:
    return f"sqlite:///{home / 'cli.db'}"


@pytest.fixture
def invoke(cli_app, cli_db):  # type: ignore[no-untyped-def]
    """``invoke(*args, ok=True)`` runs ``diffprompt --db <tmp db> *args`` in-process."""
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | bytes | None = None):  # type: ignore[no-untyped-def]
        res = runner.invoke(cli_app, ["--db", cli_db, *args], input=input)
        if ok:
            assert res.exit_code == 0, (res.output, res.exception)
        else:
            assert res.exit_code != 0, res.output
        return res

    return run


def last_json(res: Any) -> Any:
    return json.loads(res.stdout.strip().splitlines()[-1])
