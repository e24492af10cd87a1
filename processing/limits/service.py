"""Setting limits and controls, and the counter operations of the authorization path.

Counter rows are locked with one upsert that returns them, in (scope kind, scope id, period)
order, so two transactions touching the same counters always lock them in the same order.

Shared counters (an org unit's, which every card below it moves) are a hot spot when a large
fleet pays at once: an authorization locks only the counters it must check (the card's, and
those of scopes with a period limit) and adds to the others with single-row upserts at the end
of its transaction (``count_unchecked``), so their row locks are held for the commit only.
Closing a hold (``adjust_counters``) likewise changes its counters with relative single-row
updates, without reading them first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from processing.db import fastpath
from processing.db.dialect import insert_for
from processing.errors import ProcessingError
from processing.limits.models import (
    COUNTED_PERIODS,
    Limit,
    LimitCounter,
    LimitMetric,
    LimitPeriod,
    ScopeKind,
    SpendingControl,
)
from processing.orgs.models import path_ids
from processing.products import FUELS, Product

Scope = tuple[str, int]  # (ScopeKind, id)


class InvalidLimit(ProcessingError):
    status_code = 422
    code = "invalid_limit"


def scopes_for_card(card_id: int, org_unit_path: str) -> list[Scope]:
    """The card itself and every org unit from the root down to the card's unit."""
    return [(ScopeKind.CARD.value, card_id)] + [
        (ScopeKind.ORG_UNIT.value, unit_id) for unit_id in path_ids(org_unit_path)
    ]


def period_starts(local_day: date) -> dict[str, date]:
    """First day of the day, ISO week (Monday) and month that contain ``local_day``."""
    return {
        LimitPeriod.DAY.value: local_day,
        LimitPeriod.WEEK.value: local_day - timedelta(days=local_day.weekday()),
        LimitPeriod.MONTH.value: local_day.replace(day=1),
    }


def _scope_filter(columns, scopes: Iterable[Scope]):
    kind_column, id_column = columns
    return or_(*(and_(kind_column == kind, id_column == scope_id) for kind, scope_id in scopes))


# --- administration -------------------------------------------------------------------------

async def set_limit(
    session: AsyncSession, *, scope_kind: ScopeKind, scope_id: int, metric: LimitMetric,
    period: LimitPeriod, max_value: int,
) -> None:
    """Create or change one limit; takes effect on the next authorization."""
    if max_value < 0:
        raise InvalidLimit("a limit cannot be negative")
    if metric == LimitMetric.COUNT and period == LimitPeriod.TRANSACTION:
        raise InvalidLimit("a count limit needs a day, week or month period")
    insert = insert_for(session)
    await session.execute(
        insert(Limit)
        .values(scope_kind=ScopeKind(scope_kind).value, scope_id=scope_id,
                metric=LimitMetric(metric).value, period=LimitPeriod(period).value,
                max_value=max_value)
        .on_conflict_do_update(
            index_elements=["scope_kind", "scope_id", "metric", "period"],
            set_={"max_value": max_value},
        )
    )


async def remove_limit(
    session: AsyncSession, *, scope_kind: ScopeKind, scope_id: int, metric: LimitMetric,
    period: LimitPeriod,
) -> None:
    await session.execute(
        delete(Limit).where(
            Limit.scope_kind == scope_kind, Limit.scope_id == scope_id,
            Limit.metric == metric, Limit.period == period,
        )
    )


