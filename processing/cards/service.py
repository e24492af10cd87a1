"""Issuing cards, changing their status and putting them on phones."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from processing import tokens
from processing.cards.models import Card, CardStatus, DeviceEnrollment, EnrollmentStatus
from processing.cards.numbers import masked_card_number as masked_card_number  # re-exported
from processing.crypto import Keyring
from processing.db.base import utc_now
from processing.errors import Conflict, NotFound
from processing.orgs.models import OrgUnit
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit

PAN_PURPOSE = "pan"
DPAN_PURPOSE = "dpan"
DEVICE_KEY_PURPOSE = "device_key"
DEVICE_KEY_LENGTH = 32
_NUMBER_ATTEMPTS = 5


class CardNotFound(NotFound):
    code = "card_not_found"


class CardNotActive(Conflict):
    code = "card_not_active"


class CardClosed(Conflict):
    code = "card_closed"


@dataclass(frozen=True)
class IssuedCard:
    card: Card
    pan: str  # shown to nobody but the issuing call's caller; never logged


@dataclass(frozen=True)
class Enrollment:
    enrollment: DeviceEnrollment
    dpan: str
    device_key: bytes  # leaves the host once, to the phone


async def issue_card(
    session: AsyncSession, keyring: Keyring, *, company_id: int, org_unit_id: int,
    pan_prefix: str, driver_id: int | None = None, vehicle_id: int | None = None, now: datetime | None = None,
) -> IssuedCard:
    """A new active virtual card with a fresh Luhn-valid PAN, stored encrypted; emits card.issued."""
    unit = await session.get(OrgUnit, org_unit_id)
    if unit is None or unit.company_id != company_id:
        raise NotFound(f"org unit {org_unit_id} does not exist in this company")
    for _ in range(_NUMBER_ATTEMPTS):
        pan = tokens.generate_card_number(pan_prefix)
        pan_hash = keyring.lookup_hash(pan, purpose=PAN_PURPOSE)
        taken = await session.scalar(select(Card.id).where(Card.pan_hash == pan_hash))
        if taken is None:
            break
    else:  # pragma: no cover - 10^9 numbers per prefix
        raise Conflict("could not find a free card number")
    card = Card(
        company_id=company_id, org_unit_id=org_unit_id, driver_id=driver_id, vehicle_id=vehicle_id,
        pan_encrypted=keyring.encrypt(pan.encode(), purpose=PAN_PURPOSE), pan_hash=pan_hash,
        pan_first6=pan[:6], pan_last4=pan[-4:], status=CardStatus.ACTIVE,
    )
    session.add(card)
    await session.flush()
    await emit(session, EventType.CARD_ISSUED, company_id=company_id, payload=payloads.card_issued(card),
               now=now or utc_now())
    return IssuedCard(card=card, pan=pan)


async def get_card(session: AsyncSession, card_id: int, *, for_update: bool = False) -> Card:
    statement = select(Card).where(Card.id == card_id)
    if for_update:
        statement = statement.with_for_update()
    card = (await session.execute(statement)).scalar_one_or_none()
    if card is None:
        raise CardNotFound(f"card {card_id} does not exist")
    return card


_STATUS_EVENTS = {CardStatus.ACTIVE: EventType.CARD_UNBLOCKED, CardStatus.BLOCKED: EventType.CARD_BLOCKED,
                  CardStatus.CLOSED: EventType.CARD_CLOSED}


async def set_card_status(
    session: AsyncSession, *, card_id: int, status: CardStatus, reason: str | None = None,
    now: datetime | None = None,
) -> Card:
    """Block, unblock or close. A closed card stays closed; closing revokes its enrollments.

    A change of status emits card.blocked, card.unblocked or card.closed; a new reason for the
    same status (re-blocking a blocked card) changes the card but is no status event."""
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED and status != CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed and cannot change status")
    previous_status = card.status
    card.status = status
    card.status_reason = reason
    if status == CardStatus.CLOSED:
        await revoke_enrollments(session, card_id=card_id)
    await session.flush()
    if previous_status != status:
        await emit(session, _STATUS_EVENTS[CardStatus(status)], company_id=card.company_id,
                   payload=payloads.card_status_changed(card, previous_status=previous_status),
                   now=now or utc_now())
    return card


async def revoke_enrollments(session: AsyncSession, *, card_id: int) -> int:
    result = await session.execute(
        update(DeviceEnrollment)
        .where(DeviceEnrollment.card_id == card_id, DeviceEnrollment.status == EnrollmentStatus.ACTIVE)
        .values(status=EnrollmentStatus.REVOKED, revoked_at=utc_now())
    )
    return result.rowcount


async def enroll_device(
    session: AsyncSession, keyring: Keyring, *, card_id: int, dpan_prefix: str,
    device_label: str | None = None,
) -> Enrollment:
    """Put a card on a phone: one active enrollment per card, so the previous phone is revoked."""
    card = await get_card(session, card_id, for_update=True)
    if card.status != CardStatus.ACTIVE:
        raise CardNotActive(f"card {card_id} is {card.status}; only an active card can be enrolled")
    await revoke_enrollments(session, card_id=card_id)
    device_key = secrets.token_bytes(DEVICE_KEY_LENGTH)
    for _ in range(_NUMBER_ATTEMPTS):
        dpan = tokens.generate_card_number(dpan_prefix)
        dpan_hash = keyring.lookup_hash(dpan, purpose=DPAN_PURPOSE)
        enrollment = DeviceEnrollment(
            card_id=card_id,
            dpan_encrypted=keyring.encrypt(dpan.encode(), purpose=DPAN_PURPOSE),
            dpan_hash=dpan_hash, dpan_last4=dpan[-4:],
            device_key_encrypted=keyring.encrypt(device_key, purpose=DEVICE_KEY_PURPOSE),
            device_label=device_label, last_atc=-1, status=EnrollmentStatus.ACTIVE,
        )
        try:
            async with session.begin_nested():
                session.add(enrollment)
                await session.flush()
        except IntegrityError:  # pragma: no cover - DPAN collision, draw again
            continue
        return Enrollment(enrollment=enrollment, dpan=dpan, device_key=device_key)
    raise Conflict("could not find a free device token number")  # pragma: no cover
