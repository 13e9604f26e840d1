"""``SQLStore``: the ``Store`` over SQLAlchemy on SQLite or PostgreSQL.

Every write is one short transaction. Registry moves lock the slot row first (``BEGIN IMMEDIATE`` on
SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so concurrent promotions are serialised and each
pointer move lands together with its audit row or not at all. Driver errors surface as ``StoreError``
(see ``engine.translate_errors``). Construct with ``open_store(url)``, which also runs migrations.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from diffprompt.errors import ConflictError, NotFoundError, StoreError
from diffprompt.store import _logic
from diffprompt.store._convert import (
    audit_from_row,
    trace_from_row,
    trace_to_row,
    version_from_row,
    version_to_row,
)
from diffprompt.store.engine import IMMEDIATE, safe_url, sqlite_file_identity, translate_errors
from diffprompt.store.sql_runs import SQLRunLogAndLeases
from diffprompt.store.tables import AuditRow, FeedbackRow, LeaseRow, RunRow, SlotRow, TraceRow, VersionRow
from diffprompt.types import (
    AuditAction,
    AuditEntry,
    Feedback,
    PromptVersion,
    SlotState,
    Trace,
    TraceWithFeedback,
    utcnow,
)

_TABLES: list[Any] = [SlotRow, VersionRow, AuditRow, TraceRow, FeedbackRow, RunRow, LeaseRow]
S, V, A, T, F, R, L = (t.__table__ for t in _TABLES)
_CHUNK = 500


class SQLStore(SQLRunLogAndLeases):
    """A ``Store`` on an SQLAlchemy ``Engine`` (schema created by the Alembic migrations)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._url = engine.url
        self._pg = engine.dialect.name == "postgresql"
        self._file = sqlite_file_identity(engine)

    @property
    def location(self) -> str:
        """Where the data lives: the SQLite file's absolute path, else the URL without its password."""
        return self._file[0] if self._file is not None else safe_url(self._url)

    # --- transactions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        if self._file is not None and not os.path.exists(self._file[0]):
            self._check_file()  # raises: connecting would create an empty file in its place
        with translate_errors(self._url), self.engine.connect() as c, c.begin():
            yield c

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        if self._file is not None and not os.path.exists(self._file[0]):
            self._check_file()
        with translate_errors(self._url), self.engine.connect() as c:
            c.execution_options(**{IMMEDIATE: True})
            with c.begin():
                yield c
        if self._file is not None:
            self._check_file()

    def _check_file(self) -> None:
        """Raise ``StoreError`` when the SQLite file was deleted or replaced since the store opened it.

        Such a file still accepts writes, into an inode nobody can open again; so after each commit
        the path must still name the file we write.
        """
        assert self._file is not None
        path, ident = self._file
        try:
            st = os.stat(path)
            now: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            now = None
        if now != ident:
            self.engine.dispose()  # drop connections to the vanished file; a later call reconnects
            if now is not None:
                self._file = (path, now)  # a restored file is used from the next write on
            what = "deleted" if now is None else "replaced by another file"
            raise StoreError(
                f"database file {path} was {what} while open; the last write is not in it. "
                "Restore the file (or point --db at the right one) and retry"
            )

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self._pg else sqlite.insert)(table)

    # --- slots and versions -------------------------------------------------------------------
    def create_slot(
        self, slot: str, seed_text: str, *, actor: str = "system", protected_span_ids: Sequence[str] = ()
    ) -> PromptVersion:
        _logic.check_slot_name(slot)
        _logic.check_actor(actor)
        now = self._clock()
        v = _logic.make_version(slot, seed_text, parent_id=None, origin="seed", note="", created_at=now)
        protected = _logic.check_protected(v, protected_span_ids)
        with self._write() as c:
            if c.execute(sa.select(S.c.name).where(S.c.name == slot).with_for_update()).first() is None:
                inserted = c.execute(
                    self._insert(S)
                    .on_conflict_do_nothing(index_elements=["name"])
                    .values(
                        name=slot,
                        active_version_id=v.id,
                        canary_version_id=None,
                        canary_share=0.0,
                        revision=1,
                        protected_span_ids=list(protected),
                        history=[v.id],
                        created_at=now,
                    )
                    .returning(S.c.name)
                ).first()
                if inserted is not None:
                    c.execute(V.insert().values(**version_to_row(v)))
                    self._audit(c, slot, "create", None, v.id, actor, "slot created", None, now)
                    return v
        first = self.list_versions(slot)[0]
        if first.content_hash != v.content_hash:
            raise ConflictError(
                f"slot {slot!r} already exists with a different seed; add a version and promote it"
            )
        return first

    def list_slots(self) -> list[SlotState]:
        with self._read() as c:
            return [_state(r) for r in c.execute(sa.select(S).order_by(S.c.name)).mappings()]

    def slot_state(self, slot: str) -> SlotState:
        with self._read() as c:
            return _state(self._slot_row(c, slot))

    def set_protected_spans(self, slot: str, span_ids: Sequence[str], *, actor: str, reason: str) -> None:
        _logic.check_actor(actor)
        with self._write() as c:
            row = self._slot_row(c, slot, lock=True)
            active = self._version(c, row["active_version_id"])
            protected = _logic.check_protected(active, span_ids)
            if protected == tuple(row["protected_span_ids"]):
                return
            c.execute(
                S.update()
                .where(S.c.name == slot)
                .values(protected_span_ids=list(protected), revision=row["revision"] + 1)
            )
            self._audit(c, slot, "protect", None, None, actor, reason, None, self._clock())

    def add_version(
        self, slot: str, text: str, *, parent_id: str | None, origin: str, note: str = ""
    ) -> PromptVersion:
        v = _logic.make_version(
            slot, text, parent_id=parent_id, origin=origin, note=note, created_at=self._clock()
        )
        with self._write() as c:
            self._slot_row(c, slot)
            if parent_id is not None:
                _logic.check_same_slot(slot, self._version(c, parent_id), "derive a version of")
            c.execute(
                self._insert(V).on_conflict_do_nothing(index_elements=["id"]).values(**version_to_row(v))
            )
            return self._version(c, v.id)

    def get_version(self, version_id: str) -> PromptVersion:
        with self._read() as c:
            return self._version(c, version_id)

    def list_versions(self, slot: str) -> list[PromptVersion]:
        with self._read() as c:
            self._slot_row(c, slot)
            rows = c.execute(sa.select(V).where(V.c.slot == slot).order_by(V.c.pk)).mappings()
            return [version_from_row(r) for r in rows]

    def active_version(self, slot: str) -> PromptVersion:
        with self._read() as c:
            return self._version(c, self._slot_row(c, slot)["active_version_id"])

    # --- pointer moves ------------------------------------------------------------------------
    def promote(
        self, slot: str, version_id: str, *, actor: str, reason: str, expected_active: str | None = None
    ) -> AuditEntry:
        _logic.check_actor(actor)
        with self._write() as c:
            row = self._slot_row(c, slot, lock=True)  # the compare and the set in one locked transaction
            _logic.check_same_slot(slot, self._version(c, version_id), "promote")
            if row["active_version_id"] == version_id and row["canary_version_id"] is None:
                return self._last_audit(c, slot)
            _logic.check_expected_active(slot, row["active_version_id"], expected_active, "promote")
            return self._move(c, row, version_id, "promote", actor, reason)

    def rollback(self, slot: str, version_id: str | None = None, *, actor: str, reason: str) -> AuditEntry:
        _logic.check_actor(actor)
        with self._write() as c:
            row = self._slot_row(c, slot, lock=True)
            target = _logic.rollback_target(row["history"], row["active_version_id"], version_id)
            _logic.check_same_slot(slot, self._version(c, target), "roll back")
            if row["active_version_id"] == target and row["canary_version_id"] is None:
                return self._last_audit(c, slot)
            return self._move(c, row, target, "rollback", actor, reason)

    def set_canary(
        self,
        slot: str,
        version_id: str | None,
        share: float,
        *,
        actor: str,
        reason: str,
        expected_active: str | None = None,
    ) -> AuditEntry:
        _logic.check_actor(actor)
        _logic.check_share(version_id, share)
        with self._write() as c:
            row = self._slot_row(c, slot, lock=True)
            _logic.check_expected_active(slot, row["active_version_id"], expected_active, "set a canary")
            now = self._clock()
            if version_id is None:
                if row["canary_version_id"] is None:
                    return self._last_audit(c, slot)
                c.execute(
                    S.update()
                    .where(S.c.name == slot)
                    .values(canary_version_id=None, canary_share=0.0, revision=row["revision"] + 1)
                )
                return self._audit(
                    c, slot, "canary_clear", row["canary_version_id"], None, actor, reason, None, now
                )
            _logic.check_same_slot(slot, self._version(c, version_id), "canary")
            if version_id == row["active_version_id"]:
                raise ConflictError(
                    f"version {version_id} is already active in slot {slot!r}; no canary needed"
                )
            if row["canary_version_id"] == version_id and row["canary_share"] == float(share):
                return self._last_audit(c, slot)
            c.execute(
                S.update()
                .where(S.c.name == slot)
                .values(canary_version_id=version_id, canary_share=float(share), revision=row["revision"] + 1)
            )
            return self._audit(
                c, slot, "canary", row["active_version_id"], version_id, actor, reason, float(share), now
            )

    def audit_log(self, slot: str) -> list[AuditEntry]:
        with self._read() as c:
            self._slot_row(c, slot)
            return [
                audit_from_row(r)
                for r in c.execute(sa.select(A).where(A.c.slot == slot).order_by(A.c.id)).mappings()
            ]

    # --- traces and feedback -------------------------------------------------------------------
    def add_traces(self, traces: Sequence[Trace]) -> int:
        rows: dict[str, dict[str, Any]] = {}
        for tr in traces:
            _logic.validate_trace(tr)
            rows.setdefault(tr.id, trace_to_row(tr))
        if not rows:
            return 0
        stmt = self._insert(T).on_conflict_do_nothing(index_elements=["id"]).returning(T.c.id)
        with self._write() as c:
            return len(c.execute(stmt, list(rows.values())).all())

    def get_trace(self, trace_id: str) -> Trace:
        with self._read() as c:
            row = c.execute(sa.select(T).where(T.c.id == trace_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"unknown trace {trace_id!r}; see `diffprompt traces list`")
        return trace_from_row(row)

    def trace_for_thread(self, thread_id: str, slot: str | None = None) -> Trace:
        q = sa.select(T).where(T.c.thread_id == thread_id)
        if slot is not None:
            q = q.where(T.c.slot == slot)
        with self._read() as c:
            row = c.execute(q.order_by(T.c.started_at.desc(), T.c.pk.desc()).limit(1)).mappings().first()
        if row is None:
            raise NotFoundError(
                f"no trace recorded for thread {thread_id!r}" + (f" in slot {slot!r}" if slot else "")
            )
        return trace_from_row(row)

    def _trace_query(
        self, slot: str | None, since: datetime | None, until: datetime | None, version_id: str | None
    ) -> sa.Select[Any]:
        q = sa.select(T)
        if slot is not None:
            q = q.where(T.c.slot == slot)
        if since is not None:
            q = q.where(T.c.started_at >= since)
        if until is not None:
            q = q.where(T.c.started_at < until)
        if version_id is not None:
            q = q.where(T.c.version_id == version_id)
        return q

    def list_traces(
        self,
        slot: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        version_id: str | None = None,
        limit: int | None = None,
    ) -> list[Trace]:
        """Oldest first; with ``limit``, the newest ``limit`` traces (still oldest first)."""
        q = self._trace_query(slot, since, until, version_id)
        with self._read() as c:
            if limit is None:
                rows = list(c.execute(q.order_by(T.c.started_at, T.c.pk)).mappings())
            else:
                rows = list(
                    c.execute(
                        q.order_by(T.c.started_at.desc(), T.c.pk.desc()).limit(max(limit, 0))
                    ).mappings()
                )
                rows.reverse()
        return [trace_from_row(r) for r in rows]

    def count_traces(self, slot: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(T)
        if slot is not None:
            q = q.where(T.c.slot == slot)
        with self._read() as c:
            return int(c.execute(q).scalar_one())

    def add_feedback(self, feedback: Sequence[Feedback]) -> list[Feedback]:
        _logic.validate_feedback(feedback, ())
        if not feedback:
            return []
        wanted = list(dict.fromkeys(f.trace_id for f in feedback))
        rows: list[dict[str, Any]] = [
            {
                "trace_id": f.trace_id,
                "kind": f.kind,
                "value": None if f.value is None else float(f.value),
                "text": f.text,
                "source": f.source,
                "created_at": f.created_at,
            }
            for f in feedback
        ]
        with self._write() as c:
            known: set[str] = set()
            for i in range(0, len(wanted), _CHUNK):
                known.update(c.execute(sa.select(T.c.id).where(T.c.id.in_(wanted[i : i + _CHUNK]))).scalars())
            missing = [t for t in wanted if t not in known]
            if missing:
                raise NotFoundError(
                    f"feedback for unknown trace {missing[0]!r}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                    + "; record the trace first"
                )
            ids = c.execute(F.insert().returning(F.c.id, sort_by_parameter_order=True), rows).scalars().all()
        return [
            Feedback(
                id=i,
                trace_id=r["trace_id"],
                kind=r["kind"],
                value=r["value"],
                text=r["text"],
                source=r["source"],
                created_at=f.created_at,
            )
            for i, r, f in zip(ids, rows, feedback, strict=True)
        ]

    def feedback_for(self, trace_ids: Sequence[str]) -> list[Feedback]:
        ids = list(dict.fromkeys(trace_ids))
        out: list[Feedback] = []
        with self._read() as c:
            for i in range(0, len(ids), _CHUNK):
                q = sa.select(F).where(F.c.trace_id.in_(ids[i : i + _CHUNK])).order_by(F.c.id)
                out.extend(_feedback(r) for r in c.execute(q).mappings())
        out.sort(key=lambda f: f.id or 0)
        return out

    def window(
        self,
        slot: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[TraceWithFeedback]:
        traces = self.list_traces(slot, since=since, until=until, limit=limit)
        by_trace: dict[str, list[Feedback]] = {}
        for fb in self.feedback_for([t.id for t in traces]):
            by_trace.setdefault(fb.trace_id, []).append(fb)
        return [TraceWithFeedback(trace=t, feedback=tuple(by_trace.get(t.id, ()))) for t in traces]

    def stats(self, slot: str | None = None) -> dict[str, Any]:
        tq = sa.select(
            sa.func.count(),
            sa.func.count(T.c.error),
            sa.func.min(T.c.started_at),
            sa.func.max(T.c.started_at),
        ).select_from(T)
        fq = sa.select(F).join(T, T.c.id == F.c.trace_id)
        vq = sa.select(sa.func.count()).select_from(V)
        if slot is not None:
            tq, fq, vq = tq.where(T.c.slot == slot), fq.where(T.c.slot == slot), vq.where(V.c.slot == slot)
        with self._read() as c:
            n, errors, first, last = c.execute(tq).one()
            fbs = [_feedback(r) for r in c.execute(fq).mappings()]
            versions = int(c.execute(vq).scalar_one())
        conv = T.c.started_at.type
        return _logic.summarize(
            slot=slot,
            traces=int(n),
            feedback=fbs,
            errors=int(errors),
            versions=versions,
            first=conv.process_result_value(first, None) if first else None,
            last=conv.process_result_value(last, None) if last else None,
        )

    def close(self) -> None:
        self.engine.dispose()

    # --- internals ----------------------------------------------------------------------------
    def _slot_row(self, c: sa.Connection, slot: str, *, lock: bool = False) -> Any:
        q = sa.select(S).where(S.c.name == slot)
        row = c.execute(q.with_for_update() if lock else q).mappings().first()
        if row is None:
            raise NotFoundError(f"unknown slot {slot!r}; create it with `diffprompt prompts add {slot} FILE`")
        return row

    def _version(self, c: sa.Connection, version_id: str) -> PromptVersion:
        row = c.execute(sa.select(V).where(V.c.id == version_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"unknown prompt version {version_id!r}; see `diffprompt prompts list`")
        return version_from_row(row)

    def _last_audit(self, c: sa.Connection, slot: str) -> AuditEntry:
        row = (
            c.execute(sa.select(A).where(A.c.slot == slot).order_by(A.c.id.desc()).limit(1)).mappings().one()
        )
        return audit_from_row(row)

    def _move(
        self, c: sa.Connection, row: Any, target: str, action: AuditAction, actor: str, reason: str
    ) -> AuditEntry:
        history = _logic.push_history(row["history"], target, rollback=action == "rollback")
        c.execute(
            S.update()
            .where(S.c.name == row["name"])
            .values(
                active_version_id=target,
                canary_version_id=None,
                canary_share=0.0,
                history=history,
                revision=row["revision"] + 1,
            )
        )
        return self._audit(
            c, row["name"], action, row["active_version_id"], target, actor, reason, None, self._clock()
        )

    def _audit(
        self,
        c: sa.Connection,
        slot: str,
        action: AuditAction,
        src: str | None,
        dst: str | None,
        actor: str,
        reason: str,
        share: float | None,
        now: datetime,
    ) -> AuditEntry:
        new_id = c.execute(
            A.insert()
            .values(
                slot=slot,
                action=action,
                from_version_id=src,
                to_version_id=dst,
                actor=actor,
                reason=reason,
                canary_share=share,
                created_at=now,
            )
            .returning(A.c.id)
        ).scalar_one()
        return AuditEntry(
            id=int(new_id),
            slot=slot,
            action=action,
            from_version_id=src,
            to_version_id=dst,
            actor=actor,
            reason=reason,
            created_at=now,
            canary_share=share,
        )


def _state(r: Any) -> SlotState:
    return SlotState(
        slot=r["name"],
        active_version_id=r["active_version_id"],
        canary_version_id=r["canary_version_id"],
        canary_share=float(r["canary_share"]),
        revision=int(r["revision"]),
        protected_span_ids=tuple(r["protected_span_ids"] or ()),
    )


def _feedback(r: Any) -> Feedback:
    return Feedback(
        id=int(r["id"]),
        trace_id=r["trace_id"],
        kind=r["kind"],
        value=r["value"],
        text=r["text"],
        source=r["source"],
        created_at=r["created_at"],
    )