async def set_controls(
    session: AsyncSession, *, scope_kind: ScopeKind, scope_id: int,
    allowed_products: Sequence[Product] | None = None,
    allowed_station_ids: Sequence[int] | None = None,
    allowed_network_ids: Sequence[int] | None = None,
    allowed_regions: Sequence[str] | None = None,
    allowed_weekdays: Sequence[int] | None = None,
    allowed_hours: Sequence[Sequence[int]] | None = None,
) -> None:
    """Replace a scope's spending controls; None for a field lifts that restriction."""
    hours = None if allowed_hours is None else check_hour_windows(allowed_hours)
    if allowed_weekdays is not None and not set(allowed_weekdays) <= set(range(1, 8)):
        raise InvalidLimit("weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
    values = {
        "allowed_products": None if allowed_products is None else [Product(p).value for p in allowed_products],
        "allowed_station_ids": None if allowed_station_ids is None else list(allowed_station_ids),
        "allowed_network_ids": None if allowed_network_ids is None else list(allowed_network_ids),
        "allowed_regions": None if allowed_regions is None else list(allowed_regions),
        "allowed_weekdays": None if allowed_weekdays is None else sorted(set(allowed_weekdays)),
        "allowed_hours": hours,
    }
    insert = insert_for(session)
    await session.execute(
        insert(SpendingControl)
        .values(scope_kind=ScopeKind(scope_kind).value, scope_id=scope_id, **values)
        .on_conflict_do_update(index_elements=["scope_kind", "scope_id"], set_=values)
    )


MINUTES_PER_DAY = 24 * 60


def check_hour_windows(windows: Sequence[Sequence[int]]) -> list[list[int]]:
    """Validated hour windows, sorted: each [from, to) in minutes 0..1440, none overlapping."""
    if not windows:
        raise InvalidLimit("give at least one hours window, or none to allow every hour")
    checked: list[list[int]] = []
    for window in windows:
        if len(window) != 2:
            raise InvalidLimit("an hours window is a start and an end")
        start, end = int(window[0]), int(window[1])
        if not (0 <= start <= MINUTES_PER_DAY and 0 <= end <= MINUTES_PER_DAY):
            raise InvalidLimit("hours are minutes after midnight, 0..1440")
        if start == end or (start, end) == (MINUTES_PER_DAY, 0):
            # 08:00-08:00 would silently block the card all day; the whole day is 0-1440.
            raise InvalidLimit("an hours window cannot start where it ends; the whole day is 0..1440")
        checked.append([start, end])
    checked.sort()
    covered: set[int] = set()
    for start, end in checked:
        minutes = window_minutes(start, end)
        if covered & minutes:
            raise InvalidLimit(f"the hours window {_hhmm(start)}-{_hhmm(end)} overlaps another window")
        covered |= minutes
    return checked


def window_minutes(start: int, end: int) -> set[int]:
    """The minutes of the day a window covers (a window may cross midnight)."""
    if start < end:
        return set(range(start, end))
    return set(range(start, MINUTES_PER_DAY)) | set(range(0, end))


# --- authorization path ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LimitRule:
    scope_kind: str
    scope_id: int
    metric: str
    period: str
    max_value: int


@dataclass(frozen=True, slots=True)
class Controls:
    scope_kind: str
    scope_id: int
    allowed_products: list[str] | None
    allowed_station_ids: list[int] | None
    allowed_network_ids: list[int] | None
    allowed_regions: list[str] | None
    allowed_weekdays: list[int] | None
    allowed_hours: list[list[int]] | None


@dataclass(slots=True)
class CounterState:
    """A locked counter row; amount/volume/count are those of the *current* period."""

    id: int
    scope_kind: str
    scope_id: int
    period: str
    stored_period_start: date
    current_period_start: date
    amount_minor: int
    volume_ml: int
    count: int


@functools.lru_cache(maxsize=32)
def _rules_statements(scope_count: int):
    """The limits and the controls of ``scope_count`` scopes (built once per size)."""
    limits, controls = Limit.__table__, SpendingControl.__table__

    def scope_filter(table):
        return or_(*(and_(table.c.scope_kind == bindparam(f"kind_{n}"), table.c.scope_id == bindparam(f"id_{n}"))
                     for n in range(scope_count)))

    return (
        select(limits.c.scope_kind, limits.c.scope_id, limits.c.metric, limits.c.period, limits.c.max_value)
        .where(scope_filter(limits)),
        select(
            controls.c.scope_kind, controls.c.scope_id, controls.c.allowed_products,
            controls.c.allowed_station_ids, controls.c.allowed_network_ids, controls.c.allowed_regions,
            controls.c.allowed_weekdays, controls.c.allowed_hours,
        ).where(scope_filter(controls)),
    )


async def load_rules(session: AsyncSession, scopes: Sequence[Scope]) -> tuple[list[LimitRule], list[Controls]]:
    """Limits and controls of every scope, in two index look-ups."""
    limits_statement, controls_statement = _rules_statements(len(scopes))
    params = {}
    for n, (kind, scope_id) in enumerate(scopes):
        params[f"kind_{n}"], params[f"id_{n}"] = kind, scope_id
    limit_rows = await fastpath.execute(session, limits_statement, params)
    control_rows = await fastpath.execute(session, controls_statement, params)
    return [LimitRule(*row) for row in limit_rows], [Controls(*row) for row in control_rows]


_counters = LimitCounter.__table__


@functools.lru_cache(maxsize=4)
def _lock_statement(dialect_name: str):
    """Upsert-and-return of counter keys, run with one parameter set per key: SQLAlchemy sends
    them as one multi-row INSERT ("insertmanyvalues"; rows written, and locked, in the given
    order) and keeps the compiled statement (a multi-row ``values()`` would be compiled again
    every time). The rows come back in no promised order: each carries its key."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(_counters).values(
        scope_kind=bindparam("b_kind"), scope_id=bindparam("b_scope"), period=bindparam("b_period"),
        period_start=bindparam("b_start"), amount_minor=0, volume_ml=0, count=0,
    )
    # A no-op update makes the conflicting row part of the result and locks it (PostgreSQL).
    return statement.on_conflict_do_update(
        index_elements=["scope_kind", "scope_id", "period"],
        set_={"scope_kind": statement.excluded.scope_kind},
    ).returning(
        _counters.c.id, _counters.c.scope_kind, _counters.c.scope_id, _counters.c.period,
        _counters.c.period_start, _counters.c.amount_minor, _counters.c.volume_ml, _counters.c.count,
    )


def _counter_keys(scopes: Iterable[Scope]) -> list[tuple[str, int, str]]:
    return sorted((kind, scope_id, period) for kind, scope_id in scopes for period in COUNTED_PERIODS)


async def lock_counters(
    session: AsyncSession, scopes: Sequence[Scope], local_day: date
) -> list[CounterState]:
    """Create missing counter rows and lock all of them, in one statement, in a fixed order."""
    starts = period_starts(local_day)
    params = [{"b_kind": kind, "b_scope": scope_id, "b_period": period, "b_start": starts[period]}
              for kind, scope_id, period in _counter_keys(scopes)]
    counters = []
    for row in await session.execute(_lock_statement(session.bind.dialect.name), params):
        current = starts[row.period]
        fresh = row.period_start == current
        counters.append(CounterState(
            id=row.id, scope_kind=row.scope_kind, scope_id=row.scope_id, period=row.period,
            stored_period_start=row.period_start, current_period_start=current,
            amount_minor=row.amount_minor if fresh else 0,
            volume_ml=row.volume_ml if fresh else 0,
            count=row.count if fresh else 0,
        ))
    return counters


def checked_scopes(scopes: Sequence[Scope], limits: Sequence[LimitRule]) -> list[Scope]:
    """The scopes whose counters an authorization must lock and read: the card's (the fraud
    rules see them, and nobody else moves them) and every scope with a period limit."""
    limited = {(limit.scope_kind, limit.scope_id) for limit in limits if limit.period != LimitPeriod.TRANSACTION}
    return [scope for n, scope in enumerate(scopes) if n == 0 or scope in limited]


async def add_to_counters(
    session: AsyncSession, counters: Sequence[CounterState], *, amount_minor: int, volume_ml: int,
    count: int,
) -> None:
    """Count a new hold in the current periods (resetting rows whose period has ended)."""
    await _write_counters(session, [
        {"counter_id": c.id, "start": c.current_period_start,
         "amount": c.amount_minor + amount_minor, "volume": c.volume_ml + volume_ml,
         "count": c.count + count}
        for c in counters
    ])


@functools.lru_cache(maxsize=4)
def _count_statement(dialect_name: str):
    """Add to one counter without reading it: a row of an ended period starts again from zero."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(_counters).values(
        scope_kind=bindparam("b_kind"), scope_id=bindparam("b_scope"), period=bindparam("b_period"),
        period_start=bindparam("b_start"), amount_minor=bindparam("b_amount"), volume_ml=bindparam("b_volume"),
        count=bindparam("b_count"),
    )
    same_period = _counters.c.period_start == statement.excluded.period_start
    return statement.on_conflict_do_update(
        index_elements=["scope_kind", "scope_id", "period"],
        set_={
            "period_start": statement.excluded.period_start,
            "amount_minor": case((same_period, _counters.c.amount_minor + statement.excluded.amount_minor),
                                 else_=statement.excluded.amount_minor),
            "volume_ml": case((same_period, _counters.c.volume_ml + statement.excluded.volume_ml),
                              else_=statement.excluded.volume_ml),
            "count": case((same_period, _counters.c.count + statement.excluded.count),
                          else_=statement.excluded.count),
        },
    )


