"""Limits and controls that compose down the org-unit tree.

A card's spend counts against its own limits and those of every unit above it (the
authorization engine checks them all). This module keeps the tree consistent when an admin
changes a scope: nobody can give a unit or a card more than a unit above it allows, and it
builds the "effective limits" view of a card: every limit that applies, where it comes from
and what is left of it now.

The parent rule, for every role:

* a limit of a scope may not exceed a limit of any unit above it with the same metric and the
  same or a longer period (a transaction is shorter than a day, a day than a week, a week than a
  month): 60 000 RUB a day under a unit that allows 50 000 a day, or 50 000 a week, is refused;
* a list control (products, stations, networks, regions, weekdays) of a scope must be a subset of
  the same list of every unit above it that restricts it, and its hour windows must lie within
  each such unit's windows. "No restriction" (None) on the child is always allowed: the parents'
  restrictions still apply to the card through composition.

Lowering a parent below its children is allowed: composition keeps the children safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card
from processing.db.base import utc_now
from processing.errors import ProcessingError
from processing.limits.models import (
    ExceptionStatus,
    Limit,
    LimitException,
    LimitMetric,
    LimitPeriod,
    ScopeKind,
    SpendingControl,
)
from processing.limits.service import (
    Controls,
    InvalidLimit,
    check_hour_windows,
    effective_limits,
    load_rules,
    scopes_for_card,
    set_controls,
    set_limit,
    window_minutes,
)
from processing.money import format_money, format_volume
from processing.orgs.models import Company, OrgUnit, path_ids
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit
from processing.products import FUELS, Product
from processing.stations.models import Station, StationNetwork

Scope = tuple[str, int]

# Shorter periods first: a limit binds every period up to and including its own.
PERIOD_RANK = {LimitPeriod.TRANSACTION.value: 0, LimitPeriod.DAY.value: 1, LimitPeriod.WEEK.value: 2,
               LimitPeriod.MONTH.value: 3}
METRIC_ORDER = {LimitMetric.AMOUNT.value: 0, LimitMetric.VOLUME.value: 1, LimitMetric.COUNT.value: 2}
LIST_CONTROLS = ("allowed_products", "allowed_station_ids", "allowed_network_ids", "allowed_regions",
                 "allowed_weekdays")
CONTROL_FIELDS = (*LIST_CONTROLS, "allowed_hours")
_CONTROL_WORDS = {
    "allowed_products": "products", "allowed_station_ids": "stations", "allowed_network_ids": "station networks",
    "allowed_regions": "regions", "allowed_weekdays": "weekdays", "allowed_hours": "hours",
}
_WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


class DuplicateLimit(ProcessingError):
    status_code = 422
    code = "duplicate_limit"


class ExceedsParentLimit(ProcessingError):
    status_code = 422
    code = "exceeds_parent_limit"


class ExceedsParentControls(ProcessingError):
    status_code = 422
    code = "exceeds_parent_controls"


class InvalidControls(ProcessingError):
    status_code = 422
    code = "invalid_controls"


class UnknownStation(ProcessingError):
    status_code = 422
    code = "unknown_station"


class UnknownStationNetwork(ProcessingError):
    status_code = 422
    code = "unknown_station_network"


class LimitNotFound(ProcessingError):
    status_code = 404
    code = "limit_not_found"


@dataclass(frozen=True, slots=True, order=True)
class LimitSpec:
    """One limit of a scope: at most ``max_value`` of ``metric`` per ``period``."""

    metric: str
    period: str
    max_value: int

    def key(self) -> tuple[str, str]:
        return self.metric, self.period

    def as_dict(self) -> dict:
        return {"metric": self.metric, "period": self.period, "max_value": self.max_value}


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """A scope as people read it: "card 7005 12•• •••• 1234" or "org unit 5 (North)"."""

    kind: str
    id: int
    name: str

    @property
    def label(self) -> str:
        if self.kind == ScopeKind.CARD:
            return f"card {self.name}" if self.name else f"card {self.id}"
        return f"org unit {self.id} ({self.name})"


@dataclass(frozen=True, slots=True)
class ControlSpec:
    """A scope's spending controls; None for a field = no restriction at this scope."""

    allowed_products: list[str] | None = None
    allowed_station_ids: list[int] | None = None
    allowed_network_ids: list[int] | None = None
    allowed_regions: list[str] | None = None
    allowed_weekdays: list[int] | None = None
    allowed_hours: list[list[int]] | None = None  # [[from, to], ...] minutes after local midnight

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in CONTROL_FIELDS}

    @classmethod
    def of(cls, controls: Controls | SpendingControl | None) -> ControlSpec:
        if controls is None:
            return cls()
        return cls(**{name: getattr(controls, name) for name in CONTROL_FIELDS})


