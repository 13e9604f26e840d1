"""Migrations: fresh DBs reach head, old revisions upgrade with data intact, schema matches the models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from diffprompt.errors import StoreError
from diffprompt.store import migrate, open_store
from diffprompt.store.engine import make_engine
from diffprompt.store.sql import SQLStore
from diffprompt.types import Trace


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_schema"))


def test_fresh_db_reaches_head_and_matches_models(sql_url: str) -> None:
    s = open_store(sql_url)
    assert isinstance(s, SQLStore)
    assert migrate.current_revision(s.engine) == migrate.head_revision()
    with s.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), SQLModel.metadata)
    assert diff == []
    s.close()


def test_old_revision_is_upgraded_with_data(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate.upgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001"
    old = SQLStore(engine)
    old.create_slot("s", "Be helpful.")
    now = datetime.now(UTC)
    old.add_traces(
        [Trace(id="t1", slot="s", version_id=None, thread_id="th", messages=(), started_at=now, ended_at=now)]
    )
    with pytest.raises(StoreError, match="db upgrade"):
        open_store(sql_url, upgrade=False)
    s = open_store(sql_url)
    assert migrate.current_revision(engine) == migrate.head_revision() != "0001"
    assert s.count_traces("s") == 1 and s.active_version("s").text == "Be helpful."
    assert "ix_traces_slot_version" in {i["name"] for i in sa.inspect(engine).get_indexes("traces")}
    s.close()
    engine.dispose()


def test_upgrade_false_on_empty_db_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="diffprompt db upgrade"):
        open_store(f"sqlite:///{tmp_path / 'e.db'}", upgrade=False)


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="server is running"):
        open_store("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_a_database_from_a_newer_diffprompt_is_a_one_line_store_error(sql_url: str) -> None:
    s = open_store(sql_url)
    s.create_slot("s", "Be helpful.")
    with s.engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d9999'"))
    s.close()
    for upgrade in (True, False):
        with pytest.raises(StoreError, match="revision f00d9999, which this diffprompt") as info:
            open_store(sql_url, upgrade=upgrade)
        assert "\n" not in str(info.value) and "pip install -U diffprompt" in str(info.value)
    engine = make_engine(sql_url)
    with pytest.raises(StoreError, match="newer diffprompt"):
        migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "f00d9999"  # left untouched
    engine.dispose()


def test_upgrading_to_an_unknown_revision_is_a_store_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'u.db'}")
    with pytest.raises(StoreError, match="unknown schema revision 'nope'"):
        migrate.upgrade(engine, "nope")
    assert migrate.current_revision(engine) is None
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:p@127.0.0.1/db",
        "postgresql+pg8000://u:p@127.0.0.1/db",
        "sqlite+pysqlcipher:///x.db",
        "sqlite+aiosqlite:///x.db",
        "mysql+pymysql://u:p@127.0.0.1/db",
        "oracle://u:p@127.0.0.1/db",
    ],
)
def test_an_unsupported_driver_is_a_one_line_config_error(url: str) -> None:
    from diffprompt.errors import ConfigError

    with pytest.raises(ConfigError, match="unsupported database") as info:
        open_store(url)
    msg = str(info.value)
    assert "\n" not in msg and ("postgresql+psycopg://" in msg or "SQLite or PostgreSQL" in msg)
