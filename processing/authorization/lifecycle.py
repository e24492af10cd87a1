"""After the authorization: completion for the fuel dispensed, reversal, expiry, status.

Locks: the authorization row first, then the card (its fraud state), then, last, just before the
commit, limit counters (relative single-row updates, no read) and accounts (the card → counters →
accounts part in the same order as the authorization path, which never locks an authorization
row), each message in one transaction. Closing a hold tells the
fraud rules what was dispensed (``FraudRules.settle``: the litres of a completion, 0 for a
release), so their per-card state counts fuel that really went into the tank.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing.authorization import idempotency
from processing.authorization.codes import ResponseCode
from processing.authorization.engine import TerminalIdentity
from processing.authorization.errors import (
    AlreadyCompleted,
    AmountDoesNotMatchVolume,
    AuthorizationCompleted,
    AuthorizationDeclined,
    AuthorizationNotFound,
    AuthorizationReversed,
    CompletionExceedsHold,
    HoldExpired,
    ProductMismatch,
)
from processing.authorization.fraud_hook import FraudRules
from processing.authorization.models import (
    Authorization,
    AuthorizationStatus,
    Completion,
    MessageType,
    Reversal,
    ReversalSource,
    TerminalMessage,
)
from processing.authorization.schemas import (
    AuthorizationAnswer,
    CompletionAnswer,
    CompletionRequest,
    ReversalAnswer,
    ReversalRequest,
    TransactionStatus,
)
from processing.cards.models import Card
from processing.db import fastpath
from processing.ledger.models import EntryKind
from processing.ledger.service import move_balances, post_entry
from processing.limits.service import adjust_counters, lock_counters, scopes_for_card
from processing.money import format_money, format_volume
from processing.orgs.models import Company, OrgUnit
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit
from processing.products import VOLUME_PRODUCTS
from processing.settings import Settings
from processing.stations.models import Station, StationNetwork, Terminal

logger = logging.getLogger(__name__)


# Closing a hold runs on every sale: its statements are built once, on the tables (no ORM
# objects, no statement construction per message).
_authorizations, _cards, _companies, _units = (Authorization.__table__, Card.__table__, Company.__table__,
                                               OrgUnit.__table__)
_stations, _networks, _terminals = Station.__table__, StationNetwork.__table__, Terminal.__table__
_LOCK_AUTHORIZATION = (
    select(_authorizations)
    .where(_authorizations.c.terminal_id == bindparam("terminal_id"),
           _authorizations.c.terminal_transaction_id == bindparam("transaction_id"))
    .with_for_update()
)
_CLOSE_AUTHORIZATION = (
    update(_authorizations).where(_authorizations.c.id == bindparam("authorization_id"))
    .values(status=bindparam("status"), closed_at=bindparam("closed_at"))
)
_CAPTURE_AUTHORIZATION = _CLOSE_AUTHORIZATION.values(
    captured_amount_minor=bindparam("captured_amount_minor"), captured_volume_ml=bindparam("captured_volume_ml"))
_INSERT_COMPLETION = insert(Completion.__table__)
_INSERT_REVERSAL = insert(Reversal.__table__)
_STORE_CARD_STATE = update(_cards).where(_cards.c.id == bindparam("card_id")).values(fraud_state=bindparam("state"))


async def _locked_authorization(session: AsyncSession, terminal_id: int, transaction_id: str):
    """The authorization's row (attributes as the model's), locked; None if there is none."""
    return (await fastpath.execute(session, _LOCK_AUTHORIZATION, {
        "terminal_id": terminal_id, "transaction_id": transaction_id})).first()


async def complete(
    session: AsyncSession, *, terminal: TerminalIdentity, transaction_id: str,
    request: CompletionRequest, settings: Settings, fraud_rules: FraudRules, now: datetime,
) -> idempotency.StoredAnswer:
    """Capture what was dispensed (never more than the hold) and release the rest."""
    digest = idempotency.request_digest(transaction_id, request)
    prior = await idempotency.claim(
        session, terminal_id=terminal.id, transaction_id=transaction_id,
        message_type=MessageType.COMPLETE, digest=digest,
    )
    if prior is not None:
        if prior.request_digest != digest:
            raise AlreadyCompleted()
        return prior.answer

    authorization = await _locked_authorization(session, terminal.id, transaction_id)
    if authorization is None:
        raise AuthorizationNotFound()
    _ensure_open(authorization, now)
    if request.product != authorization.product:
        raise ProductMismatch(
            f"the hold is for {authorization.product}, the completion is for {request.product.value}"
        )
    hold = authorization.approved_amount_minor
    if request.amount_minor > hold:
        raise CompletionExceedsHold(
            f"completion of {format_money(request.amount_minor, authorization.currency)} is above "
            f"the hold of {format_money(hold, authorization.currency)}"
        )
    _check_amount_against_volume(authorization, request, settings)

    context = await _hold_context(session, authorization)
    await _store_card_fraud_state(session, authorization.card_id, context.card_fraud_state, fraud_rules.settle(
        context.card_fraud_state, terminal_id=authorization.terminal_id,
        terminal_transaction_id=authorization.terminal_transaction_id, volume_ml=request.volume_ml))
    lines = [(context.held_account_id, -hold), (context.available_account_id, hold - request.amount_minor),
             (context.payable_account_id, request.amount_minor)]
    entry_id = await post_entry(
        session, kind=EntryKind.CAPTURE, company_id=context.company_id, authorization_id=authorization.id,
        description=f"sale at terminal {terminal.code} transaction {transaction_id}", lines=lines, now=now,
        move_balances_now=False,  # last, below
    )
    await emit(session, EventType.AUTHORIZATION_COMPLETED, company_id=context.company_id, now=now,
               payload=payloads.authorization_completed(
                   context.marks, amount_minor=request.amount_minor, volume_ml=request.volume_ml,
                   hold_amount_minor=hold, response_code=ResponseCode.APPROVED, journal_entry_id=entry_id))
    await session.execute(_INSERT_COMPLETION, {
        "authorization_id": authorization.id, "amount_minor": request.amount_minor,
        "volume_ml": request.volume_ml, "product": request.product.value,
        "unit_price_minor": authorization.unit_price_minor or 0, "created_at": now,
    })
    await fastpath.execute(session, _CAPTURE_AUTHORIZATION, {
        "authorization_id": authorization.id, "status": AuthorizationStatus.COMPLETED.value, "closed_at": now,
        "captured_amount_minor": request.amount_minor, "captured_volume_ml": request.volume_ml,
    })
    logger.info("completion terminal=%s txn=%s authorization=%s amount=%s volume_ml=%s",
                terminal.code, transaction_id, authorization.id, request.amount_minor, request.volume_ml)
    stored = await idempotency.store_answer(
        session, terminal_id=terminal.id, transaction_id=transaction_id,
        message_type=MessageType.COMPLETE,
        answer=CompletionAnswer(
            terminal_transaction_id=transaction_id, authorization_id=authorization.id,
            status=AuthorizationStatus.COMPLETED, response_code=ResponseCode.APPROVED,
            captured_amount_minor=request.amount_minor, captured_volume_ml=request.volume_ml,
            released_amount_minor=hold - request.amount_minor, currency=authorization.currency,
            product=authorization.product,
        ),
    )
    # Last, the rows every sale of the company (and of the network) writes.
    await adjust_counters(session, context.scopes, counted_on=authorization.counted_on,
                          amount_minor=request.amount_minor - hold,
                          volume_ml=request.volume_ml - authorization.hold_volume_ml, count=0)
    await move_balances(session, lines)
    return stored


def _ensure_open(authorization: Authorization, now: datetime) -> None:
    status = authorization.status
    if status == AuthorizationStatus.DECLINED:
        raise AuthorizationDeclined()
    if status == AuthorizationStatus.REVERSED:
        raise AuthorizationReversed()
    if status == AuthorizationStatus.EXPIRED or (
        status == AuthorizationStatus.APPROVED and authorization.hold_expires_at <= now
    ):
        raise HoldExpired()
    if status == AuthorizationStatus.COMPLETED:
        raise AlreadyCompleted()


def _check_amount_against_volume(
    authorization: Authorization, request: CompletionRequest, settings: Settings
) -> None:
    """The pump's amount must be its litres at the posted price, give or take rounding."""
    if request.product not in VOLUME_PRODUCTS:
        if request.volume_ml != 0:
            raise AmountDoesNotMatchVolume(f"{request.product.value} is not sold by volume; send volume_ml 0")
        return
    expected = request.volume_ml * authorization.unit_price_minor // 1000
    tolerance = max(settings.completion_price_tolerance_minor,
                    int(expected * settings.completion_price_tolerance_percent / 100))
    if abs(request.amount_minor - expected) > tolerance:
        currency = authorization.currency
        raise AmountDoesNotMatchVolume(
            f"{format_volume(request.volume_ml)} at {format_money(authorization.unit_price_minor, currency)}/l "
            f"is {format_money(expected, currency)}, not {format_money(request.amount_minor, currency)}"
        )