def sort_limits(limits: Sequence[LimitSpec]) -> list[LimitSpec]:
    return sorted(limits, key=lambda limit: (METRIC_ORDER[limit.metric], PERIOD_RANK[limit.period]))


def describe_amount(metric: str, value: int, currency: str) -> str:
    """A limit value as people read it: "50 000.00 RUB", "40.00 l", "3 purchases"."""
    if metric == LimitMetric.AMOUNT:
        return format_money(value, currency)
    if metric == LimitMetric.VOLUME:
        return format_volume(value)
    return f"{value} purchase" + ("" if value == 1 else "s")


def describe_limit(limit: LimitSpec, currency: str) -> str:
    return f"{describe_amount(limit.metric, limit.max_value, currency)} per {limit.period}"


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parent_unit_ids(scope_kind: str, scope_id: int, unit_path: str) -> list[int]:
    """The units above a scope, root first. ``unit_path`` is the card's unit path for a card, the
    unit's own path for a unit (whose own id is then left out)."""
    ids = path_ids(unit_path)
    if scope_kind == ScopeKind.ORG_UNIT:
        return [unit_id for unit_id in ids if unit_id != scope_id]
    return ids


async def _unit_refs(session: AsyncSession, unit_ids: Sequence[int]) -> dict[int, ScopeRef]:
    if not unit_ids:
        return {}
    rows = await session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(list(unit_ids))))
    return {unit_id: ScopeRef(ScopeKind.ORG_UNIT.value, unit_id, name) for unit_id, name in rows}


# --- limits ----------------------------------------------------------------------------------

async def scope_limits(session: AsyncSession, *, scope_kind: str, scope_id: int) -> list[LimitSpec]:
    rows = await session.execute(
        select(Limit.metric, Limit.period, Limit.max_value)
        .where(Limit.scope_kind == scope_kind, Limit.scope_id == scope_id)
    )
    return sort_limits([LimitSpec(*row) for row in rows])


def check_limit_set(limits: Sequence[LimitSpec]) -> list[LimitSpec]:
    """A valid limit set: known metrics and periods, no duplicates, nothing negative."""
    seen: set[tuple[str, str]] = set()
    for limit in limits:
        try:
            LimitMetric(limit.metric), LimitPeriod(limit.period)
        except ValueError:
            raise InvalidLimit(f"unknown limit {limit.metric} per {limit.period}") from None
        if limit.max_value < 0:
            raise InvalidLimit(f"a limit cannot be negative ({limit.metric} per {limit.period})")
        if limit.metric == LimitMetric.COUNT and limit.period == LimitPeriod.TRANSACTION:
            raise InvalidLimit("a count limit needs a day, week or month period")
        if limit.key() in seen:
            raise DuplicateLimit(f"the {limit.metric} limit per {limit.period} is given twice; "
                                 "give each metric and period once")
        seen.add(limit.key())
    return sort_limits(limits)


async def check_limits_within_parents(
    session: AsyncSession, *, scope: ScopeRef, unit_path: str, limits: Sequence[LimitSpec], currency: str,
    subject: str | None = None,
) -> None:
    """Refuse (422 exceeds_parent_limit) a limit above a limit of any unit above the scope with the
    same metric and the same or a longer period. Names the tightest such parent limit."""
    parents = parent_unit_ids(scope.kind, scope.id, unit_path)
    if not parents or not limits:
        return
    rows = (await session.execute(
        select(Limit.scope_id, Limit.metric, Limit.period, Limit.max_value)
        .where(Limit.scope_kind == ScopeKind.ORG_UNIT, Limit.scope_id.in_(parents))
    )).all()
    if not rows:
        return
    depth = {unit_id: position for position, unit_id in enumerate(parents)}
    refs = None
    for limit in sort_limits(limits):
        above = [
            row for row in rows
            if row.metric == limit.metric and PERIOD_RANK[row.period] >= PERIOD_RANK[limit.period]
            and limit.max_value > row.max_value
        ]
        if not above:
            continue
        # The tightest parent limit; among equals the nearest unit, then the shortest period.
        tightest = min(above, key=lambda row: (row.max_value, -depth[row.scope_id], PERIOD_RANK[row.period]))
        refs = refs or await _unit_refs(session, parents)
        parent = refs[tightest.scope_id]
        parent_limit = LimitSpec(tightest.metric, tightest.period, tightest.max_value)
        raise ExceedsParentLimit(
            f"{parent.label} allows {describe_limit(parent_limit, currency)}; a limit of "
            f"{describe_limit(limit, currency)} for {subject or scope.label} is above it"
        )


