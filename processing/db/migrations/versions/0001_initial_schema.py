"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 21:29:06.762604
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index('uq_accounts_funding_currency', ['currency'], unique=True, sqlite_where=sa.text("kind = 'funding'"), postgresql_where=sa.text("kind = 'funding'"))

    op.create_table('limit_counters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope_kind', sa.String(length=16), nullable=False),
    sa.Column('scope_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('volume_ml', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_limit_counters')),
    sa.UniqueConstraint('scope_kind', 'scope_id', 'period', name=op.f('uq_limit_counters_scope_kind_scope_id_period'))
    )
    op.create_table('limits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope_kind', sa.String(length=16), nullable=False),
    sa.Column('scope_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('max_value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_limits')),
    sa.UniqueConstraint('scope_kind', 'scope_id', 'metric', 'period', name=op.f('uq_limits_scope_kind_scope_id_metric_period'))
    )
    op.create_table('spending_controls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope_kind', sa.String(length=16), nullable=False),
    sa.Column('scope_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('allowed_products', sa.JSON(), nullable=True),
    sa.Column('allowed_station_ids', sa.JSON(), nullable=True),
    sa.Column('allowed_network_ids', sa.JSON(), nullable=True),
    sa.Column('allowed_regions', sa.JSON(), nullable=True),
    sa.Column('allowed_weekdays', sa.JSON(), nullable=True),
    sa.Column('allowed_from_minute', sa.Integer(), nullable=True),
    sa.Column('allowed_to_minute', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spending_controls')),
    sa.UniqueConstraint('scope_kind', 'scope_id', name=op.f('uq_spending_controls_scope_kind_scope_id'))
    )
    op.create_table('companies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('available_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('held_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['available_account_id'], ['accounts.id'], name=op.f('fk_companies_available_account_id_accounts')),
    sa.ForeignKeyConstraint(['held_account_id'], ['accounts.id'], name=op.f('fk_companies_held_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_companies'))
    )
    op.create_table('station_networks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payable_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payable_account_id'], ['accounts.id'], name=op.f('fk_station_networks_payable_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_station_networks')),
    sa.UniqueConstraint('name', name=op.f('uq_station_networks_name'))
    )
    op.create_table('org_units',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_org_units_company_id_companies')),
    sa.ForeignKeyConstraint(['parent_id'], ['org_units.id'], name=op.f('fk_org_units_parent_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_units'))
    )
    with op.batch_alter_table('org_units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_units_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_org_units_path'), ['path'], unique=False)

    op.create_table('stations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('network_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('latitude', sa.Numeric(precision=9, scale=6, asdecimal=False), nullable=False),
    sa.Column('longitude', sa.Numeric(precision=9, scale=6, asdecimal=False), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['station_networks.id'], name=op.f('fk_stations_network_id_station_networks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
    sa.UniqueConstraint('code', name=op.f('uq_stations_code'))
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stations_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stations_region'), ['region'], unique=False)

    op.create_table('station_products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('station_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_station_products_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_station_products')),
    sa.UniqueConstraint('station_id', 'product', name=op.f('uq_station_products_station_id_product'))
    )
    op.create_table('terminals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('station_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('key_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_terminals_station_id_stations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terminals')),
    sa.UniqueConstraint('code', name=op.f('uq_terminals_code'))
    )
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_terminals_station_id'), ['station_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('login', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=500), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failed_login_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_users_company_id_companies')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_users_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('login', name=op.f('uq_users_login'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_company_id'), ['company_id'], unique=False)

    op.create_table('vehicles',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plate', sa.String(length=20), nullable=False),
    sa.Column('tank_capacity_ml', sa.BigInteger(), nullable=False),
    sa.Column('allowed_products', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_vehicles_company_id_companies')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_vehicles_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vehicles'))
    )
    with op.batch_alter_table('vehicles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vehicles_company_id'), ['company_id'], unique=False)

    op.create_table('auth_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('audience', sa.String(length=32), nullable=False),
    sa.Column('device_name', sa.String(length=100), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoke_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('drivers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_drivers_company_id_companies')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_drivers_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_drivers_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drivers')),
    sa.UniqueConstraint('user_id', name=op.f('uq_drivers_user_id'))
    )
    with op.batch_alter_table('drivers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drivers_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drivers_phone'), ['phone'], unique=False)

    op.create_table('terminal_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('terminal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('terminal_transaction_id', sa.String(length=40), nullable=False),
    sa.Column('message_type', sa.String(length=16), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_terminal_messages_terminal_id_terminals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terminal_messages')),
    sa.UniqueConstraint('terminal_id', 'terminal_transaction_id', 'message_type', name=op.f('uq_terminal_messages_terminal_id_terminal_transaction_id_message_type'))
    )
    op.create_table('cards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('driver_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('vehicle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('pan_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('pan_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('pan_first6', sa.String(length=6), nullable=False),
    sa.Column('pan_last4', sa.String(length=4), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_cards_company_id_companies')),
    sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_cards_driver_id_drivers')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_cards_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.id'], name=op.f('fk_cards_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards')),
    sa.UniqueConstraint('pan_hash', name=op.f('uq_cards_pan_hash'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_driver_id'), ['driver_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_org_unit_id'), ['org_unit_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('issued_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['auth_sessions.id'], name=op.f('fk_refresh_tokens_session_id_auth_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refresh_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_refresh_tokens_token_hash'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_session_id'), ['session_id'], unique=False)

    op.create_table('device_enrollments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dpan_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('dpan_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('dpan_last4', sa.String(length=4), nullable=False),
    sa.Column('device_key_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('device_label', sa.String(length=200), nullable=True),
    sa.Column('last_atc', sa.BigInteger(), nullable=False),
    sa.Column('last_clock_skew_seconds', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_device_enrollments_card_id_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_enrollments')),
    sa.UniqueConstraint('dpan_hash', name=op.f('uq_device_enrollments_dpan_hash'))
    )
    with op.batch_alter_table('device_enrollments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_enrollments_card_id'), ['card_id'], unique=False)

    op.create_table('authorizations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('terminal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('terminal_transaction_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('driver_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('entry_mode', sa.String(length=8), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('requested_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('approved_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('hold_volume_ml', sa.BigInteger(), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response_code', sa.String(length=2), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=False),
    sa.Column('decline_reason', sa.String(length=48), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('fraud_verdict', sa.String(length=16), nullable=True),
    sa.Column('token_atc', sa.BigInteger(), nullable=True),
    sa.Column('clock_skew_seconds', sa.BigInteger(), nullable=True),
    sa.Column('counted_on', sa.Date(), nullable=True),
    sa.Column('hold_expires_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('captured_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('captured_volume_ml', sa.BigInteger(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_authorizations_card_id_cards')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_authorizations_company_id_companies')),
    sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_authorizations_driver_id_drivers')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['device_enrollments.id'], name=op.f('fk_authorizations_enrollment_id_device_enrollments')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_authorizations_station_id_stations')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_authorizations_terminal_id_terminals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorizations')),
    sa.UniqueConstraint('terminal_id', 'terminal_transaction_id', name=op.f('uq_authorizations_terminal_id_terminal_transaction_id'))
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorizations_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_driver_id'), ['driver_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_hold_expires_at'), ['hold_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_status'), ['status'], unique=False)

    op.create_table('completions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('volume_ml', sa.BigInteger(), nullable=False),
    sa.Column('product', sa.String(length=16), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_completions_authorization_id_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_completions')),
    sa.UniqueConstraint('authorization_id', name=op.f('uq_completions_authorization_id'))
    )
    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_journal_entries_authorization_id_authorizations')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_journal_entries_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_authorization_id'), ['authorization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_company_id'), ['company_id'], unique=False)

    op.create_table('reversals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('released_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_reversals_authorization_id_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reversals')),
    sa.UniqueConstraint('authorization_id', name=op.f('uq_reversals_authorization_id'))
    )
    op.create_table('journal_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_journal_lines_account_id_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_lines_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_lines_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_lines_entry_id'))
        batch_op.drop_index(batch_op.f('ix_journal_lines_account_id'))

    op.drop_table('journal_lines')
    op.drop_table('reversals')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_company_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_authorization_id'))

    op.drop_table('journal_entries')
    op.drop_table('completions')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorizations_status'))
        batch_op.drop_index(batch_op.f('ix_authorizations_hold_expires_at'))
        batch_op.drop_index(batch_op.f('ix_authorizations_driver_id'))
        batch_op.drop_index(batch_op.f('ix_authorizations_company_id'))
        batch_op.drop_index(batch_op.f('ix_authorizations_card_id'))

    op.drop_table('authorizations')
    with op.batch_alter_table('device_enrollments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_enrollments_card_id'))

    op.drop_table('device_enrollments')
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_session_id'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_org_unit_id'))
        batch_op.drop_index(batch_op.f('ix_cards_driver_id'))
        batch_op.drop_index(batch_op.f('ix_cards_company_id'))

    op.drop_table('cards')
    op.drop_table('terminal_messages')
    with op.batch_alter_table('drivers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drivers_phone'))
        batch_op.drop_index(batch_op.f('ix_drivers_company_id'))

    op.drop_table('drivers')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_user_id'))

    op.drop_table('auth_sessions')
    with op.batch_alter_table('vehicles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vehicles_company_id'))

    op.drop_table('vehicles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_company_id'))

    op.drop_table('users')
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_terminals_station_id'))

    op.drop_table('terminals')
    op.drop_table('station_products')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stations_region'))
        batch_op.drop_index(batch_op.f('ix_stations_network_id'))

    op.drop_table('stations')
    with op.batch_alter_table('org_units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_units_path'))
        batch_op.drop_index(batch_op.f('ix_org_units_company_id'))

    op.drop_table('org_units')
    op.drop_table('station_networks')
    op.drop_table('companies')
    op.drop_table('spending_controls')
    op.drop_table('limits')
    op.drop_table('limit_counters')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('uq_accounts_funding_currency', sqlite_where=sa.text("kind = 'funding'"), postgresql_where=sa.text("kind = 'funding'"))

    op.drop_table('accounts')
