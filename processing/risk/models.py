"""Storage of the fraud system: rules and their versions, alerts, cases, comments, company
activity profiles and the post-answer worker's cursor.

The tables live in the core because the authorization path writes alerts in its own
transaction; the logic that reads and changes them lives in the ``fraud`` package.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class RuleOutcome(StrEnum):
    """What a rule does when it fires (DESIGN §4, issue 7). Ordered mildest first."""

    APPROVE = "approve"  # record the firing in the trace only
    ALERT = "alert"  # approve, raise an alert
    REVIEW = "review"  # approve, raise an alert that waits in the review queue
    DECLINE = "decline"  # decline with 59 and raise an alert
    BLOCK_CARD = "block_card"  # decline with 59, block the card, raise an alert


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FraudRule(Base):
    """The current setting of one rule, either global (company_id NULL) or a company's own,
    which then replaces the global one for that company. Every change bumps ``version`` and
    appends the new setting to ``fraud_rule_versions``."""

    __tablename__ = "fraud_rules"
    __table_args__ = (
        # One global row and at most one row per company for each rule code.
        Index("uq_fraud_rules_code_scope", "code", func.coalesce("company_id", 0), unique=True),
    )

    id: Mapped[IdPK]
    code: Mapped[str] = mapped_column(String(48))
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    outcome: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))


class FraudRuleVersion(Base):
    """Append-only history of rule settings: a decision's trace names (rule id, version)."""

    __tablename__ = "fraud_rule_versions"
    __table_args__ = (Index("uq_fraud_rule_versions_rule_version", "rule_id", "version", unique=True),)

    id: Mapped[IdPK]
    rule_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("fraud_rules.id"))
    version: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(String(500))
    changed_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class AlertStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"  # assigned to an officer
    RESOLVED_FRAUD = "resolved_fraud"
    RESOLVED_NOT_FRAUD = "resolved_not_fraud"


class AlertSource(StrEnum):
    AUTHORIZATION = "authorization"  # raised by a rule in the authorization path
    WORKER = "worker"  # raised after the answer by the scoring worker


class FraudAlert(Base):
    __tablename__ = "fraud_alerts"
    __table_args__ = (
        Index("ix_fraud_alerts_status_id", "status", "id"),
        Index("ix_fraud_alerts_card_id_id", "card_id", "id"),
    )

    id: Mapped[IdPK]
    # Empty when the token could not be tied to a card (a terminal's anomalies).
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("cards.id"))
    authorization_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("authorizations.id"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("terminals.id"))
    source: Mapped[str] = mapped_column(String(16))
    rule_code: Mapped[str] = mapped_column(String(48))
    rule_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("fraud_rules.id"))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    # 24: "resolved_not_fraud" is 18 characters.
    status: Mapped[str] = mapped_column(String(24), default=AlertStatus.OPEN)
    summary: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    case_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("fraud_cases.id"), index=True)
    assignee_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None]
    resolved_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(1000))


class CaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED_FRAUD = "resolved_fraud"
    RESOLVED_NOT_FRAUD = "resolved_not_fraud"


class FraudCase(Base):
    """Alerts of one card grouped for one investigation."""

    __tablename__ = "fraud_cases"

    id: Mapped[IdPK]
    company_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    card_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("cards.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.OPEN)
    assignee_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    created_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None]
    resolved_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(1000))


class FraudComment(Base):
    """An officer's note on an alert or a case (exactly one of the two)."""

    __tablename__ = "fraud_comments"

    id: Mapped[IdPK]
    alert_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("fraud_alerts.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("fraud_cases.id"), index=True)
    author_user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class CompanyFraudProfile(Base):
    """A company's usual activity, computed from its history by the fraud worker (never in the
    authorization path, which only reads this one row with the card)."""

    __tablename__ = "company_fraud_profiles"

    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), primary_key=True)
    profile: Mapped[dict] = mapped_column(JSON, default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utc_now)


class FraudWorkerCursor(Base):
    """How far a post-answer worker has read (the last completion id it scored: holds complete
    out of order, so completion ids, not authorization ids)."""

    __tablename__ = "fraud_worker_cursors"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
