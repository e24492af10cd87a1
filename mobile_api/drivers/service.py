"""What a driver may see and do with their own cards. Every query is scoped to the driver:
a card of another driver or company is simply not found."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobile_api.deps import DriverPrincipal
from mobile_api.drivers.schemas import (
    CardLimits,
    CardView,
    DriverProfile,
    EnrollmentIssued,
    EnrollmentView,
    LimitExceptionPage,
    LimitExceptionRequest,
    LimitExceptionView,
    LimitView,
    StationView,
    TransactionPage,
    TransactionView,
    VehicleView,
)
from processing.authorization.models import Authorization, AuthorizationStatus
from processing.cards.models import Card, DeviceEnrollment, EnrollmentStatus
from processing.cards.service import CardNotFound, enroll_device, masked_card_number
from processing.crypto import Keyring
from processing.errors import ProcessingError
from processing.limits import exceptions as limit_exceptions
from processing.limits.models import LimitException, LimitMetric, ScopeKind
from processing.limits.service import allowed_products, effective_limits
from processing.orgs.models import Company, Driver, OrgUnit, Vehicle
from processing.settings import Settings
from processing.stations.models import Station

UNITS = {LimitMetric.AMOUNT: "kopecks", LimitMetric.VOLUME: "ml", LimitMetric.COUNT: "count"}


class InvalidCursor(ProcessingError):
    status_code = 422
    code = "invalid_cursor"
    default_detail = "The cursor is not one this API gave out."


async def profile(session: AsyncSession, driver: DriverPrincipal) -> DriverProfile:
    row = (
        await session.execute(
            select(Driver.id, Driver.full_name, Driver.phone, Company.name)
            .join(Company, Company.id == Driver.company_id)
            .where(Driver.id == driver.driver_id)
        )
    ).one()
    return DriverProfile(driver_id=row[0], full_name=row[1], phone=row[2], company_name=row[3])


async def _own_card(session: AsyncSession, driver: DriverPrincipal, card_id: int):
    row = (
        await session.execute(
            select(Card, Vehicle, OrgUnit.path, Company.timezone)
            .outerjoin(Vehicle, Vehicle.id == Card.vehicle_id)
            .join(OrgUnit, OrgUnit.id == Card.org_unit_id)
            .join(Company, Company.id == Card.company_id)
            .where(Card.id == card_id, Card.driver_id == driver.driver_id,
                   Card.company_id == driver.company_id)
        )
    ).first()
    if row is None:
        raise CardNotFound(f"you have no card {card_id}")
    return row


def _vehicle_view(vehicle: Vehicle | None) -> VehicleView | None:
    if vehicle is None:
        return None
    return VehicleView(plate=vehicle.plate, tank_capacity_ml=vehicle.tank_capacity_ml,
                       fuels=list(vehicle.allowed_products or []))


async def cards(session: AsyncSession, driver: DriverPrincipal) -> list[CardView]:
    """The driver's cards with their vehicle and the phone each is on."""
    rows = await session.execute(
        select(Card, Vehicle, DeviceEnrollment)
        .outerjoin(Vehicle, Vehicle.id == Card.vehicle_id)
        .outerjoin(DeviceEnrollment, (DeviceEnrollment.card_id == Card.id)
                   & (DeviceEnrollment.status == EnrollmentStatus.ACTIVE))
        .where(Card.driver_id == driver.driver_id, Card.company_id == driver.company_id)
        .order_by(Card.id)
    )
    views = []
    for card, vehicle, enrollment in rows:
        views.append(CardView(
            card_id=card.id, card=masked_card_number(card.pan_first6, card.pan_last4), status=card.status,
            vehicle=_vehicle_view(vehicle),
            enrollment=None if enrollment is None else EnrollmentView(
                enrollment_id=enrollment.id, device_label=enrollment.device_label,
                dpan_last4=enrollment.dpan_last4, enrolled_at=enrollment.created_at,
                last_clock_skew_seconds=enrollment.last_clock_skew_seconds,
            ),
        ))
    return views


async def card_limits(session: AsyncSession, driver: DriverPrincipal, *, card_id: int, now: datetime) -> CardLimits:
    """What the card may still spend in each period, and which products it may buy."""
    card, vehicle, unit_path, timezone = await _own_card(session, driver, card_id)
    local_day = now.astimezone(ZoneInfo(timezone)).date()
    limits = await effective_limits(session, card_id=card.id, org_unit_path=unit_path, local_day=local_day)
    unit_ids = {limit.scope_id for limit in limits if limit.scope_kind == ScopeKind.ORG_UNIT}
    unit_names = dict((await session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(unit_ids)))).all()) if unit_ids else {}
    masked = masked_card_number(card.pan_first6, card.pan_last4)
    return CardLimits(
        card_id=card.id,
        allowed_products=await allowed_products(
            session, card_id=card.id, org_unit_path=unit_path,
            vehicle_products=vehicle.allowed_products if vehicle else None,
        ),
        limits=[
            LimitView(
                scope=limit.scope_kind, scope_id=limit.scope_id,
                scope_name=f"card {masked}" if limit.scope_kind == ScopeKind.CARD else unit_names.get(limit.scope_id, ""),
                metric=limit.metric, period=limit.period, max_value=limit.max_value, used=limit.used,
                remaining=limit.remaining, unit=UNITS[LimitMetric(limit.metric)],
            )
            for limit in limits
        ],
    )


