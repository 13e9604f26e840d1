"""The run log and leases of ``SQLStore`` (optimizer run records; named, expiring leases).

A mixin over the transaction helpers of ``SQLStore`` (``_read``, ``_write``, ``_insert``, ``_clock``),
kept apart because it is its own part of the contract (``RunLog``, ``Leases``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from diffprompt.errors import NotFoundError
from diffprompt.store.tables import LeaseRow, RunRow

R: Any = RunRow.__table__  # type: ignore[attr-defined]
L: Any = LeaseRow.__table__  # type: ignore[attr-defined]


class SQLRunLogAndLeases:
    """``RunLog`` + ``Leases`` on the SQL backend."""

    # provided by SQLStore
    _clock: Callable[[], datetime]
    _read: Callable[[], contextlib.AbstractContextManager[sa.Connection]]
    _write: Callable[[], contextlib.AbstractContextManager[sa.Connection]]
    _insert: Callable[[sa.Table], Any]

    def save_run(self, run_id: str, slot: str, record: dict[str, Any], *, status: str) -> None:
        now = self._clock()
        stmt = self._insert(R).values(
            id=run_id, slot=slot, status=status, record=record, created_at=now, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={"slot": slot, "status": status, "record": record, "updated_at": now}
        )
        with self._write() as c:
            c.execute(stmt)

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self._read() as c:
            row = c.execute(sa.select(R).where(R.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"unknown optimizer run {run_id!r}")
        return _run_view(row)

    def list_runs(self, slot: str | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        q = sa.select(R).order_by(R.c.created_at.desc(), R.c.id)
        if slot is not None:
            q = q.where(R.c.slot == slot)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as c:
            return [_run_view(r) for r in c.execute(q).mappings()]

    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self._clock()
        until = now + timedelta(seconds=ttl_s)
        with self._write() as c:
            row = c.execute(sa.select(L).where(L.c.name == name).with_for_update()).mappings().first()
            if row is None:
                got = c.execute(
                    self._insert(L)
                    .on_conflict_do_nothing(index_elements=["name"])
                    .values(name=name, owner=owner, expires_at=until)
                    .returning(L.c.name)
                ).first()
                return got is not None
            if row["owner"] != owner and row["expires_at"] > now:
                return False
            c.execute(L.update().where(L.c.name == name).values(owner=owner, expires_at=until))
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._write() as c:
            c.execute(L.delete().where(L.c.name == name, L.c.owner == owner))


def _run_view(r: Any) -> dict[str, Any]:
    out = dict(r["record"] or {})
    out.update(
        run_id=r["id"],
        slot=r["slot"],
        status=r["status"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )
    return out