async def _scope_marks(session: AsyncSession, scope: ScopeRef) -> payloads.LimitScopeMarks:
    """Whose limits these are, for the limit.changed event (an admin path: one more read is fine)."""
    if scope.kind == ScopeKind.CARD:
        row = (await session.execute(
            select(Card.company_id, Company.currency, Card.org_unit_id, Card.pan_first6, Card.pan_last4)
            .join(Company, Company.id == Card.company_id).where(Card.id == scope.id)
        )).one()
        return payloads.LimitScopeMarks(company_id=row[0], currency=row[1], scope_kind=ScopeKind.CARD.value,
                                        scope_id=scope.id, org_unit_id=row[2],
                                        card=payloads.CardMarks(scope.id, row[3], row[4]))
    row = (await session.execute(
        select(OrgUnit.company_id, Company.currency)
        .join(Company, Company.id == OrgUnit.company_id).where(OrgUnit.id == scope.id)
    )).one()
    return payloads.LimitScopeMarks(company_id=row[0], currency=row[1], scope_kind=ScopeKind.ORG_UNIT.value,
                                    scope_id=scope.id, org_unit_id=scope.id)


async def _emit_limit_change(session: AsyncSession, scope: ScopeRef, build, *, now: datetime | None, **changes):
    marks = await _scope_marks(session, scope)
    await emit(session, EventType.LIMIT_CHANGED, company_id=marks.company_id, payload=build(marks, **changes),
               now=now or utc_now())


async def replace_limits(
    session: AsyncSession, *, scope: ScopeRef, unit_path: str, limits: Sequence[LimitSpec], currency: str,
    subject: str | None = None, now: datetime | None = None,
) -> tuple[list[LimitSpec], list[LimitSpec]]:
    """Replace the scope's whole limit set; returns (before, after). Takes effect on the next
    authorization. Every limit of the new set must fit under the units above the scope.
    Emits one limit.changed when the set changed."""
    new = check_limit_set(limits)
    await check_limits_within_parents(session, scope=scope, unit_path=unit_path, limits=new,
                                      currency=currency, subject=subject)
    before = await scope_limits(session, scope_kind=scope.kind, scope_id=scope.id)
    kept = {limit.key() for limit in new}
    for old in before:
        if old.key() not in kept:
            await _delete_limit(session, scope, old.metric, old.period)
    for limit in new:
        await set_limit(session, scope_kind=ScopeKind(scope.kind), scope_id=scope.id,
                        metric=LimitMetric(limit.metric), period=LimitPeriod(limit.period),
                        max_value=limit.max_value)
    if before != new:
        await _emit_limit_change(session, scope, payloads.limits_changed, now=now,
                                 before=[limit.as_dict() for limit in before],
                                 after=[limit.as_dict() for limit in new])
    return before, new


async def remove_one_limit(
    session: AsyncSession, *, scope: ScopeRef, metric: str, period: str, now: datetime | None = None,
) -> LimitSpec:
    """Remove one limit of the scope (always allowed: the units above still bind). 404 if none.
    Emits limit.changed with the scope's whole set before and after."""
    before = await scope_limits(session, scope_kind=scope.kind, scope_id=scope.id)
    removed = next((limit for limit in before if limit.key() == (metric, period)), None)
    if removed is None:
        raise LimitNotFound(f"{scope.label} has no {metric} limit per {period}")
    await _delete_limit(session, scope, metric, period)
    await _emit_limit_change(session, scope, payloads.limits_changed, now=now,
                             before=[limit.as_dict() for limit in before],
                             after=[limit.as_dict() for limit in before if limit is not removed])
    return removed


async def _delete_limit(session: AsyncSession, scope: ScopeRef, metric: str, period: str) -> None:
    await session.execute(delete(Limit).where(
        Limit.scope_kind == scope.kind, Limit.scope_id == scope.id, Limit.metric == metric,
        Limit.period == period,
    ))


# --- controls --------------------------------------------------------------------------------

async def scope_controls(session: AsyncSession, *, scope_kind: str, scope_id: int) -> ControlSpec:
    row = (await session.execute(
        select(SpendingControl).where(SpendingControl.scope_kind == scope_kind,
                                      SpendingControl.scope_id == scope_id)
    )).scalar_one_or_none()
    return ControlSpec.of(row)


