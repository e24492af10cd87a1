"""Fraud: rules and their versions, alerts, cases, comments, company profiles; the fraud state
of cards and terminals and the decision trace of authorizations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 01:16:47.796170
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import processing.db.base


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fraud_worker_cursors',
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_fraud_worker_cursors'))
    )
    op.create_table('company_fraud_profiles',
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('computed_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_company_fraud_profiles_company_id_companies')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_company_fraud_profiles'))
    )
    op.create_table('fraud_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=48), nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_fraud_rules_company_id_companies')),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['users.id'], name=op.f('fk_fraud_rules_updated_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_rules'))
    )
    with op.batch_alter_table('fraud_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_rules_company_id'), ['company_id'], unique=False)
    # One global row (company_id NULL) and one row per company for each rule code.
    op.create_index('uq_fraud_rules_code_scope', 'fraud_rules', ['code', sa.text('coalesce(company_id, 0)')],
                    unique=True)

    op.create_table('fraud_rule_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('changed_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('changed_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_user_id'], ['users.id'], name=op.f('fk_fraud_rule_versions_changed_by_user_id_users')),
    sa.ForeignKeyConstraint(['rule_id'], ['fraud_rules.id'], name=op.f('fk_fraud_rule_versions_rule_id_fraud_rules')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_rule_versions'))
    )
    with op.batch_alter_table('fraud_rule_versions', schema=None) as batch_op:
        batch_op.create_index('uq_fraud_rule_versions_rule_version', ['rule_id', 'version'], unique=True)

    op.create_table('fraud_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('assignee_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('resolution_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['assignee_user_id'], ['users.id'], name=op.f('fk_fraud_cases_assignee_user_id_users')),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_fraud_cases_card_id_cards')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_fraud_cases_company_id_companies')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_fraud_cases_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['resolved_by_user_id'], ['users.id'], name=op.f('fk_fraud_cases_resolved_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_cases'))
    )
    with op.batch_alter_table('fraud_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_cases_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_cases_company_id'), ['company_id'], unique=False)

    op.create_table('fraud_alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('authorization_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('terminal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('rule_code', sa.String(length=48), nullable=False),
    sa.Column('rule_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('assignee_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', processing.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('resolution_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['assignee_user_id'], ['users.id'], name=op.f('fk_fraud_alerts_assignee_user_id_users')),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_fraud_alerts_authorization_id_authorizations')),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_fraud_alerts_card_id_cards')),
    sa.ForeignKeyConstraint(['case_id'], ['fraud_cases.id'], name=op.f('fk_fraud_alerts_case_id_fraud_cases')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_fraud_alerts_company_id_companies')),
    sa.ForeignKeyConstraint(['resolved_by_user_id'], ['users.id'], name=op.f('fk_fraud_alerts_resolved_by_user_id_users')),
    sa.ForeignKeyConstraint(['rule_id'], ['fraud_rules.id'], name=op.f('fk_fraud_alerts_rule_id_fraud_rules')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_fraud_alerts_terminal_id_terminals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_alerts'))
    )
    with op.batch_alter_table('fraud_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_alerts_authorization_id'), ['authorization_id'], unique=False)
        batch_op.create_index('ix_fraud_alerts_card_id_id', ['card_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_alerts_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_alerts_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_fraud_alerts_status_id', ['status', 'id'], unique=False)

    op.create_table('fraud_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('author_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', processing.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['fraud_alerts.id'], name=op.f('fk_fraud_comments_alert_id_fraud_alerts')),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_fraud_comments_author_user_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['fraud_cases.id'], name=op.f('fk_fraud_comments_case_id_fraud_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_comments'))
    )
    with op.batch_alter_table('fraud_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_comments_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_comments_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fraud_trace', sa.JSON(), nullable=True))

    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fraud_state', sa.JSON(), nullable=True))

    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fraud_state', sa.JSON(), nullable=True))

    _seed_rules()


# The shipped rules' default settings (fraud.engine.catalogue keeps the same defaults; a test
# checks they agree). Literal values: a migration must not change when the code does.
SEEDED_RULES = (
    ("card_velocity", "decline", "high", {"window_minutes": 10, "max_authorizations": 4}),
    ("tank_overfill", "review", "medium", {"window_minutes": 240, "max_tank_ratio": 1.2}),
    ("impossible_travel", "decline", "high", {"max_speed_kmh": 200.0, "min_distance_km": 5.0}),
    ("unusual_hours", "alert", "low", {"min_share_percent": 1.0, "min_history": 50}),
    ("decline_run", "alert", "medium", {"max_consecutive_declines": 3, "window_minutes": 60}),
    ("new_card_large_purchase", "review", "medium",
     {"max_card_age_days": 7, "min_amount_minor": 1000000, "typical_multiple": 3.0}),
    ("enrollment_token_anomalies", "block_card", "critical",
     {"window_minutes": 60, "max_anomalies": 3, "skew_seconds": 60}),
    ("terminal_token_anomalies", "alert", "high", {"window_minutes": 60, "max_anomalies": 10, "skew_seconds": 60}),
    ("terminal_card_burst", "alert", "medium", {"window_minutes": 10, "max_distinct_cards": 8}),
    ("product_mismatch", "alert", "medium", {}),
)


def _seed_rules() -> None:
    """The ten global rules, enabled, at version 1 with their version rows."""
    now = datetime.now(UTC)
    rules = sa.table(
        "fraud_rules", sa.column("id", sa.BigInteger), sa.column("code", sa.String),
        sa.column("company_id", sa.BigInteger), sa.column("enabled", sa.Boolean),
        sa.column("outcome", sa.String), sa.column("severity", sa.String), sa.column("params", sa.JSON),
        sa.column("version", sa.Integer), sa.column("updated_at", processing.db.base.UTCDateTime(timezone=True)),
    )
    versions = sa.table(
        "fraud_rule_versions", sa.column("rule_id", sa.BigInteger), sa.column("version", sa.Integer),
        sa.column("enabled", sa.Boolean), sa.column("outcome", sa.String), sa.column("severity", sa.String),
        sa.column("params", sa.JSON), sa.column("note", sa.String),
        sa.column("changed_at", processing.db.base.UTCDateTime(timezone=True)),
    )
    op.bulk_insert(rules, [
        {"code": code, "company_id": None, "enabled": True, "outcome": outcome, "severity": severity,
         "params": params, "version": 1, "updated_at": now}
        for code, outcome, severity, params in SEEDED_RULES
    ])
    op.get_bind().execute(versions.insert().from_select(
        ["rule_id", "version", "enabled", "outcome", "severity", "params", "note", "changed_at"],
        sa.select(rules.c.id, rules.c.version, rules.c.enabled, rules.c.outcome, rules.c.severity,
                  rules.c.params, sa.literal("default setting, seeded by migration 0007"),
                  sa.literal(now, processing.db.base.UTCDateTime(timezone=True)))
        .where(rules.c.company_id.is_(None)),
    ))


def downgrade() -> None:
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.drop_column('fraud_state')

    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('fraud_state')

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_column('fraud_trace')

    with op.batch_alter_table('fraud_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_comments_case_id'))
        batch_op.drop_index(batch_op.f('ix_fraud_comments_alert_id'))

    op.drop_table('fraud_comments')
    with op.batch_alter_table('fraud_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_fraud_alerts_status_id')
        batch_op.drop_index(batch_op.f('ix_fraud_alerts_company_id'))
        batch_op.drop_index(batch_op.f('ix_fraud_alerts_case_id'))
        batch_op.drop_index('ix_fraud_alerts_card_id_id')
        batch_op.drop_index(batch_op.f('ix_fraud_alerts_authorization_id'))

    op.drop_table('fraud_alerts')
    with op.batch_alter_table('fraud_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_cases_company_id'))
        batch_op.drop_index(batch_op.f('ix_fraud_cases_card_id'))

    op.drop_table('fraud_cases')
    with op.batch_alter_table('fraud_rule_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_fraud_rule_versions_rule_version')

    op.drop_table('fraud_rule_versions')
    op.drop_index('uq_fraud_rules_code_scope', table_name='fraud_rules')
    with op.batch_alter_table('fraud_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_rules_company_id'))

    op.drop_table('fraud_rules')
    op.drop_table('company_fraud_profiles')
    op.drop_table('fraud_worker_cursors')
