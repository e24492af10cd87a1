"""Transactional outbox: events and the per-company sequence counters of the relay.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:13:08.250321
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_company_sequences',
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_outbox_company_sequences_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_outbox_company_sequences'))
    )
    op.create_table('outbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('schema_version', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('occurred_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('company_seq', sa.BigInteger(), nullable=True),
    sa.Column('sequenced_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_outbox_events_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events')),
    sa.UniqueConstraint('company_id', 'company_seq', name=op.f('uq_outbox_events_company_id_company_seq')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_events_event_id'))
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_events_unsequenced', ['id'], unique=False, sqlite_where=sa.text('company_seq IS NULL'), postgresql_where=sa.text('company_seq IS NULL'))
        batch_op.create_index('ix_outbox_events_unpublished', ['id'], unique=False, sqlite_where=sa.text('published_at IS NULL'), postgresql_where=sa.text('published_at IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_unpublished', sqlite_where=sa.text('published_at IS NULL'), postgresql_where=sa.text('published_at IS NULL'))
        batch_op.drop_index('ix_outbox_events_unsequenced', sqlite_where=sa.text('company_seq IS NULL'), postgresql_where=sa.text('company_seq IS NULL'))

    op.drop_table('outbox_events')
    op.drop_table('outbox_company_sequences')
