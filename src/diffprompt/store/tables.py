"""SQLModel tables. They never leave ``diffprompt.store``: backends convert rows to value objects.

Timestamps are stored as naive UTC (portable to SQLite) and come back timezone-aware. JSON columns
are ``JSON`` on SQLite and ``JSONB`` on PostgreSQL. The Alembic migration ``0001_initial`` creates
exactly these tables; change both together (new migration, never edit an applied one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """Portable JSON: JSONB on PostgreSQL."""
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(json_type(), nullable=nullable))


class SlotRow(SQLModel, table=True):
    __tablename__ = "slots"

    name: str = Field(primary_key=True, max_length=128)
    active_version_id: str = Field(max_length=64)
    canary_version_id: str | None = Field(default=None, max_length=64)
    canary_share: float = 0.0
    revision: int = 1
    protected_span_ids: list[str] = _json()
    history: list[str] = _json()  # active-version stack used by rollback's default target
    created_at: datetime = _ts()


class VersionRow(SQLModel, table=True):
    __tablename__ = "prompt_versions"
    __table_args__ = (sa.UniqueConstraint("slot", "content_hash", name="uq_prompt_versions_slot_hash"),)

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=64, unique=True)
    slot: str = Field(foreign_key="slots.name", max_length=128, index=True)
    text: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    spans: list[dict[str, Any]] = _json()
    parent_id: str | None = Field(default=None, max_length=64)
    origin: str = Field(max_length=200)
    content_hash: str = Field(max_length=64)
    note: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False, server_default=""))
    created_at: datetime = _ts()


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    slot: str = Field(foreign_key="slots.name", max_length=128, index=True)
    action: str = Field(max_length=32)
    from_version_id: str | None = Field(default=None, max_length=64)
    to_version_id: str | None = Field(default=None, max_length=64)
    actor: str = Field(max_length=200)
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False, server_default=""))
    canary_share: float | None = None
    created_at: datetime = _ts()


class TraceRow(SQLModel, table=True):
    __tablename__ = "traces"
    __table_args__ = (
        sa.Index("ix_traces_slot_started", "slot", "started_at"),
        sa.Index("ix_traces_slot_version", "slot", "version_id"),  # migration 0002
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=128, unique=True)
    slot: str = Field(max_length=128)
    version_id: str | None = Field(default=None, max_length=64, index=True)
    thread_id: str = Field(max_length=200, index=True)
    messages: list[dict[str, Any]] = _json()
    started_at: datetime = _ts()
    ended_at: datetime = _ts()
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
    replay_key: str | None = Field(default=None, max_length=200, index=True)
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    meta: dict[str, Any] = _json()


class FeedbackRow(SQLModel, table=True):
    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    trace_id: str = Field(
        sa_column=sa.Column(
            sa.String(128), sa.ForeignKey("traces.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(max_length=16)
    value: float | None = None
    text: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False, server_default=""))
    source: str = Field(max_length=32)
    created_at: datetime = _ts()


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=64)
    slot: str = Field(max_length=128, index=True)
    status: str = Field(max_length=32)
    record: dict[str, Any] = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class LeaseRow(SQLModel, table=True):
    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=128)
    owner: str = Field(max_length=200)
    expires_at: datetime = _ts()


TABLES = (SlotRow, VersionRow, AuditRow, TraceRow, FeedbackRow, RunRow, LeaseRow)
