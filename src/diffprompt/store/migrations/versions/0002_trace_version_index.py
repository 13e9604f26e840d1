"""index traces by (slot, version_id): per-version windows and canary comparisons

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_traces_slot_version", "traces", ["slot", "version_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_traces_slot_version", table_name="traces")