@dataclass(frozen=True, slots=True)
class _HoldContext:
    """What closing a hold needs: the accounts, the limit scopes, and the event's markers."""

    company_id: int
    company_timezone: str
    available_account_id: int
    held_account_id: int
    scopes: list
    payable_account_id: int
    marks: payloads.AuthorizationMarks
    card_fraud_state: dict | None


_HOLD_CONTEXT = (
    select(_companies.c.id, _companies.c.timezone, _companies.c.available_account_id, _companies.c.held_account_id, _units.c.path,
           _networks.c.payable_account_id, _cards.c.pan_first6, _cards.c.pan_last4, _stations.c.code,
           _stations.c.name, _stations.c.network_id, _terminals.c.code, _cards.c.fraud_state)
    .select_from(_cards)
    .join(_companies, _companies.c.id == _cards.c.company_id)
    .join(_units, _units.c.id == _cards.c.org_unit_id)
    .join(_stations, _stations.c.id == bindparam("station_id"))
    .join(_networks, _networks.c.id == _stations.c.network_id)
    .join(_terminals, _terminals.c.id == bindparam("terminal_id"))
    .where(_cards.c.id == bindparam("card_id"))
    .with_for_update(of=_cards, key_share=True)
)


async def _hold_context(session: AsyncSession, authorization) -> _HoldContext:
    """Locks the card row (before the counters, as the authorization path does)."""
    row = (await fastpath.execute(session, _HOLD_CONTEXT, {
        "station_id": authorization.station_id, "terminal_id": authorization.terminal_id,
        "card_id": authorization.card_id})).one()
    (company_id, company_timezone, available_account_id, held_account_id, unit_path, payable_account_id, first6, last4,
     station_code, station_name, network_id, terminal_code, card_fraud_state) = row
    marks = payloads.AuthorizationMarks(
        company_id=company_id, authorization_id=authorization.id, terminal_code=terminal_code,
        terminal_transaction_id=authorization.terminal_transaction_id,
        station=payloads.StationMarks(authorization.station_id, station_code, station_name, network_id),
        card=payloads.CardMarks(authorization.card_id, first6, last4), driver_id=authorization.driver_id,
        org_unit_id=authorization.org_unit_id, product=authorization.product, currency=authorization.currency,
        unit_price_minor=authorization.unit_price_minor,
    )
    return _HoldContext(company_id=company_id, company_timezone=company_timezone, available_account_id=available_account_id,
                        held_account_id=held_account_id, scopes=scopes_for_card(authorization.card_id, unit_path),
                        payable_account_id=payable_account_id, marks=marks, card_fraud_state=card_fraud_state)


