"""Top-ups: card payments, invoices, company tax ids, bank statements and their lines

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 23:22:19.784220
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('company_tax_ids',
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('inn', sa.String(length=12), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_company_tax_ids_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_company_tax_ids')),
    sa.UniqueConstraint('inn', name=op.f('uq_company_tax_ids_inn'))
    )
    op.create_table('bank_statements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('documents', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('imported_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('imported_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['imported_by_user_id'], ['users.id'], name=op.f('fk_bank_statements_imported_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statements'))
    )
    with op.batch_alter_table('bank_statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_statements_file_sha256'), ['file_sha256'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('payable_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('open_payable_amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_invoices_company_id_companies')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_invoices_created_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('currency', 'open_payable_amount_minor', name=op.f('uq_invoices_currency_open_payable_amount_minor')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_company_id'), ['company_id'], unique=False)

    op.create_table('card_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gateway_payment_id', sa.String(length=64), nullable=True),
    sa.Column('return_url', sa.String(length=2000), nullable=False),
    sa.Column('redirect_url', sa.String(length=2000), nullable=True),
    sa.Column('credited_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('refund_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('failure_reason', sa.String(length=300), nullable=True),
    sa.Column('created_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_card_payments_company_id_companies')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_card_payments_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['credited_entry_id'], ['journal_entries.id'], name=op.f('fk_card_payments_credited_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['refund_entry_id'], ['journal_entries.id'], name=op.f('fk_card_payments_refund_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_payments')),
    sa.UniqueConstraint('gateway_payment_id', name=op.f('uq_card_payments_gateway_payment_id'))
    )
    with op.batch_alter_table('card_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_payments_company_id'), ['company_id'], unique=False)

    op.create_table('statement_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('statement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_hash', sa.String(length=64), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=False),
    sa.Column('bank_account', sa.String(length=34), nullable=False),
    sa.Column('document_number', sa.String(length=64), nullable=False),
    sa.Column('document_date', sa.Date(), nullable=False),
    sa.Column('received_date', sa.Date(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payer_inn', sa.String(length=12), nullable=False),
    sa.Column('payer_name', sa.String(length=500), nullable=False),
    sa.Column('payer_account', sa.String(length=34), nullable=False),
    sa.Column('purpose', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('matched_by', sa.String(length=16), nullable=True),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('credited_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('queue_reason', sa.String(length=500), nullable=True),
    sa.Column('decided_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_statement_lines_company_id_companies')),
    sa.ForeignKeyConstraint(['credited_entry_id'], ['journal_entries.id'], name=op.f('fk_statement_lines_credited_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_statement_lines_decided_by_user_id_users')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_statement_lines_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['statement_id'], ['bank_statements.id'], name=op.f('fk_statement_lines_statement_id_bank_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_lines')),
    sa.UniqueConstraint('line_hash', name=op.f('uq_statement_lines_line_hash'))
    )
    with op.batch_alter_table('statement_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_lines_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_statement_lines_statement_id'), ['statement_id'], unique=False)
        batch_op.create_index('ix_statement_lines_status_id', ['status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('statement_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_statement_lines_status_id')
        batch_op.drop_index(batch_op.f('ix_statement_lines_statement_id'))
        batch_op.drop_index(batch_op.f('ix_statement_lines_company_id'))

    op.drop_table('statement_lines')
    with op.batch_alter_table('card_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_payments_company_id'))

    op.drop_table('card_payments')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_company_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('bank_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_statements_file_sha256'))

    op.drop_table('bank_statements')
    op.drop_table('company_tax_ids')