async def count_unchecked(
    session: AsyncSession, scopes: Sequence[Scope], local_day: date, *, amount_minor: int, volume_ml: int,
    count: int,
) -> None:
    """Count a new hold on counters nothing checked (shared units without a period limit): one
    upsert per row, in the fixed key order, meant as the transaction's last writes."""
    if not scopes:
        return
    starts = period_starts(local_day)
    await session.execute(_count_statement(session.bind.dialect.name), [
        {"b_kind": kind, "b_scope": scope_id, "b_period": period, "b_start": starts[period],
         "b_amount": amount_minor, "b_volume": volume_ml, "b_count": count}
        for kind, scope_id, period in _counter_keys(scopes)
    ])


def _never_below_zero(column, delta):
    return case((column + delta < 0, 0), else_=column + delta)


_ADJUST_COUNTER = (
    update(_counters)
    .where(_counters.c.scope_kind == bindparam("b_kind"), _counters.c.scope_id == bindparam("b_scope"),
           _counters.c.period == bindparam("b_period"), _counters.c.period_start == bindparam("b_counted_start"))
    .values(amount_minor=_never_below_zero(_counters.c.amount_minor, bindparam("b_amount")),
            volume_ml=_never_below_zero(_counters.c.volume_ml, bindparam("b_volume")),
            count=_never_below_zero(_counters.c.count, bindparam("b_count")))
)


