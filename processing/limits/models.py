"""Card controls: limits, spending restrictions and the counters that make limits cheap.

A limit or control belongs to a scope: a card or an org unit. A card's authorization must fit
the card's own limits and those of every unit above it. Counters keep what each scope spent in
the current day, week and month, so an authorization never sums history.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK, utc_now


class ScopeKind(StrEnum):
    CARD = "card"
    ORG_UNIT = "org_unit"


class LimitMetric(StrEnum):
    AMOUNT = "amount"  # kopecks
    VOLUME = "volume"  # millilitres
    COUNT = "count"  # number of authorizations


class LimitPeriod(StrEnum):
    TRANSACTION = "transaction"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


COUNTED_PERIODS = (LimitPeriod.DAY, LimitPeriod.WEEK, LimitPeriod.MONTH)


class Limit(Base):
    __tablename__ = "limits"
    __table_args__ = (UniqueConstraint("scope_kind", "scope_id", "metric", "period"),)

    id: Mapped[IdPK]
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int] = mapped_column(BigIntId)
    metric: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    max_value: Mapped[int] = mapped_column(BigInteger)


class SpendingControl(Base):
    """Where, when and what a scope may buy. A NULL column means "no restriction"."""

    __tablename__ = "spending_controls"
    __table_args__ = (UniqueConstraint("scope_kind", "scope_id"),)

    id: Mapped[IdPK]
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int] = mapped_column(BigIntId)
    allowed_products: Mapped[list[str] | None] = mapped_column(JSON)
    allowed_station_ids: Mapped[list[int] | None] = mapped_column(JSON)
    allowed_network_ids: Mapped[list[int] | None] = mapped_column(JSON)
    allowed_regions: Mapped[list[str] | None] = mapped_column(JSON)
    # ISO weekdays 1 (Monday) .. 7 (Sunday), in the company's time zone.
    allowed_weekdays: Mapped[list[int] | None] = mapped_column(JSON)
    # Windows [from, to) in minutes after local midnight, e.g. [[480, 720], [780, 1080]];
    # from > to means the window crosses midnight. Windows of one scope never overlap.
    allowed_hours: Mapped[list[list[int]] | None] = mapped_column(JSON)


class LimitCounter(Base):
    """What a scope spent in the period that starts at ``period_start`` (company local date).

    One row per scope and period kind: when a new period begins, the row is reset in place.
    """

    __tablename__ = "limit_counters"
    __table_args__ = (UniqueConstraint("scope_kind", "scope_id", "period"),)

    id: Mapped[IdPK]
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[int] = mapped_column(BigIntId)
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date]
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    volume_ml: Mapped[int] = mapped_column(BigInteger, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class ExceptionStatus(StrEnum):
    PENDING = "pending"  # asked by the driver, waiting for an admin
    APPROVED = "approved"  # usable once until valid_until
    REFUSED = "refused"
    USED = "used"  # an authorization needed it and took it


class LimitException(Base):
    """A one-off raise a driver asked for: ``extra_value`` more of ``metric`` for one purchase.

    An approval lifts the amount or volume limits of the card and of every unit at or below
    the approving admin's own unit (``approver_scope_path``), never those above it, for one
    authorization before ``valid_until``.
    """

    __tablename__ = "limit_exceptions"

    id: Mapped[IdPK]
    company_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("companies.id"), index=True)
    card_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("cards.id"), index=True)
    driver_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("drivers.id"), index=True)
    # The card's unit when asked: which admins see the request.
    org_unit_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("org_units.id"))
    metric: Mapped[str] = mapped_column(String(16))  # amount | volume
    extra_value: Mapped[int] = mapped_column(BigInteger)  # kopecks or millilitres
    reason: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=ExceptionStatus.PENDING)
    requested_at: Mapped[datetime] = mapped_column(default=utc_now)
    decided_by_user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_comment: Mapped[str | None] = mapped_column(String(300))
    approver_scope_path: Mapped[str | None] = mapped_column(String(1000))
    valid_until: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    used_by_authorization_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("authorizations.id"))