async def _store_card_fraud_state(session: AsyncSession, card_id: int, before: Mapping | None,
                                  after: Mapping | None) -> None:
    """One UPDATE of the card's fraud state when ``settle`` changed it (the row is locked)."""
    if after is not None and after != before:
        await fastpath.execute(session, _STORE_CARD_STATE, {
            "card_id": card_id, "state": after if isinstance(after, dict) else dict(after)})


async def _release(
    session: AsyncSession, authorization, *, source: ReversalSource, reason: str,
    now: datetime, context: _HoldContext,
) -> None:
    """Give the whole hold back to the company and take it off the limit counters."""
    lines = [(context.held_account_id, -authorization.approved_amount_minor),
             (context.available_account_id, authorization.approved_amount_minor)]
    entry_id = await post_entry(
        session, kind=EntryKind.RELEASE, company_id=context.company_id, authorization_id=authorization.id,
        description=f"{source} release: {reason}", lines=lines, now=now, move_balances_now=False,
    )
    await emit(
        session, EventType.AUTHORIZATION_REVERSED if source == ReversalSource.TERMINAL else EventType.HOLD_EXPIRED,
        company_id=context.company_id, now=now,
        payload=payloads.hold_released(
            context.marks, source=str(source), amount_minor=authorization.approved_amount_minor,
            volume_ml=authorization.hold_volume_ml, reason=reason, journal_entry_id=entry_id),
    )
    await session.execute(_INSERT_REVERSAL, {
        "authorization_id": authorization.id, "source": str(source), "reason": reason,
        "released_amount_minor": authorization.approved_amount_minor, "created_at": now,
    })
    status = AuthorizationStatus.REVERSED if source == ReversalSource.TERMINAL else AuthorizationStatus.EXPIRED
    await fastpath.execute(session, _CLOSE_AUTHORIZATION, {
        "authorization_id": authorization.id, "status": status.value, "closed_at": now})
    # The shared rows last: the company's (and its units') counters, then its accounts.
    await adjust_counters(session, context.scopes, counted_on=authorization.counted_on,
                          amount_minor=-authorization.approved_amount_minor,
                          volume_ml=-authorization.hold_volume_ml, count=-1)
    await move_balances(session, lines)


