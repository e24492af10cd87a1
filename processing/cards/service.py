"""Issuing cards, changing their status and putting them on phones."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from processing import tokens
from processing.cards.models import Card, CardStatus, DeviceEnrollment, EnrollmentStatus
from processing.crypto import Keyring
from processing.db.base import utc_now
from processing.errors import Conflict, NotFound
from processing.orgs.models import OrgUnit

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


def masked_card_number(first6: str, last4: str) -> str:
    """How a card number is shown anywhere: "7005 12•• •••• 1234" (16-digit PANs)."""
    return f"{first6[:4]} {first6[4:6]}•• •••• {last4}"


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
    pan_prefix: str, driver_id: int | None = None, vehicle_id: int | None = None,
) -> IssuedCard:
    """A new active virtual card with a fresh Luhn-valid PAN, stored encrypted."""
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
    return IssuedCard(card=card, pan=pan)


async def get_card(session: AsyncSession, card_id: int, *, for_update: bool = False) -> Card:
    statement = select(Card).where(Card.id == card_id)
    if for_update:
        statement = statement.with_for_update()
    card = (await session.execute(statement)).scalar_one_or_none()
    if card is None:
        raise CardNotFound(f"card {card_id} does not exist")
    return card


async def set_card_status(
    session: AsyncSession, *, card_id: int, status: CardStatus, reason: str | None = None
) -> Card:
    """Block, unblock or close. A closed card stays closed; closing revokes its enrollments."""
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED and status != CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed and cannot change status")
    card.status = status
    card.status_reason = reason
    if status == CardStatus.CLOSED:
        await revoke_enrollments(session, card_id=card_id)
    await session.flush()
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
