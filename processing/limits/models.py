"""Card controls: limits, spending restrictions and the counters that make limits cheap.

A limit or control belongs to a scope: a card or an org unit. A card's authorization must fit
the card's own limits and those of every unit above it. Counters keep what each scope spent in
the current day, week and month, so an authorization never sums history.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from processing.db.base import Base, BigIntId, IdPK


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
    # Minutes after local midnight; from > to means the window crosses midnight.
    allowed_from_minute: Mapped[int | None] = mapped_column(Integer)
    allowed_to_minute: Mapped[int | None] = mapped_column(Integer)


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