async def enroll(
    session: AsyncSession, keyring: Keyring, settings: Settings, driver: DriverPrincipal, *,
    card_id: int, device_label: str, now: datetime,
) -> EnrollmentIssued:
    """Put the driver's card on this phone; the phone it was on before stops paying."""
    card, *_ = await _own_card(session, driver, card_id)
    issued = await enroll_device(session, keyring, card_id=card.id, dpan_prefix=settings.dpan_prefix,
                                 device_label=device_label)
    return EnrollmentIssued(
        enrollment_id=issued.enrollment.id, card_id=card.id,
        card=masked_card_number(card.pan_first6, card.pan_last4), dpan=issued.dpan,
        device_key=base64.b64encode(issued.device_key).decode(),
        token_validity_seconds=settings.token_validity_seconds,
        allowed_clock_skew_seconds=settings.allowed_clock_skew_seconds,
        server_time_ms=int(now.timestamp() * 1000),
    )


def _encode_cursor(authorization_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{authorization_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if not text.startswith("a") or not text[1:].isascii() or not text[1:].isdigit() or len(text) > 20:
        raise InvalidCursor()
    return int(text[1:])


async def transactions(
    session: AsyncSession, driver: DriverPrincipal, *, limit: int, cursor: str | None, card_id: int | None,
) -> TransactionPage:
    """The driver's purchases, newest first, a page at a time (keyset pagination by id)."""
    statement = (
        select(Authorization, Station.name, Station.address, Card.pan_first6, Card.pan_last4)
        .join(Station, Station.id == Authorization.station_id)
        .join(Card, Card.id == Authorization.card_id)
        .where(Authorization.driver_id == driver.driver_id, Authorization.company_id == driver.company_id)
        .order_by(Authorization.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        statement = statement.where(Authorization.id < _decode_cursor(cursor))
    if card_id is not None:
        statement = statement.where(Authorization.card_id == card_id)
    rows = (await session.execute(statement)).all()
    items = [_transaction_view(*row) for row in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return TransactionPage(items=items, next_cursor=next_cursor)


def _transaction_view(authorization: Authorization, station_name: str, station_address: str | None,
                      first6: str, last4: str) -> TransactionView:
    status = authorization.status
    if status == AuthorizationStatus.COMPLETED:
        amount, volume = authorization.captured_amount_minor, authorization.captured_volume_ml
    elif status == AuthorizationStatus.DECLINED:
        amount, volume = authorization.requested_amount_minor, 0
    else:
        amount, volume = authorization.approved_amount_minor, authorization.hold_volume_ml
    return TransactionView(
        authorization_id=authorization.id, created_at=authorization.created_at,
        card=masked_card_number(first6, last4),
        station=StationView(name=station_name, address=station_address), product=authorization.product,
        volume_ml=volume, amount_minor=amount, currency=authorization.currency, status=status,
        approved=status != AuthorizationStatus.DECLINED, response_code=authorization.response_code,
        reason=authorization.reason,
    )


# --- one-off limit exceptions ------------------------------------------------------------------

EXCEPTION_UNITS = {LimitMetric.AMOUNT: "kopecks", LimitMetric.VOLUME: "ml"}


def _exception_view(exception: LimitException, first6: str, last4: str, now: datetime) -> LimitExceptionView:
    return LimitExceptionView(
        exception_id=exception.id, card_id=exception.card_id, card=masked_card_number(first6, last4),
        metric=exception.metric, extra_value=exception.extra_value,
        unit=EXCEPTION_UNITS[LimitMetric(exception.metric)], reason=exception.reason,
        status=limit_exceptions.shown_status(exception, now).value, requested_at=exception.requested_at,
        decided_at=exception.decided_at, decision_comment=exception.decision_comment,
        valid_until=exception.valid_until, used_at=exception.used_at,
    )


async def request_limit_exception(
    session: AsyncSession, driver: DriverPrincipal, *, card_id: int, request: LimitExceptionRequest,
    now: datetime,
) -> LimitExceptionView:
    """Ask the admins of the card's unit for a one-off raise on the driver's own active card."""
    card = (await session.execute(
        select(Card).where(Card.id == card_id, Card.driver_id == driver.driver_id,
                           Card.company_id == driver.company_id)
        .with_for_update()  # serialises the count of pending requests of the card
    )).scalar_one_or_none()
    if card is None:
        raise CardNotFound(f"you have no card {card_id}")
    exception = await limit_exceptions.request_exception(
        session, card=card, driver_id=driver.driver_id, metric=LimitMetric(request.metric),
        extra_value=request.extra_value, reason=request.reason, now=now,
    )
    return _exception_view(exception, card.pan_first6, card.pan_last4, now)


async def limit_exceptions_page(
    session: AsyncSession, driver: DriverPrincipal, *, limit: int, cursor: str | None, now: datetime,
) -> LimitExceptionPage:
    """The driver's own requests, newest first, with their status now."""
    statement = (
        select(LimitException, Card.pan_first6, Card.pan_last4)
        .join(Card, Card.id == LimitException.card_id)
        .where(LimitException.driver_id == driver.driver_id, LimitException.company_id == driver.company_id)
        .order_by(LimitException.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        statement = statement.where(LimitException.id < _decode_cursor(cursor))
    rows = (await session.execute(statement)).all()
    items = [_exception_view(exception, first6, last4, now) for exception, first6, last4 in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return LimitExceptionPage(items=items, next_cursor=next_cursor)
