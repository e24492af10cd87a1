"""Fraud alerts: room for the status "resolved_not_fraud" (18 characters; the column had 16)

Revision ID: 0008_ops
Revises: 0007
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_ops'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fraud_alerts', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16), type_=sa.String(length=24),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('fraud_alerts', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=24), type_=sa.String(length=16),
                              existing_nullable=False)
