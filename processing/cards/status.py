"""An admin's card status changes: block, unblock, close. Each takes effect on the next
authorization (a blocked card is declined with 62, a closed one with 14).

Blocking keeps the card on its phone, so unblocking lets the same phone pay again; closing is
final and revokes every phone enrollment.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from processing.cards.models import Card, CardStatus
from processing.cards.service import CardClosed, get_card, set_card_status
from processing.errors import Conflict


class CardNotBlocked(Conflict):
    code = "card_not_blocked"


async def block_card(session: AsyncSession, *, card_id: int, reason: str, now: datetime | None = None) -> Card:
    """Block an active card (or change the reason of a blocked one)."""
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed; a closed card cannot be blocked")
    return await set_card_status(session, card_id=card_id, status=CardStatus.BLOCKED, reason=reason, now=now)


async def unblock_card(session: AsyncSession, *, card_id: int, now: datetime | None = None) -> Card:
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is closed; a closed card cannot be unblocked")
    if card.status != CardStatus.BLOCKED:
        raise CardNotBlocked(f"card {card_id} is {card.status}, not blocked")
    return await set_card_status(session, card_id=card_id, status=CardStatus.ACTIVE, reason=None, now=now)


async def close_card(session: AsyncSession, *, card_id: int, reason: str, now: datetime | None = None) -> Card:
    """Close for good: the card never pays again and leaves every phone."""
    card = await get_card(session, card_id, for_update=True)
    if card.status == CardStatus.CLOSED:
        raise CardClosed(f"card {card_id} is already closed")
    return await set_card_status(session, card_id=card_id, status=CardStatus.CLOSED, reason=reason, now=now)
