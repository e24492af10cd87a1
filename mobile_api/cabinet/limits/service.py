"""Limits and controls in the cabinet. A unit's own limits and controls are set by whoever manages
the unit above it (a sub-admin cannot set their own unit's: 403); a card's by any admin whose
subtree holds the card. The composition rules live in processing.limits.composition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.cabinet.access import CabinetActor, scoped_card, scoped_unit
from mobile_api.cabinet.limits.schemas import (
    BindingView,
    ControlSet,
    ControlsView,
    EffectiveLimits,
    ExceptionView,
    HourWindow,
    LimitSet,
    LimitView,
    ScopeControls,
    ScopeLimits,
    ScopeRefView,
    SourcedControlsView,
    SourcedLimitView,
)
from processing.cards.service import masked_card_number
from processing.limits import composition
from processing.limits.composition import ControlSpec, LimitSpec, ScopeRef, describe_limit, hhmm
from processing.limits.models import LimitMetric, ScopeKind
from processing.orgs.models import Company, Vehicle

UNITS = {LimitMetric.AMOUNT.value: "kopecks", LimitMetric.VOLUME.value: "ml", LimitMetric.COUNT.value: "count"}


@dataclass(frozen=True, slots=True)
class _Target:
    """A scope the caller may read (or change), with what the rules and the audit need."""

    scope: ScopeRef
    unit_path: str  # the unit's own path, or the card's unit's path
    currency: str
    subject: str  # how a refusal names it: "this card", "org unit 7 (North-East)"


async def _currency(session: AsyncSession, company_id: int) -> str:
    return (await session.execute(select(Company.currency).where(Company.id == company_id))).scalar_one()


async def _unit_target(session: AsyncSession, actor: CabinetActor, unit_id: int, *, write: bool) -> _Target:
    unit = await scoped_unit(session, actor, unit_id, for_update=write)
    if write:
        actor.require_manages(unit, "set this unit's limits or controls")
    scope = ScopeRef(ScopeKind.ORG_UNIT.value, unit.id, unit.name)
    return _Target(scope=scope, unit_path=unit.path, currency=await _currency(session, actor.company_id),
                   subject=scope.label)


async def _card_target(session: AsyncSession, actor: CabinetActor, card_id: int, *, write: bool) -> _Target:
    card, path = await scoped_card(session, actor, card_id, for_update=write)
    scope = ScopeRef(ScopeKind.CARD.value, card.id, masked_card_number(card.pan_first6, card.pan_last4))
    return _Target(scope=scope, unit_path=path, currency=await _currency(session, actor.company_id),
                   subject="this card")


async def target(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int, write: bool) -> _Target:
    if kind == ScopeKind.CARD:
        return await _card_target(session, actor, scope_id, write=write)
    return await _unit_target(session, actor, scope_id, write=write)


def _ref_view(scope: ScopeRef) -> ScopeRefView:
    return ScopeRefView(scope=scope.kind, scope_id=scope.id, name=scope.name)


def _limit_view(limit: LimitSpec, currency: str) -> LimitView:
    return LimitView(metric=limit.metric, period=limit.period, max_value=limit.max_value,
                     unit=UNITS[limit.metric], display=describe_limit(limit, currency))


def _limits_view(found: _Target, limits: list[LimitSpec]) -> ScopeLimits:
    return ScopeLimits(**_ref_view(found.scope).model_dump(),
                       limits=[_limit_view(limit, found.currency) for limit in limits])


def _hours_view(hours: list[list[int]] | None) -> list[HourWindow] | None:
    return None if hours is None else [HourWindow(from_=hhmm(start), to=hhmm(end)) for start, end in hours]


def _controls_view(controls: ControlSpec) -> ControlsView:
    return ControlsView(**{**controls.as_dict(), "allowed_hours": _hours_view(controls.allowed_hours)})


def _controls_snapshot(controls: ControlSpec) -> dict:
    return {**controls.as_dict(),
            "allowed_hours": None if controls.allowed_hours is None
            else [f"{hhmm(start)}-{hhmm(end)}" for start, end in controls.allowed_hours]}


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


# --- limits ----------------------------------------------------------------------------------

async def get_limits(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int) -> ScopeLimits:
    found = await target(session, actor, kind=kind, scope_id=scope_id, write=False)
    return _limits_view(found, await composition.scope_limits(session, scope_kind=kind, scope_id=scope_id))


async def put_limits(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int, request: LimitSet,
                     now: datetime) -> ScopeLimits:
    """Replace the scope's limit set; each limit must fit under the units above (422 naming the parent)."""
    found = await target(session, actor, kind=kind, scope_id=scope_id, write=True)
    before, after = await composition.replace_limits(
        session, scope=found.scope, unit_path=found.unit_path, currency=found.currency, subject=found.subject,
        limits=[LimitSpec(item.metric.value, item.period.value, item.max_value) for item in request.limits],
        now=now,
    )
    await actor.record(session, action="limit.set", target_kind=kind, target_id=scope_id,
                       org_unit_path=found.unit_path, before={"limits": [limit.as_dict() for limit in before]},
                       after={"limits": [limit.as_dict() for limit in after]}, now=now)
    return _limits_view(found, after)


