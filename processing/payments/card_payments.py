"""Top-ups by bank card: a payment at the gateway, followed through its phases by callbacks.

The phases form a small state machine::

    created -> authorized -> captured -> refunded
        \\            \\
         +-> failed <--+

(``captured`` may also come straight from ``created``: the money is what counts.) A callback
that would move the payment along an edge of this graph is applied; any other callback (a
repetition, a phase that arrives after a later one, anything after ``failed`` or ``refunded``)
changes nothing and is answered 200, so the gateway stops re-sending it.

Crediting happens exactly once because the move to ``captured`` is one conditional UPDATE
(``... WHERE status IN ('created', 'authorized')``) in the same transaction as the ledger
entry: of 20 concurrent callbacks one changes the row and credits; on PostgreSQL the others wait
for its row lock, see ``captured`` and change nothing; on SQLite they queue on the write lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.ledger.models import EntryKind
from processing.ledger.service import funding_account_id, post_entry, top_up
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit
from processing.payments.companies import get_company
from processing.payments.errors import (
    CallbackMismatch,
    CardPaymentNotFound,
    InvalidTopUp,
    UnknownGatewayPayment,
)
from processing.payments.gateway import GatewayCallback
from processing.payments.models import CardPayment, CardPaymentStatus

logger = logging.getLogger(__name__)

MAX_CARD_TOP_UP_MINOR = 100_000_000  # 1,000,000.00 per card payment
S = CardPaymentStatus
# target status -> the statuses it may come from
TRANSITIONS: dict[str, frozenset[str]] = {
    S.AUTHORIZED: frozenset({S.CREATED}),
    S.CAPTURED: frozenset({S.CREATED, S.AUTHORIZED}),
    S.FAILED: frozenset({S.CREATED, S.AUTHORIZED}),
    S.REFUNDED: frozenset({S.CAPTURED}),
}


def order_id(card_payment_id: int) -> str:
    """Our reference for the payment at the gateway (idempotent creation)."""
    return f"cp-{card_payment_id}"


async def start_card_payment(
    session: AsyncSession, *, company_id: int, amount_minor: int, return_url: str, now: datetime,
    user_id: int | None,
) -> CardPayment:
    """Record a new card payment in ``created``; the gateway is asked next, outside this transaction."""
    if not 100 <= amount_minor <= MAX_CARD_TOP_UP_MINOR:
        raise InvalidTopUp(f"a card top-up is between 1.00 and {MAX_CARD_TOP_UP_MINOR // 100:,}.00")
    company = await get_company(session, company_id, must_be_active=True)
    payment = CardPayment(company_id=company_id, amount_minor=amount_minor, currency=company.currency,
                          status=S.CREATED, return_url=return_url, created_by_user_id=user_id,
                          created_at=now, updated_at=now)
    session.add(payment)
    await session.flush()
    return payment


async def attach_gateway_payment(session: AsyncSession, *, card_payment_id: int, gateway_payment_id: str,
                                 redirect_url: str, now: datetime) -> CardPayment:
    payment = await session.get(CardPayment, card_payment_id, with_for_update=True)
    payment.gateway_payment_id, payment.redirect_url, payment.updated_at = gateway_payment_id, redirect_url, now
    await session.flush()
    return payment


async def fail_creation(session: AsyncSession, *, card_payment_id: int, reason: str, now: datetime) -> None:
    """The gateway never took the payment: it ends in ``failed`` without a gateway id."""
    await session.execute(
        update(CardPayment).where(CardPayment.id == card_payment_id, CardPayment.status == S.CREATED)
        .values(status=S.FAILED, failure_reason=reason[:300], updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def get_card_payment(session: AsyncSession, card_payment_id: int) -> CardPayment:
    payment = await session.get(CardPayment, card_payment_id)
    if payment is None:
        raise CardPaymentNotFound(f"card payment {card_payment_id} does not exist")
    return payment


@dataclass(frozen=True)
class CallbackOutcome:
    result: str  # "applied" | "ignored"
    card_payment_id: int
    status: str  # the payment's status after this callback
    credited_entry_id: int | None


async def apply_gateway_callback(session: AsyncSession, *, callback: GatewayCallback,
                                 now: datetime) -> CallbackOutcome:
    """Move the payment to the callback's phase if the state machine allows it; credit on the
    first capture and debit back on a refund. Anything else is a no-op."""
    payment = (await session.execute(
        select(CardPayment).where(CardPayment.gateway_payment_id == callback.payment_id)
    )).scalar_one_or_none()
    if payment is None:
        raise UnknownGatewayPayment(f"no card payment has gateway id {callback.payment_id}")
    if (callback.amount_minor, callback.currency) != (payment.amount_minor, payment.currency):
        logger.warning("gateway callback %s for payment %s names %s %s, the payment is %s %s",
                       callback.event_id, payment.id, callback.amount_minor, callback.currency,
                       payment.amount_minor, payment.currency)
        raise CallbackMismatch(f"the callback is for {callback.amount_minor} {callback.currency}, the "
                               f"payment is {payment.amount_minor} {payment.currency}; nothing changed")
    sources = TRANSITIONS.get(callback.status, frozenset())
    moved = (await session.execute(
        update(CardPayment)
        .where(CardPayment.id == payment.id, CardPayment.status.in_(sources))
        .values(status=callback.status, updated_at=now)
        .execution_options(synchronize_session=False)
    )).rowcount == 1
    if not moved:
        current = (await session.execute(select(CardPayment.status, CardPayment.credited_entry_id)
                                         .where(CardPayment.id == payment.id))).one()
        if current.status == S.FAILED and callback.status == S.CAPTURED:
            logger.error("gateway captured payment %s after it failed: needs a person", payment.id)
        return CallbackOutcome("ignored", payment.id, current.status, current.credited_entry_id)
    entry_id = None
    if callback.status == S.CAPTURED:
        entry_id = await top_up(session, company_id=payment.company_id, amount_minor=payment.amount_minor,
                                description=f"card top-up, gateway payment {callback.payment_id}",
                                reference=f"gateway payment {callback.payment_id}"[:200], now=now)
        await session.execute(update(CardPayment).where(CardPayment.id == payment.id)
                              .values(credited_entry_id=entry_id)
                              .execution_options(synchronize_session=False))
    elif callback.status == S.REFUNDED:
        refund_id = await _debit_back(session, payment, now=now)
        await session.execute(update(CardPayment).where(CardPayment.id == payment.id)
                              .values(refund_entry_id=refund_id)
                              .execution_options(synchronize_session=False))
        entry_id = payment.credited_entry_id
    elif callback.status == S.FAILED:
        await session.execute(update(CardPayment).where(CardPayment.id == payment.id)
                              .values(failure_reason="declined at the gateway")
                              .execution_options(synchronize_session=False))
    return CallbackOutcome("applied", payment.id, callback.status, entry_id or payment.credited_entry_id)


async def _debit_back(session: AsyncSession, payment: CardPayment, *, now: datetime) -> int:
    """The reverse of the top-up. The gateway has already returned the money to the card, so this
    is a fact to record, not a request to refuse: the balance may go below zero (and below the
    credit limit), after which authorizations decline until the company tops up again."""
    company = await get_company(session, payment.company_id)
    funding_id = await funding_account_id(session, payment.currency)
    description = f"card top-up refunded, gateway payment {payment.gateway_payment_id}"
    entry_id = await post_entry(
        session, kind=EntryKind.TOP_UP_REFUND, company_id=payment.company_id, description=description,
        lines=[(company.available_account_id, -payment.amount_minor), (funding_id, payment.amount_minor)],
        now=now,
    )
    await emit(session, EventType.TOP_UP_REFUNDED, company_id=payment.company_id, now=now,
               payload=payloads.top_up_refunded(
                   company_id=payment.company_id, amount_minor=payment.amount_minor, currency=payment.currency,
                   journal_entry_id=entry_id, description=description,
                   reference=f"gateway payment {payment.gateway_payment_id}"[:200]))
    return entry_id