async def adjust_counters(
    session: AsyncSession, scopes: Sequence[Scope], *, counted_on: date,
    amount_minor: int, volume_ml: int, count: int,
) -> None:
    """Change what an earlier hold counted (release, or a completion below the hold).

    Only counters still in the period the hold was counted in are changed: a period that has
    ended is reset on its next use, and what it counted no longer limits anything. Relative
    single-row updates in the fixed key order: no read, and each row is locked only from its
    update to the commit.
    """
    counted_starts = period_starts(counted_on)
    await fastpath.execute(session, _ADJUST_COUNTER, [
        {"b_kind": kind, "b_scope": scope_id, "b_period": period, "b_counted_start": counted_starts[period],
         "b_amount": amount_minor, "b_volume": volume_ml, "b_count": count}
        for kind, scope_id, period in _counter_keys(scopes)
    ])


_WRITE_COUNTER = (
    update(_counters)
    .where(_counters.c.id == bindparam("counter_id"))
    .values(period_start=bindparam("start"), amount_minor=bindparam("amount"),
            volume_ml=bindparam("volume"), count=bindparam("count"))
)


async def _write_counters(session: AsyncSession, rows: list[dict]) -> None:
    if rows:
        await fastpath.execute(session, _WRITE_COUNTER, rows)


