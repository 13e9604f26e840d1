"""initial schema: slots, prompt_versions, audit, traces, feedback, runs, leases

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('record', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_runs_slot'), 'runs', ['slot'], unique=False)
    op.create_table('slots',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('active_version_id', sa.String(length=64), nullable=False),
    sa.Column('canary_version_id', sa.String(length=64), nullable=True),
    sa.Column('canary_share', sa.Float(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('protected_span_ids', JSON, nullable=False),
    sa.Column('history', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('traces',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('slot', sa.String(length=128), nullable=False),
    sa.Column('version_id', sa.String(length=64), nullable=True),
    sa.Column('thread_id', sa.String(length=200), nullable=False),
    sa.Column('messages', JSON, nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('model_calls', sa.Integer(), nullable=False),
    sa.Column('tool_calls', sa.Integer(), nullable=False),
    sa.Column('replay_key', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('meta', JSON, nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('id', name='uq_traces_id')
    )
    op.create_index(op.f('ix_traces_replay_key'), 'traces', ['replay_key'], unique=False)
    op.create_index('ix_traces_slot_started', 'traces', ['slot', 'started_at'], unique=False)
    op.create_index(op.f('ix_traces_thread_id'), 'traces', ['thread_id'], unique=False)
    op.create_index(op.f('ix_traces_version_id'), 'traces', ['version_id'], unique=False)
    op.create_table('audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_version_id', sa.String(length=64), nullable=True),
    sa.Column('to_version_id', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('canary_share', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['slot'], ['slots.name'], name='fk_audit_slot'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_slot'), 'audit', ['slot'], unique=False)
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('text', sa.Text(), server_default='', nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["trace_id"], ["traces.id"], name="fk_feedback_trace_id", ondelete="CASCADE"),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_feedback_trace_id'), 'feedback', ['trace_id'], unique=False)
    op.create_table('prompt_versions',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('spans', JSON, nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('origin', sa.String(length=200), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['slot'], ['slots.name'], name='fk_prompt_versions_slot'),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('id', name='uq_prompt_versions_id'),
    sa.UniqueConstraint('slot', 'content_hash', name='uq_prompt_versions_slot_hash')
    )
    op.create_index(op.f('ix_prompt_versions_slot'), 'prompt_versions', ['slot'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_prompt_versions_slot'), table_name='prompt_versions')
    op.drop_table('prompt_versions')
    op.drop_index(op.f('ix_feedback_trace_id'), table_name='feedback')
    op.drop_table('feedback')
    op.drop_index(op.f('ix_audit_slot'), table_name='audit')
    op.drop_table('audit')
    op.drop_index(op.f('ix_traces_version_id'), table_name='traces')
    op.drop_index(op.f('ix_traces_thread_id'), table_name='traces')
    op.drop_index('ix_traces_slot_started', table_name='traces')
    op.drop_index(op.f('ix_traces_replay_key'), table_name='traces')
    op.drop_table('traces')
    op.drop_table('slots')
    op.drop_index(op.f('ix_runs_slot'), table_name='runs')
    op.drop_table('runs')
    op.drop_table('leases')
