"""Engine factory and error translation: SQLite tuned for many writers, PostgreSQL via psycopg 3.

SQLite: WAL journal, ``busy_timeout``, ``synchronous=NORMAL``, foreign keys on (set on every new
connection). The driver's own transaction handling is off so that a write transaction can start with
``BEGIN IMMEDIATE`` (take the write lock up front: serialised, no upgrade deadlocks) while reads use a
plain deferred ``BEGIN``. PostgreSQL: pooled, ``pool_pre_ping``, short connect timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from diffprompt.errors import ConfigError, ConflictError, StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
IMMEDIATE = "diffprompt_immediate"  # execution option: start the transaction with BEGIN IMMEDIATE
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")  # what the store is tested on


def parse_url(url: str) -> URL:
    """Parse and normalise a DB URL (``postgresql://`` becomes ``postgresql+psycopg://``)."""
    try:
        u = make_url(url)
    except Exception as exc:
        from diffprompt.urls import scrub

        raise ConfigError(
            f"invalid database URL {safe_url(url)!r} ({scrub(str(exc), url)}); use sqlite:///path/to.db or "
            "postgresql+psycopg://user:pass@host:5432/db"
        ) from None
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {u.get_backend_name()!r}; use SQLite or PostgreSQL")
    if u.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"unsupported database driver {u.drivername!r}; use sqlite:///path/to.db or "
            "postgresql+psycopg://user:pass@host:5432/db"
        )
    return u


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden (for messages and logs); the same masking as ``--base-url``."""
    from diffprompt.urls import mask_url

    if isinstance(url, str):
        return mask_url(url)
    return url.render_as_string(hide_password=True)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build an engine for ``url``. Creates the SQLite file's directory; connects lazily."""
    u = parse_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, echo=echo)
    return sa.create_engine(
        u,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"connect_timeout": 5, "application_name": "diffprompt"},
    )


def _sqlite_engine(u: URL, *, echo: bool) -> Engine:
    from pathlib import Path

    db = u.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    if not memory:
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    }
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(u, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see the begin hook)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def sqlite_file_identity(engine: Engine) -> tuple[str, tuple[int, int]] | None:
    """``(path, (device, inode))`` of a SQLite database file; None for PostgreSQL or in-memory SQLite."""
    import os

    db = engine.url.database or ""
    if engine.dialect.name != "sqlite" or db in ("", ":memory:") or db.startswith("file:"):
        return None
    path = os.path.abspath(os.path.expanduser(db))
    try:
        st = os.stat(path)
    except FileNotFoundError:  # created by the first connection: identify it then
        with engine.connect():
            pass
        st = os.stat(path)
    return path, (st.st_dev, st.st_ino)


@contextlib.contextmanager
def translate_errors(url: str | URL) -> Iterator[None]:
    """Turn driver errors into ``StoreError`` / ``ConflictError`` with a message saying what to check."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise ConflictError(
            f"the database refused a write that contradicts stored state: {_orig(exc)}"
        ) from exc
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        msg = _orig(exc)
        low = msg.lower()
        if "disk is full" in low or "no space left" in low or "could not extend file" in low:
            hint = "the disk holding the database is full; free space (or move the database with --db) and retry"
        elif "readonly" in low or "read-only" in low:
            hint = "the database file (or its directory) is read-only for this process; fix the permissions"
        elif "disk i/o error" in low:
            hint = "the disk failed a read or write (full, removed, or its file deleted); check the disk"
        elif "locked" in msg or "busy" in msg:
            hint = "another process holds the write lock past the busy timeout; retry, or use PostgreSQL"
        elif "no such table" in msg or "does not exist" in msg:
            hint = "the schema is missing or old; run `diffprompt db upgrade`"
        else:
            hint = (
                "check the URL (--db / DIFFPROMPT_DB_URL), that the server is running and reachable, "
                "and the credentials"
            )
        raise StoreError(f"database {safe_url(url)} failed: {msg}. {hint}") from exc
    except sa.exc.DBAPIError as exc:
        raise StoreError(f"database {safe_url(url)} error: {_orig(exc)}") from exc


def _orig(exc: sa.exc.StatementError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
