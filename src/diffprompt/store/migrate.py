"""Schema migrations, run programmatically (users need no alembic.ini).

``upgrade(engine)`` brings any database (empty, or stamped with an older revision) to head inside one
transaction, under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) so that
several processes starting at once do not race.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from diffprompt.errors import StoreError
from diffprompt.store.engine import IMMEDIATE, safe_url, translate_errors

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x64696666  # "diff"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped with (None for an empty database)."""
    with translate_errors(engine.url), engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def is_known(revision: str) -> bool:
    """Whether this diffprompt's migrations contain ``revision``."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises for unknown / malformed revision ids
        return False


def _check_known(engine: Engine, cur: str | None) -> None:
    if cur is not None and not is_known(cur):
        raise StoreError(
            f"database {safe_url(engine.url)} is at schema revision {cur}, which this diffprompt "
            f"(newest {head_revision()}) does not know: a newer diffprompt wrote it; upgrade "
            "diffprompt (pip install -U diffprompt) or use another database"
        )


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade to ``revision`` (default head); returns the revision now stamped.

    A database stamped with a revision this version does not know (written by a newer diffprompt)
    raises ``StoreError`` and is left untouched; so does an unknown target ``revision``.
    """
    _check_known(engine, current_revision(engine))
    if revision != "head" and not is_known(revision):
        raise StoreError(f"unknown schema revision {revision!r}; see `diffprompt db current` (newest: head)")
    with translate_errors(engine.url), engine.connect() as c:
        c.execution_options(**{IMMEDIATE: True})
        with c.begin():
            if c.dialect.name == "postgresql":
                c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            command.upgrade(alembic_config(c), revision)
    return current_revision(engine)


def check_current(engine: Engine) -> None:
    """Raise ``StoreError`` unless the database is at head (for ``open_store(..., upgrade=False)``)."""
    cur, head = current_revision(engine), head_revision()
    _check_known(engine, cur)
    if cur != head:
        state = "empty" if cur is None else f"at revision {cur}"
        raise StoreError(
            f"database {safe_url(engine.url)} is {state}, this diffprompt needs {head}; "
            "run `diffprompt db upgrade`"
        )