def voided_authorization_answer(transaction_id: str) -> AuthorizationAnswer:
    """What a late authorization gets after the terminal already reversed its transaction id."""
    return AuthorizationAnswer(
        terminal_transaction_id=transaction_id, authorization_id=None, approved=False,
        response_code=ResponseCode.INVALID_TRANSACTION, decline_reason="reversed_before_authorization",
        reason="the terminal reversed this transaction before its authorization arrived",
        requested_amount_minor=None, approved_amount_minor=0, hold_volume_ml=0, currency=None,
        product=None, unit_price_minor=None, card=None, hold_expires_at=None,
    )


async def reverse(
    session: AsyncSession, *, terminal: TerminalIdentity, transaction_id: str,
    request: ReversalRequest, fraud_rules: FraudRules, now: datetime,
) -> idempotency.StoredAnswer:
    """Release an open hold. Safe to repeat, and safe to send before the authorization arrives:
    the transaction id is then voided, and the late authorization is declined."""
    prior = await idempotency.claim(
        session, terminal_id=terminal.id, transaction_id=transaction_id,
        message_type=MessageType.REVERSE, digest=idempotency.request_digest(transaction_id, request),
    )
    if prior is not None:
        return prior.answer  # a reversal is a reversal, whatever reason a repeat gives
    # Claiming the authorization slot waits for an authorization of this id still in flight.
    voided = await idempotency.claim(
        session, terminal_id=terminal.id, transaction_id=transaction_id,
        message_type=MessageType.AUTHORIZE, digest=None,
        placeholder=idempotency.StoredAnswer(200, idempotency.serialize(voided_authorization_answer(transaction_id))),
    )
    authorization = None if voided is None else await _locked_authorization(session, terminal.id, transaction_id)
    released = 0
    if authorization is None:
        status, words = "voided", "no authorization with this id arrived; a late one will be declined"
    elif authorization.status == AuthorizationStatus.COMPLETED:
        raise AuthorizationCompleted()
    elif authorization.status == AuthorizationStatus.APPROVED:
        released = authorization.approved_amount_minor
        context = await _hold_context(session, authorization)
        await _store_card_fraud_state(session, authorization.card_id, context.card_fraud_state, fraud_rules.settle(
            context.card_fraud_state, terminal_id=authorization.terminal_id,
            terminal_transaction_id=authorization.terminal_transaction_id, volume_ml=0))
        await _release(session, authorization, source=ReversalSource.TERMINAL, reason=request.reason,
                       now=now, context=context)
        status, words = AuthorizationStatus.REVERSED.value, f"released {format_money(released, authorization.currency)}"
    else:
        status = authorization.status
        words = {"declined": "the authorization was declined; nothing was held",
                 "reversed": "already reversed", "expired": "the hold had already expired and was released"}[status]
    logger.info("reversal terminal=%s txn=%s status=%s released=%s", terminal.code, transaction_id, status, released)
    return await idempotency.store_answer(
        session, terminal_id=terminal.id, transaction_id=transaction_id,
        message_type=MessageType.REVERSE,
        answer=ReversalAnswer(
            terminal_transaction_id=transaction_id,
            authorization_id=authorization.id if authorization else None, status=status,
            response_code=ResponseCode.APPROVED, released_amount_minor=released, reason=words,
        ),
    )