def _unique(values: Sequence | None) -> list | None:
    return None if values is None else list(dict.fromkeys(values))


async def check_control_set(session: AsyncSession, controls: ControlSpec) -> ControlSpec:
    """Normalised controls: known products, stations and networks; valid, non-overlapping hours."""
    products = _unique(controls.allowed_products)
    if products is not None:
        try:
            products = [Product(product).value for product in products]
        except ValueError as exc:
            raise InvalidControls(f"unknown product: {exc}") from None
    weekdays = None if controls.allowed_weekdays is None else sorted(set(controls.allowed_weekdays))
    if weekdays is not None and not set(weekdays) <= set(range(1, 8)):
        raise InvalidControls("weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
    hours = None
    if controls.allowed_hours is not None:
        try:
            hours = check_hour_windows(controls.allowed_hours)
        except InvalidLimit as exc:
            raise InvalidControls(exc.detail) from None
    station_ids = _unique(controls.allowed_station_ids)
    if station_ids:
        known = set((await session.execute(select(Station.id).where(Station.id.in_(station_ids)))).scalars())
        unknown = [station_id for station_id in station_ids if station_id not in known]
        if unknown:
            raise UnknownStation(f"no station has id {', '.join(map(str, unknown))}")
    network_ids = _unique(controls.allowed_network_ids)
    if network_ids:
        known = set((await session.execute(
            select(StationNetwork.id).where(StationNetwork.id.in_(network_ids)))).scalars())
        unknown = [network_id for network_id in network_ids if network_id not in known]
        if unknown:
            raise UnknownStationNetwork(f"no station network has id {', '.join(map(str, unknown))}")
    return ControlSpec(
        allowed_products=products, allowed_station_ids=station_ids, allowed_network_ids=network_ids,
        allowed_regions=_unique(controls.allowed_regions), allowed_weekdays=weekdays, allowed_hours=hours,
    )


def _hours_minutes(windows: Sequence[Sequence[int]]) -> set[int]:
    minutes: set[int] = set()
    for start, end in windows:
        minutes |= window_minutes(start, end)
    return minutes


def describe_control(name: str, value: Sequence) -> str:
    if name == "allowed_hours":
        return ", ".join(f"{hhmm(start)}-{hhmm(end)}" for start, end in value) or "no hours"
    if name == "allowed_weekdays":
        return ", ".join(_WEEKDAYS.get(day, str(day)) for day in value) or "no weekdays"
    return ", ".join(str(item) for item in value) or f"no {_CONTROL_WORDS[name]}"


async def check_controls_within_parents(
    session: AsyncSession, *, scope: ScopeRef, unit_path: str, controls: ControlSpec,
    subject: str | None = None,
) -> None:
    """Refuse (422 exceeds_parent_controls) a control wider than that of a unit above the scope."""
    parents = parent_unit_ids(scope.kind, scope.id, unit_path)
    if not parents:
        return
    _, parent_controls = await load_rules(session, [(ScopeKind.ORG_UNIT.value, unit_id) for unit_id in parents])
    if not parent_controls:
        return
    depth = {unit_id: position for position, unit_id in enumerate(parents)}
    parent_controls = sorted(parent_controls, key=lambda control: -depth[control.scope_id])  # nearest first
    who = subject or scope.label
    for name in CONTROL_FIELDS:
        child = getattr(controls, name)
        if child is None:
            continue
        for parent in parent_controls:
            allowed = getattr(parent, name)
            if allowed is None:
                continue
            if name == "allowed_hours":
                outside = _hours_minutes(child) - _hours_minutes(allowed)
                if not outside:
                    continue
                first = min(outside)
                extra = f"{hhmm(first)} is outside"
            else:
                outside_items = [item for item in child if item not in set(allowed)]
                if not outside_items:
                    continue
                extra = f"{describe_control(name, outside_items)} not allowed there"
            ref = (await _unit_refs(session, [parent.scope_id]))[parent.scope_id]
            words = _CONTROL_WORDS[name]
            raise ExceedsParentControls(
                f"{ref.label} allows {words} {describe_control(name, allowed)}; {words} "
                f"{describe_control(name, child)} for {who} are not within it ({extra})"
            )


async def replace_controls(
    session: AsyncSession, *, scope: ScopeRef, unit_path: str, controls: ControlSpec,
    subject: str | None = None, now: datetime | None = None,
) -> tuple[ControlSpec, ControlSpec]:
    """Replace the scope's spending controls; returns (before, after). Takes effect on the next
    authorization. Emits one limit.changed when they changed."""
    new = await check_control_set(session, controls)
    await check_controls_within_parents(session, scope=scope, unit_path=unit_path, controls=new,
                                        subject=subject)
    before = await scope_controls(session, scope_kind=scope.kind, scope_id=scope.id)
    await set_controls(session, scope_kind=ScopeKind(scope.kind), scope_id=scope.id,
                       allowed_products=new.allowed_products, allowed_station_ids=new.allowed_station_ids,
                       allowed_network_ids=new.allowed_network_ids, allowed_regions=new.allowed_regions,
                       allowed_weekdays=new.allowed_weekdays, allowed_hours=new.allowed_hours)
    if before != new:
        await _emit_limit_change(session, scope, payloads.controls_changed, now=now,
                                 before=before.as_dict(), after=new.as_dict())
    return before, new


# --- the effective-limits view ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourcedLimit:
    source: ScopeRef
    metric: str
    period: str
    max_value: int
    used: int
    remaining: int


@dataclass(frozen=True, slots=True)
class BindingLimit:
    """What is left now for a metric in a period: the smallest remainder of every limit of that
    metric with the same or a longer period, on any scope (a week's remainder caps today)."""

    metric: str
    period: str
    remaining: int
    limit: SourcedLimit  # the limit that binds


@dataclass(frozen=True, slots=True)
class SourcedControls:
    source: ScopeRef
    controls: ControlSpec


@dataclass(frozen=True, slots=True)
class CardLimitsView:
    card_id: int
    local_day: date
    limits: list[SourcedLimit]
    binding: list[BindingLimit]
    controls: list[SourcedControls]
    allowed_products: list[str]
    exceptions: list[LimitException] = field(default_factory=list)


def binding_limits(limits: Sequence[SourcedLimit]) -> list[BindingLimit]:
    keys = sorted({(limit.metric, limit.period) for limit in limits},
                  key=lambda key: (METRIC_ORDER[key[0]], PERIOD_RANK[key[1]]))
    binding = []
    for metric, period in keys:
        candidates = [limit for limit in limits
                      if limit.metric == metric and PERIOD_RANK[limit.period] >= PERIOD_RANK[period]]
        tightest = min(candidates, key=lambda limit: (limit.remaining, PERIOD_RANK[limit.period]))
        binding.append(BindingLimit(metric=metric, period=period, remaining=tightest.remaining, limit=tightest))
    return binding


async def card_limits_view(
    session: AsyncSession, *, card_id: int, card_name: str, org_unit_path: str,
    vehicle_products: Sequence[str] | None, local_day: date, now: datetime,
) -> CardLimitsView:
    """Every limit and control that applies to a card (its own and each unit's up to the root),
    what each has left now, what binds, and the card's active one-off exceptions."""
    scopes = scopes_for_card(card_id, org_unit_path)
    refs: dict[Scope, ScopeRef] = {(ScopeKind.CARD.value, card_id): ScopeRef(ScopeKind.CARD.value, card_id, card_name)}
    for unit_id, ref in (await _unit_refs(session, path_ids(org_unit_path))).items():
        refs[(ScopeKind.ORG_UNIT.value, unit_id)] = ref
    limits = [
        SourcedLimit(source=refs[(limit.scope_kind, limit.scope_id)], metric=limit.metric, period=limit.period,
                     max_value=limit.max_value, used=limit.used, remaining=limit.remaining)
        for limit in await effective_limits(session, card_id=card_id, org_unit_path=org_unit_path,
                                            local_day=local_day)
    ]
    _, controls = await load_rules(session, scopes)
    order = {scope: position for position, scope in enumerate(scopes)}
    controls = sorted(controls, key=lambda control: order[(control.scope_kind, control.scope_id)])
    products = [product.value for product in Product]
    for control in controls:
        if control.allowed_products is not None:
            products = [product for product in products if product in control.allowed_products]
    if vehicle_products:
        products = [product for product in products if product not in FUELS or product in vehicle_products]
    exceptions = list((await session.execute(
        select(LimitException)
        .where(LimitException.card_id == card_id, LimitException.status == ExceptionStatus.APPROVED,
               LimitException.valid_until > now)
        .order_by(LimitException.id)
    )).scalars())
    return CardLimitsView(
        card_id=card_id, local_day=local_day, limits=limits, binding=binding_limits(limits),
        controls=[SourcedControls(source=refs[(control.scope_kind, control.scope_id)],
                                  controls=ControlSpec.of(control)) for control in controls],
        allowed_products=products, exceptions=exceptions,
    )