async def delete_limit(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int, metric: str,
                       period: str, now: datetime) -> ScopeLimits:
    """Remove one limit (the units above still bind)."""
    found = await target(session, actor, kind=kind, scope_id=scope_id, write=True)
    before = await composition.scope_limits(session, scope_kind=kind, scope_id=scope_id)
    await composition.remove_one_limit(session, scope=found.scope, metric=metric, period=period, now=now)
    after = await composition.scope_limits(session, scope_kind=kind, scope_id=scope_id)
    await actor.record(session, action="limit.remove", target_kind=kind, target_id=scope_id,
                       org_unit_path=found.unit_path, before={"limits": [limit.as_dict() for limit in before]},
                       after={"limits": [limit.as_dict() for limit in after]}, now=now)
    return _limits_view(found, after)


# --- controls --------------------------------------------------------------------------------

async def get_controls(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int) -> ScopeControls:
    found = await target(session, actor, kind=kind, scope_id=scope_id, write=False)
    controls = await composition.scope_controls(session, scope_kind=kind, scope_id=scope_id)
    return ScopeControls(**_ref_view(found.scope).model_dump(), controls=_controls_view(controls))


async def put_controls(session: AsyncSession, actor: CabinetActor, *, kind: str, scope_id: int,
                       request: ControlSet, now: datetime) -> ScopeControls:
    """Replace the scope's controls; each must stay within those of the units above (422)."""
    found = await target(session, actor, kind=kind, scope_id=scope_id, write=True)
    wanted = ControlSpec(
        allowed_products=None if request.allowed_products is None else [p.value for p in request.allowed_products],
        allowed_station_ids=request.allowed_station_ids, allowed_network_ids=request.allowed_network_ids,
        allowed_regions=request.allowed_regions, allowed_weekdays=request.allowed_weekdays,
        allowed_hours=None if request.allowed_hours is None
        else [[_minutes(window.from_), _minutes(window.to)] for window in request.allowed_hours],
    )
    before, after = await composition.replace_controls(session, scope=found.scope, unit_path=found.unit_path,
                                                       controls=wanted, subject=found.subject, now=now)
    await actor.record(session, action="controls.set", target_kind=kind, target_id=scope_id,
                       org_unit_path=found.unit_path, before=_controls_snapshot(before),
                       after=_controls_snapshot(after), now=now)
    return ScopeControls(**_ref_view(found.scope).model_dump(), controls=_controls_view(after))


# --- effective limits ------------------------------------------------------------------------

async def effective_limits(session: AsyncSession, actor: CabinetActor, *, card_id: int,
                           now: datetime) -> EffectiveLimits:
    """Every limit and control that applies to the card, what is left now and what binds."""
    card, path = await scoped_card(session, actor, card_id)
    company = await session.get(Company, actor.company_id)
    vehicle_products = None
    if card.vehicle_id is not None:
        vehicle_products = (await session.execute(
            select(Vehicle.allowed_products).where(Vehicle.id == card.vehicle_id))).scalar_one()
    masked = masked_card_number(card.pan_first6, card.pan_last4)
    local_day = now.astimezone(ZoneInfo(company.timezone)).date()
    view = await composition.card_limits_view(
        session, card_id=card.id, card_name=masked, org_unit_path=path, vehicle_products=vehicle_products,
        local_day=local_day, now=now,
    )
    currency = company.currency
    return EffectiveLimits(
        card_id=card.id, masked_card_number=masked, org_unit_id=card.org_unit_id, currency=currency,
        timezone=company.timezone, local_day=local_day,
        limits=[
            SourcedLimitView(source=_ref_view(limit.source), metric=limit.metric, period=limit.period,
                             max_value=limit.max_value, used=limit.used, remaining=limit.remaining,
                             unit=UNITS[limit.metric],
                             display=describe_limit(LimitSpec(limit.metric, limit.period, limit.max_value),
                                                    currency))
            for limit in view.limits
        ],
        binding=[
            BindingView(metric=item.metric, period=item.period, remaining=item.remaining, unit=UNITS[item.metric],
                        source=_ref_view(item.limit.source), binding_period=item.limit.period,
                        binding_max_value=item.limit.max_value)
            for item in view.binding
        ],
        controls=[SourcedControlsView(source=_ref_view(item.source), controls=_controls_view(item.controls))
                  for item in view.controls],
        allowed_products=view.allowed_products,
        exceptions=[
            ExceptionView(exception_id=item.id, metric=item.metric, extra_value=item.extra_value,
                          unit=UNITS.get(item.metric, item.metric), reason=item.reason,
                          decided_by_user_id=item.decided_by_user_id, decided_at=item.decided_at,
                          valid_until=item.valid_until)
            for item in view.exceptions
        ],
    )