async def expire_stale_holds(session: AsyncSession, *, now: datetime, fraud_rules: FraudRules,
                             batch_size: int = 200) -> int:
    """Release holds whose completion never came. Safe to run in several processes at once."""
    stale = (
        await session.execute(
            select(Authorization)
            .where(Authorization.status == AuthorizationStatus.APPROVED,
                   Authorization.hold_expires_at <= now)
            .order_by(Authorization.hold_expires_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).scalars().all()
    # The batch's cards before any counter (card → counters, as an authorization), all in one
    # statement in id order: two sweepers whose batches share cards then queue instead of each
    # holding one card and waiting for the other's.
    card_states: dict[int, Mapping | None] = dict((await session.execute(
        select(Card.id, Card.fraud_state).where(Card.id.in_(sorted({a.card_id for a in stale})))
        .order_by(Card.id).with_for_update(key_share=True)
    )).all()) if stale else {}
    loaded_states = dict(card_states)
    # One batch touches several cards: lock all of a company's counters first, in the one
    # sorted order, as an authorization does. Locking them card by card would hold the shared
    # unit counters while waiting for a card's, the reverse of an authorization: a deadlock.
    by_company: dict[int, list[tuple[Authorization, _HoldContext]]] = {}
    for authorization in stale:
        context = await _hold_context(session, authorization)
        by_company.setdefault(context.company_id, []).append((authorization, context))
        settled = fraud_rules.settle(
            card_states[authorization.card_id], terminal_id=authorization.terminal_id,
            terminal_transaction_id=authorization.terminal_transaction_id, volume_ml=0)
        if settled is not None:
            card_states[authorization.card_id] = settled
    for card_id in sorted(card_states):
        await _store_card_fraud_state(session, card_id, loaded_states[card_id], card_states[card_id])
    for company_id in sorted(by_company):
        holds = by_company[company_id]
        timezone = holds[0][1].company_timezone
        all_scopes = sorted({scope for _, context in holds for scope in context.scopes})
        await lock_counters(session, all_scopes, now.astimezone(ZoneInfo(timezone)).date())
        for authorization, context in holds:
            await _release(session, authorization, source=ReversalSource.EXPIRY,
                           reason="no completion before the hold expired", now=now, context=context)
    if stale:
        logger.info("expired %d stale holds", len(stale))
    return len(stale)


async def transaction_status(
    session: AsyncSession, *, terminal: TerminalIdentity, transaction_id: str
) -> TransactionStatus:
    """Where a terminal's transaction stands: lets a terminal that lost an answer find it."""
    authorization = (
        await session.execute(
            select(Authorization).where(Authorization.terminal_id == terminal.id,
                                        Authorization.terminal_transaction_id == transaction_id)
        )
    ).scalar_one_or_none()
    if authorization is None:
        voided = await session.scalar(
            select(TerminalMessage.id).where(
                TerminalMessage.terminal_id == terminal.id,
                TerminalMessage.terminal_transaction_id == transaction_id,
                TerminalMessage.message_type == MessageType.AUTHORIZE,
                TerminalMessage.request_digest.is_(None),
            )
        )
        if voided is not None:
            raise AuthorizationNotFound(
                "No authorization: the terminal reversed this id before one arrived, so none will be held."
            )
        raise AuthorizationNotFound()
    return TransactionStatus(
        terminal_transaction_id=transaction_id, authorization_id=authorization.id,
        status=authorization.status, response_code=authorization.response_code,
        decline_reason=authorization.decline_reason, reason=authorization.reason,
        product=authorization.product, currency=authorization.currency,
        requested_amount_minor=authorization.requested_amount_minor,
        approved_amount_minor=authorization.approved_amount_minor,
        captured_amount_minor=authorization.captured_amount_minor,
        captured_volume_ml=authorization.captured_volume_ml, created_at=authorization.created_at,
        hold_expires_at=authorization.hold_expires_at, closed_at=authorization.closed_at,
    )
