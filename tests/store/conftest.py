"""Store fixtures: one factory parametrised over memory, SQLite (tmp file) and PostgreSQL (fresh schema)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diffprompt.store import Store, open_store
from diffprompt.store.testing import ManualClock as FakeClock
from diffprompt.store.testing import StoreHarness


def pg_schema_url(base: str) -> tuple[str, str]:
    """A URL whose connections use a fresh schema (isolation between tests and helpers)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _pg_exec(base: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        c.execute(sql)


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    url, schema = pg_schema_url(pg_url)
    _pg_exec(pg_url, f'CREATE SCHEMA "{schema}"')
    try:
        yield url
    finally:
        _pg_exec(pg_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_schema"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(store_url: str, clock: FakeClock) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        s = open_store(store_url, clock=clock)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()


@pytest.fixture
def harness(store_url: str, clock: FakeClock) -> Iterator[StoreHarness]:
    """The contract suite's harness on this backend (one fresh, empty backend per test)."""
    with StoreHarness(
        lambda c: open_store(store_url, clock=c), shared_data=store_url != "memory://", clock=clock
    ) as h:
        yield h
