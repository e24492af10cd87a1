"""CRM inbound API: service clients (crm_clients), idempotency keys, contracts, the CRM's company ids.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:17:36.630139
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_clients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_clients')),
    sa.UniqueConstraint('key_id', name=op.f('uq_crm_clients_key_id'))
    )
    op.create_table('crm_idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('request_method', sa.String(length=8), nullable=False),
    sa.Column('request_path', sa.String(length=500), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['crm_clients.id'], name=op.f('fk_crm_idempotency_keys_client_id_crm_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_idempotency_keys')),
    sa.UniqueConstraint('client_id', 'key', name=op.f('uq_crm_idempotency_keys_client_id_key'))
    )
    with op.batch_alter_table('crm_idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_crm_idempotency_keys_created_at', ['created_at'], unique=False)

    op.create_table('company_external_ids',
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_company_external_ids_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_company_external_ids')),
    sa.UniqueConstraint('external_id', name=op.f('uq_company_external_ids_external_id'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('credit_limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('tariff', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_contracts_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('company_id', name=op.f('uq_contracts_company_id')),
    sa.UniqueConstraint('number', name=op.f('uq_contracts_number'))
    )


def downgrade() -> None:
    op.drop_table('contracts')
    op.drop_table('company_external_ids')
    with op.batch_alter_table('crm_idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_idempotency_keys_created_at')

    op.drop_table('crm_idempotency_keys')
    op.drop_table('crm_clients')