def controls_refusal(
    controls: Sequence[Controls], *, product: str, station_id: int, network_id: int, region: str,
    local_time: datetime,
) -> tuple[str, str] | None:
    """The first control that forbids this purchase, as (decline reason code, words), or None."""
    weekday = local_time.isoweekday()
    minute = local_time.hour * 60 + local_time.minute
    for control in controls:
        where = "card" if control.scope_kind == ScopeKind.CARD else f"org unit {control.scope_id}"
        if control.allowed_products is not None and product not in control.allowed_products:
            return "product_not_allowed", f"{product} is not allowed for this {where}"
        if control.allowed_station_ids is not None and station_id not in control.allowed_station_ids:
            return "station_not_allowed", f"this station is not allowed for this {where}"
        if control.allowed_network_ids is not None and network_id not in control.allowed_network_ids:
            return "station_not_allowed", f"this station network is not allowed for this {where}"
        if control.allowed_regions is not None and region not in control.allowed_regions:
            return "region_not_allowed", f"region {region} is not allowed for this {where}"
        if control.allowed_weekdays is not None and weekday not in control.allowed_weekdays:
            return "day_not_allowed", f"purchases on {local_time:%A} are not allowed for this {where}"
        if control.allowed_hours is not None and not any(
            _within_hours(minute, start, end) for start, end in control.allowed_hours
        ):
            windows = ", ".join(f"{_hhmm(start)}-{_hhmm(end)}" for start, end in control.allowed_hours)
            return "time_not_allowed", f"purchases at {local_time:%H:%M} are outside {windows} for this {where}"
    return None


def _within_hours(minute: int, start: int, end: int) -> bool:
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # window crosses midnight


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --- views -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    """One limit that applies to a card, where it comes from and what is left of it now."""

    scope_kind: str
    scope_id: int
    metric: str
    period: str
    max_value: int
    used: int
    remaining: int


async def effective_limits(
    session: AsyncSession, *, card_id: int, org_unit_path: str, local_day: date
) -> list[EffectiveLimit]:
    """Every limit on the card and the units above it, with what the current periods used.

    Reads the counters without locking them: a view, not a decision.
    """
    scopes = scopes_for_card(card_id, org_unit_path)
    limits, _ = await load_rules(session, scopes)
    starts = period_starts(local_day)
    rows = await session.execute(
        select(LimitCounter.scope_kind, LimitCounter.scope_id, LimitCounter.period,
               LimitCounter.period_start, LimitCounter.amount_minor, LimitCounter.volume_ml,
               LimitCounter.count)
        .where(_scope_filter((LimitCounter.scope_kind, LimitCounter.scope_id), scopes))
    )
    current = {
        (row.scope_kind, row.scope_id, row.period): {
            LimitMetric.AMOUNT: row.amount_minor, LimitMetric.VOLUME: row.volume_ml, LimitMetric.COUNT: row.count,
        }
        for row in rows if row.period_start == starts[row.period]
    }
    order = {scope: position for position, scope in enumerate(scopes)}
    period_order = {period.value: position for position, period in enumerate(LimitPeriod)}
    views = []
    def position(rule: LimitRule) -> tuple:
        return order[(rule.scope_kind, rule.scope_id)], rule.metric, period_order[rule.period]

    for limit in sorted(limits, key=position):
        used = 0
        if limit.period != LimitPeriod.TRANSACTION:
            used = current.get((limit.scope_kind, limit.scope_id, limit.period), {}).get(limit.metric, 0)
        views.append(EffectiveLimit(
            scope_kind=limit.scope_kind, scope_id=limit.scope_id, metric=limit.metric,
            period=limit.period, max_value=limit.max_value, used=used,
            remaining=max(limit.max_value - used, 0),
        ))
    return views


async def allowed_products(
    session: AsyncSession, *, card_id: int, org_unit_path: str, vehicle_products: Sequence[str] | None
) -> list[str]:
    """Products the card may buy: every scope's product control, and the vehicle's fuels."""
    _, controls = await load_rules(session, scopes_for_card(card_id, org_unit_path))
    allowed = [product.value for product in Product]
    for control in controls:
        if control.allowed_products is not None:
            allowed = [product for product in allowed if product in control.allowed_products]
    if vehicle_products:
        allowed = [p for p in allowed if p not in FUELS or p in vehicle_products]
    return allowed
