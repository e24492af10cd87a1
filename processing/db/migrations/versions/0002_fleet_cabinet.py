"""Fleet cabinet: audit log, driver invitations, one-off limit exceptions, several hour windows
per spending control, the org unit of each authorization, users' full names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:22:28.496136
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_role', sa.String(length=32), nullable=False),
    sa.Column('actor_login', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_kind', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('org_unit_path', sa.String(length=1000), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_audit_log_actor_user_id_users')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_audit_log_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_company_id_id', ['company_id', 'id'], unique=False)

    op.create_table('driver_invitations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('driver_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_driver_invitations_driver_id_drivers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_driver_invitations'))
    )
    with op.batch_alter_table('driver_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_driver_invitations_driver_id'), ['driver_id'], unique=False)

    op.create_table('limit_exceptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('driver_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('extra_value', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_comment', sa.String(length=300), nullable=True),
    sa.Column('approver_scope_path', sa.String(length=1000), nullable=True),
    sa.Column('valid_until', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_by_authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_limit_exceptions_card_id_cards')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_limit_exceptions_company_id_companies')),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_limit_exceptions_decided_by_user_id_users')),
    sa.ForeignKeyConstraint(['driver_id'], ['drivers.id'], name=op.f('fk_limit_exceptions_driver_id_drivers')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_limit_exceptions_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['used_by_authorization_id'], ['authorizations.id'], name=op.f('fk_limit_exceptions_used_by_authorization_id_authorizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_limit_exceptions'))
    )
    with op.batch_alter_table('limit_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_limit_exceptions_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_limit_exceptions_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_limit_exceptions_driver_id'), ['driver_id'], unique=False)

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_authorizations_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_authorizations_org_unit_id_org_units'), 'org_units', ['org_unit_id'], ['id'])

    with op.batch_alter_table('spending_controls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed_hours', sa.JSON(), nullable=True))
    # One window becomes a list of one window.
    controls = sa.table('spending_controls', sa.column('id', sa.Integer()), sa.column('allowed_hours', sa.JSON()),
                        sa.column('allowed_from_minute', sa.Integer()), sa.column('allowed_to_minute', sa.Integer()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(controls.c.id, controls.c.allowed_from_minute, controls.c.allowed_to_minute)
                              .where(controls.c.allowed_from_minute.is_not(None))).all()
    for row in rows:
        connection.execute(controls.update().where(controls.c.id == row.id)
                           .values(allowed_hours=[[row.allowed_from_minute, row.allowed_to_minute]]))
    with op.batch_alter_table('spending_controls', schema=None) as batch_op:
        batch_op.drop_column('allowed_to_minute')
        batch_op.drop_column('allowed_from_minute')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('full_name', sa.String(length=200), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('full_name')

    with op.batch_alter_table('spending_controls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed_from_minute', sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column('allowed_to_minute', sa.INTEGER(), nullable=True))
    # Only the first window survives a downgrade.
    controls = sa.table('spending_controls', sa.column('id', sa.Integer()), sa.column('allowed_hours', sa.JSON()),
                        sa.column('allowed_from_minute', sa.Integer()), sa.column('allowed_to_minute', sa.Integer()))
    connection = op.get_bind()
    for row in connection.execute(sa.select(controls.c.id, controls.c.allowed_hours)).all():
        if row.allowed_hours:
            first, last = row.allowed_hours[0]
            connection.execute(controls.update().where(controls.c.id == row.id)
                               .values(allowed_from_minute=first, allowed_to_minute=last))
    with op.batch_alter_table('spending_controls', schema=None) as batch_op:
        batch_op.drop_column('allowed_hours')

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_authorizations_org_unit_id_org_units'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_authorizations_org_unit_id'))
        batch_op.drop_column('org_unit_id')

    with op.batch_alter_table('limit_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_limit_exceptions_driver_id'))
        batch_op.drop_index(batch_op.f('ix_limit_exceptions_company_id'))
        batch_op.drop_index(batch_op.f('ix_limit_exceptions_card_id'))

    op.drop_table('limit_exceptions')
    with op.batch_alter_table('driver_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_driver_invitations_driver_id'))

    op.drop_table('driver_invitations')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_company_id_id')

    op.drop_table('audit_log')
