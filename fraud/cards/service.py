"""Cards for the security team: find one, read it, block or unblock it.

Security users see every company. A card number is only ever shown masked; a DPAN given to the
search is turned into its keyed look-up hash at once and goes no further (not into an answer, an
error message, a log line or the audit log).

Blocking and unblocking go through processing.cards.status, so they take effect on the card's next
authorization (a blocked card is declined with 62), emit the card's status event, and are audited
under the card's company, like a fleet admin's block: the fleet sees who stopped its card and why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.access import SecurityActor
from fraud.alerts.service import UNRESOLVED
from fraud.authorizations import DriverRef
from fraud.cards.schemas import (
    CardDetail,
    CardPage,
    CardSummary,
    EnrollmentView,
    UnitRef,
    VehicleRef,
)
from fraud.common import CompanyRef
from processing.audit.service import snapshot
from processing.cards import status as card_status
from processing.cards.models import Card, DeviceEnrollment
from processing.cards.service import DPAN_PURPOSE, CardNotFound, masked_card_number
from processing.crypto import Keyring
from processing.errors import ProcessingError
from processing.identity.service import InvalidPhone, normalise_phone
from processing.orgs.models import Company, Driver, OrgUnit, Vehicle
from processing.paging import MAX_PAGE, decode_cursor, encode_cursor
from processing.risk.models import CaseStatus, FraudAlert, FraudCase


class InvalidSearch(ProcessingError):
    status_code = 422
    code = "invalid_search"
    default_detail = ("Search by last4 (4 digits), dpan (12 to 19 digits), driver (a phone number or part of "
                      "a name, 2 to 200 characters) or company (part of a name, 2 to 200 characters).")


def _summary_rows():
    return (select(Card, Company.name, Driver)
            .join(Company, Company.id == Card.company_id)
            .outerjoin(Driver, Driver.id == Card.driver_id))


def _summary(card: Card, company_name: str, driver: Driver | None) -> dict:
    return dict(
        card_id=card.id, masked_card_number=masked_card_number(card.pan_first6, card.pan_last4),
        last4=card.pan_last4, status=card.status, status_reason=card.status_reason,
        company=CompanyRef(company_id=card.company_id, name=company_name),
        driver=None if driver is None else DriverRef(driver_id=driver.id, full_name=driver.full_name,
                                                     phone=driver.phone),
        created_at=card.created_at,
    )


def _text_term(value: str | None) -> str | None:
    if value is None:
        return None
    term = value.strip()
    if not 2 <= len(term) <= 200 or any(ord(char) < 0x20 or ord(char) == 0x7f for char in term):
        raise InvalidSearch()
    return term


async def search_cards(
    session: AsyncSession, *, keyring: Keyring, last4: str | None = None, dpan: str | None = None,
    driver: str | None = None, company: str | None = None, limit: int = 50, cursor: str | None = None,
) -> CardPage:
    """Cards matching every criterion given, newest first. ``driver`` is a phone number (exact, in
    any notation) or a part of the holder's name; ``company`` a part of the company's name. Name
    matching ignores case (on SQLite for Latin letters only)."""
    driver, company = _text_term(driver), _text_term(company)
    if last4 is not None and not (len(last4) == 4 and last4.isascii() and last4.isdigit()):
        raise InvalidSearch()
    if dpan is not None and not (12 <= len(dpan) <= 19 and dpan.isascii() and dpan.isdigit()):
        raise InvalidSearch()
    if not any((last4, dpan, driver, company)) or not 1 <= limit <= MAX_PAGE:
        raise InvalidSearch()
    below = decode_cursor(cursor)
    statement = _summary_rows().order_by(Card.id.desc()).limit(limit + 1)
    if below is not None:
        statement = statement.where(Card.id < below)
    if last4 is not None:
        statement = statement.where(Card.pan_last4 == last4)
    if dpan is not None:
        # Revoked enrollments too: an investigation follows old tokens.
        dpan_hash = keyring.lookup_hash(dpan, purpose=DPAN_PURPOSE)
        statement = statement.where(Card.id.in_(
            select(DeviceEnrollment.card_id).where(DeviceEnrollment.dpan_hash == dpan_hash)))
    if driver is not None:
        try:
            statement = statement.where(Driver.phone == normalise_phone(driver))
        except InvalidPhone:
            statement = statement.where(Driver.full_name.ilike(f"%{_escape_like(driver)}%", escape="\\"))
    if company is not None:
        statement = statement.where(Company.name.ilike(f"%{_escape_like(company)}%", escape="\\"))
    rows = (await session.execute(statement)).all()
    cards = [CardSummary(**_summary(*row)) for row in rows[:limit]]
    return CardPage(cards=cards, next_cursor=encode_cursor(cards[-1].card_id) if len(rows) > limit else None)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def card_detail(session: AsyncSession, *, card_id: int) -> CardDetail:
    """The card (masked number), its company, holder, vehicle, phones, open alerts and cases."""
    row = (await session.execute(
        _summary_rows().add_columns(OrgUnit.name, Vehicle)
        .join(OrgUnit, OrgUnit.id == Card.org_unit_id)
        .outerjoin(Vehicle, Vehicle.id == Card.vehicle_id)
        .where(Card.id == card_id)
    )).first()
    if row is None:
        raise CardNotFound(f"card {card_id} does not exist")
    card, company_name, driver, unit_name, vehicle = row
    enrollments = (await session.execute(
        select(DeviceEnrollment).where(DeviceEnrollment.card_id == card_id).order_by(DeviceEnrollment.id.desc())
    )).scalars()
    unresolved = await session.scalar(
        select(func.count()).select_from(FraudAlert)
        .where(FraudAlert.card_id == card_id, FraudAlert.status.in_(UNRESOLVED)))
    open_cases = (await session.execute(
        select(FraudCase.id).where(FraudCase.card_id == card_id, FraudCase.status == CaseStatus.OPEN)
        .order_by(FraudCase.id.desc()))).scalars()
    return CardDetail(
        **_summary(card, company_name, driver),
        org_unit=UnitRef(org_unit_id=card.org_unit_id, name=unit_name),
        vehicle=None if vehicle is None else VehicleRef(
            vehicle_id=vehicle.id, plate=vehicle.plate, tank_capacity_ml=vehicle.tank_capacity_ml,
            allowed_products=list(vehicle.allowed_products or [])),
        enrollments=[EnrollmentView(
            enrollment_id=item.id, dpan_last4=item.dpan_last4, device_label=item.device_label, status=item.status,
            created_at=item.created_at, revoked_at=item.revoked_at,
            last_clock_skew_seconds=item.last_clock_skew_seconds) for item in enrollments],
        unresolved_alert_count=unresolved or 0, open_case_ids=list(open_cases), fraud_state=card.fraud_state,
    )


def _card_snapshot(card: Card, **extra) -> dict:
    return snapshot(card_id=card.id, card=masked_card_number(card.pan_first6, card.pan_last4),
                    status=card.status, status_reason=card.status_reason, org_unit_id=card.org_unit_id,
                    driver_id=card.driver_id, vehicle_id=card.vehicle_id, **extra)


async def _locked_card(session: AsyncSession, card_id: int) -> tuple[Card, str]:
    row = (await session.execute(
        select(Card, OrgUnit.path).join(OrgUnit, OrgUnit.id == Card.org_unit_id)
        .where(Card.id == card_id).with_for_update(of=Card)
    )).first()
    if row is None:
        raise CardNotFound(f"card {card_id} does not exist")
    return row[0], row[1]


async def block_card(session: AsyncSession, *, actor: SecurityActor, card_id: int, reason: str,
                     now: datetime) -> CardDetail:
    """Block the card (or change the reason of a blocked one): its next authorization is declined 62."""
    card, path = await _locked_card(session, card_id)
    before = _card_snapshot(card)
    card = await card_status.block_card(session, card_id=card.id, reason=reason, now=now)
    await actor.record(session, action="card.block", target_kind="card", target_id=card.id,
                       company_id=card.company_id, org_unit_path=path, before=before,
                       after=_card_snapshot(card, reason=reason), now=now)
    return await card_detail(session, card_id=card.id)


async def unblock_card(session: AsyncSession, *, actor: SecurityActor, card_id: int, reason: str,
                       now: datetime) -> CardDetail:
    """Unblock a blocked card (409 card_not_blocked otherwise); the reason goes to the audit log."""
    card, path = await _locked_card(session, card_id)
    before = _card_snapshot(card)
    card = await card_status.unblock_card(session, card_id=card.id, now=now)
    await actor.record(session, action="card.unblock", target_kind="card", target_id=card.id,
                       company_id=card.company_id, org_unit_path=path, before=before,
                       after=_card_snapshot(card, reason=reason), now=now)
    return await card_detail(session, card_id=card.id)
