"""The hot path: answer one authorization (pre-authorization hold) in one short transaction.

Order of work, and of row locks: the message slot, the enrollment (its transaction counter),
the limit counters of the card and its units, a one-off limit exception of the card (only when a
limit bound the amount), the company's available account. Every other
writer locks in the same order, so concurrent messages queue instead of deadlocking.
Explicit Core statements only: no ORM lazy loads here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing import tokens
from processing.authorization import idempotency
from processing.authorization.codes import ResponseCode
from processing.authorization.errors import TransactionIdReused
from processing.authorization.fraud_hook import FraudContext, FraudRules, FraudVerdict
from processing.authorization.models import (
    Authorization,
    AuthorizationStatus,
    MessageType,
)
from processing.authorization.schemas import AuthorizationAnswer, AuthorizationRequest
from processing.cards.models import Card, CardStatus, DeviceEnrollment, EnrollmentStatus
from processing.cards.service import (
    DEVICE_KEY_PURPOSE,
    DPAN_PURPOSE,
    masked_card_number,
)
from processing.crypto import Keyring
from processing.ledger.models import Account, EntryKind
from processing.ledger.service import post_entry
from processing.limits import exceptions as limit_exceptions
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import (
    CounterState,
    LimitRule,
    add_to_counters,
    controls_refusal,
    load_rules,
    lock_counters,
    scopes_for_card,
)
from processing.money import format_money, format_volume
from processing.orgs.models import Company, CompanyStatus, OrgUnit, Vehicle
from processing.outbox import payloads
from processing.outbox.catalogue import EventType
from processing.outbox.service import emit
from processing.products import FUELS, TANK_PRODUCTS, VOLUME_PRODUCTS
from processing.settings import Settings
from processing.stations.models import (
    Station,
    StationProduct,
    Terminal,
    TerminalStatus,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TerminalIdentity:
    """The authenticated sender of a terminal message."""

    id: int
    code: str


@dataclass(frozen=True, slots=True)
class Decline:
    decided_by: str  # which check
    response_code: ResponseCode
    decline_reason: str  # machine-readable
    reason: str  # words


class _Declined(Exception):
    def __init__(self, decline: Decline):
        self.decline = decline


def _decline(decided_by: str, code: ResponseCode, decline_reason: str, reason: str) -> _Declined:
    return _Declined(Decline(decided_by, code, decline_reason, reason))


@dataclass(slots=True)
class _Facts:
    """What the checks learned; written into the authorization record whatever the outcome."""

    station_id: int
    company_id: int | None = None
    card_id: int | None = None
    driver_id: int | None = None
    enrollment_id: int | None = None
    org_unit_id: int | None = None
    masked_card: str | None = None
    card_first6: str | None = None
    card_last4: str | None = None
    token_atc: int | None = None
    clock_skew_seconds: int | None = None
    unit_price_minor: int | None = None


async def authorize(
    session: AsyncSession, *, terminal: TerminalIdentity, request: AuthorizationRequest,
    keyring: Keyring, settings: Settings, fraud_rules: FraudRules, now: datetime,
) -> idempotency.StoredAnswer:
    """Decide, hold the money if approved, and store the answer for repeats of the message."""
    digest = idempotency.request_digest(request)
    prior = await idempotency.claim(
        session, terminal_id=terminal.id, transaction_id=request.terminal_transaction_id,
        message_type=MessageType.AUTHORIZE, digest=digest,
    )
    if prior is not None:
        # A voided slot (digest None) answers every late copy with its stored decline.
        if prior.request_digest not in (None, digest):
            raise TransactionIdReused()
        return prior.answer

    station = await _load_station(session, terminal.id, request.product)
    facts = _Facts(station_id=station.station_id)
    try:
        approval = await _decide(session, facts, station, terminal=terminal, request=request,
                                 keyring=keyring, settings=settings, fraud_rules=fraud_rules, now=now)
    except _Declined as declined:
        answer = await _record_decline(session, facts, declined.decline, station, terminal=terminal,
                                       request=request, now=now)
    else:
        answer = await _record_approval(session, facts, approval, station, terminal=terminal, request=request,
                                        settings=settings, now=now)
    logger.info(
        "authorization terminal=%s txn=%s card=%s code=%s reason=%s amount=%s",
        terminal.code, request.terminal_transaction_id, facts.masked_card or "-",
        answer.response_code, answer.decline_reason or "approved", answer.approved_amount_minor,
    )
    return await idempotency.store_answer(
        session, terminal_id=terminal.id, transaction_id=request.terminal_transaction_id,
        message_type=MessageType.AUTHORIZE, answer=answer,
    )


@dataclass(frozen=True, slots=True)
class _StationRow:
    station_id: int
    terminal_status: str
    station_status: str
    network_id: int
    region: str
    price_minor: int | None
    price_currency: str | None
    station_code: str
    station_name: str


async def _load_station(session: AsyncSession, terminal_id: int, product: str) -> _StationRow:
    row = (
        await session.execute(
            select(Terminal.station_id, Terminal.status, Station.status, Station.network_id,
                   Station.region, StationProduct.price_minor, StationProduct.currency,
                   Station.code, Station.name)
            .join(Station, Station.id == Terminal.station_id)
            .outerjoin(StationProduct, (StationProduct.station_id == Station.id)
                       & (StationProduct.product == product))
            .where(Terminal.id == terminal_id)
        )
    ).one()
    return _StationRow(*row)


@dataclass(frozen=True, slots=True)
class _CardRow:
    enrollment_id: int
    enrollment_status: str
    device_key_encrypted: bytes
    card_id: int
    driver_id: int | None
    card_status: str
    pan_first6: str
    pan_last4: str
    company_id: int
    company_status: str
    company_currency: str
    company_timezone: str
    available_account_id: int
    held_account_id: int
    org_unit_id: int
    org_unit_path: str
    tank_capacity_ml: int | None
    vehicle_products: list[str] | None


async def _load_card(session: AsyncSession, dpan_hash: bytes) -> _CardRow | None:
    row = (
        await session.execute(
            select(
                DeviceEnrollment.id, DeviceEnrollment.status, DeviceEnrollment.device_key_encrypted,
                Card.id, Card.driver_id, Card.status, Card.pan_first6, Card.pan_last4,
                Company.id, Company.status, Company.currency, Company.timezone,
                Company.available_account_id, Company.held_account_id,
                Card.org_unit_id, OrgUnit.path, Vehicle.tank_capacity_ml, Vehicle.allowed_products,
            )
            .join(Card, Card.id == DeviceEnrollment.card_id)
            .join(Company, Company.id == Card.company_id)
            .join(OrgUnit, OrgUnit.id == Card.org_unit_id)
            .outerjoin(Vehicle, Vehicle.id == Card.vehicle_id)
            .where(DeviceEnrollment.dpan_hash == dpan_hash)
        )
    ).first()
    return None if row is None else _CardRow(*row)


@dataclass(frozen=True, slots=True)
class _Approval:
    amount_minor: int
    volume_ml: int
    partial: bool
    counters: list[CounterState]
    available_account_id: int
    held_account_id: int
    local_day: date
    fraud_verdict: str
    fraud_reason: str
    limit_exception_id: int | None = None


async def _decide(
    session: AsyncSession, facts: _Facts, station: _StationRow, *, terminal: TerminalIdentity,
    request: AuthorizationRequest, keyring: Keyring, settings: Settings, fraud_rules: FraudRules,
    now: datetime,
) -> _Approval:
    """Run the checks in order; raise _Declined at the first that refuses."""
    if station.terminal_status != TerminalStatus.ACTIVE:
        raise _decline("terminal", ResponseCode.NOT_PERMITTED_AT_TERMINAL, "terminal_blocked",
                       "this terminal is blocked")
    if station.station_status != "active":
        raise _decline("station", ResponseCode.NOT_PERMITTED_AT_TERMINAL, "station_inactive",
                       "this station is not accepting fuel cards")

    token, card = await _check_token(session, facts, request=request, keyring=keyring,
                                     settings=settings, now=now)

    if card.card_status == CardStatus.BLOCKED:
        raise _decline("card", ResponseCode.RESTRICTED_CARD, "card_blocked", "the card is blocked")
    if card.card_status != CardStatus.ACTIVE:
        raise _decline("card", ResponseCode.INVALID_CARD, "card_closed", "the card is closed")
    if card.company_status != CompanyStatus.ACTIVE:
        raise _decline("company", ResponseCode.DO_NOT_HONOUR, "company_inactive",
                       f"the company account is {card.company_status}")

    product = request.product.value
    if request.currency != card.company_currency:
        raise _decline("station", ResponseCode.NOT_PERMITTED, "currency_not_accepted",
                       f"the card pays in {card.company_currency}, not {request.currency}")
    if station.price_minor is None or station.price_currency != card.company_currency:
        raise _decline("station", ResponseCode.NOT_PERMITTED, "product_not_sold",
                       f"this station has no posted {card.company_currency} price for {product}")
    facts.unit_price_minor = station.price_minor
    # The vehicle's fuels restrict fuels only: a car wash or shop goods fit any vehicle.
    if card.vehicle_products and product in FUELS and product not in card.vehicle_products:
        raise _decline("vehicle", ResponseCode.NOT_PERMITTED, "product_not_allowed",
                       f"the vehicle does not run on {product}")

    local_time = now.astimezone(ZoneInfo(card.company_timezone))
    scopes = scopes_for_card(card.card_id, card.org_unit_path)
    limits, controls = await load_rules(session, scopes)
    refusal = controls_refusal(
        controls, product=product, station_id=station.station_id, network_id=station.network_id,
        region=station.region, local_time=local_time,
    )
    if refusal is not None:
        raise _decline("controls", ResponseCode.NOT_PERMITTED, *refusal)

    counters = await lock_counters(session, scopes, local_time.date())
    amount, binding = _fit_to_limits(request, card, station, limits, counters)
    exception_id, limits_alone = None, amount
    if binding is not None and binding.decided_by == "limits" and binding.decline_reason in _LIFTABLE:
        exception_id, amount, binding = await _lift_with_exception(
            session, request, card, station, limits, counters, amount, binding, now=now)

    funds = (
        await session.execute(
            select(Account.balance_minor, Account.credit_limit_minor)
            .where(Account.id == card.available_account_id)
            .with_for_update()
        )
    ).one()
    spendable = funds.balance_minor + funds.credit_limit_minor
    if spendable < amount:
        amount = max(spendable, 0)
        binding = Decline("funds", ResponseCode.INSUFFICIENT_FUNDS, "insufficient_funds",
                          f"not enough money on the company account for {format_money(request.amount_minor, request.currency)}")
    if amount < request.amount_minor and (amount <= 0 or not request.partial_approval_allowed):
        raise _Declined(binding)
    if amount <= limits_alone:
        exception_id = None  # the money bound it below what the limits alone allowed: not needed

    volume = _volume_for(amount, product, station.price_minor)
    card_counters = {
        c.period: {"amount_minor": c.amount_minor, "volume_ml": c.volume_ml, "count": c.count}
        for c in counters if c.scope_kind == ScopeKind.CARD
    }
    # TODO(issue 7, hot-path helper): full context, both paths, state/trace/alerts stored.
    fraud = fraud_rules.check(FraudContext(
        now=now, terminal_id=terminal.id, terminal_transaction_id=request.terminal_transaction_id,
        station_id=station.station_id, network_id=station.network_id, region=station.region,
        station_latitude=0.0, station_longitude=0.0, product=product, entry_mode=request.entry_mode,
        requested_amount_minor=request.amount_minor, company_id=card.company_id, card_id=card.card_id,
        enrollment_id=card.enrollment_id, amount_minor=amount, volume_ml=volume, local_time=local_time,
        clock_skew_seconds=facts.clock_skew_seconds or 0, card_counters=card_counters,
    ))
    if fraud.verdict in (FraudVerdict.DECLINE, FraudVerdict.BLOCK):
        raise _decline("fraud", ResponseCode.SUSPECTED_FRAUD, "suspected_fraud",
                       fraud.reason or "declined by the fraud rules")
    return _Approval(
        amount_minor=amount, volume_ml=volume, partial=amount < request.amount_minor,
        counters=counters, available_account_id=card.available_account_id,
        held_account_id=card.held_account_id, local_day=local_time.date(),
        fraud_verdict=fraud.verdict.value, fraud_reason=fraud.reason, limit_exception_id=exception_id,
    )


_LIFTABLE = frozenset(limit_exceptions.METRIC_OF_DECLINE_REASON)


async def _lift_with_exception(
    session: AsyncSession, request: AuthorizationRequest, card: _CardRow, station: _StationRow,
    limits: list[LimitRule], counters: list[CounterState], amount: int, binding: Decline, *, now: datetime,
) -> tuple[int | None, int, Decline | None]:
    """An amount or volume limit bound the amount: an approved exception of the card may lift it.

    Returns (exception id if it allows more, the amount, the check that binds it now).
    """
    exception = await limit_exceptions.usable_exception(
        session, card_id=card.card_id, driver_id=card.driver_id, org_unit_path=card.org_unit_path,
        metric=limit_exceptions.METRIC_OF_DECLINE_REASON[binding.decline_reason], now=now,
    )
    if exception is None:
        return None, amount, binding
    lifted = limit_exceptions.lifted_limits(limits, exception, org_unit_path=card.org_unit_path)
    lifted_amount, lifted_binding = _fit_to_limits(request, card, station, lifted, counters)
    if lifted_amount <= amount:
        return None, amount, binding  # a limit above the approver (or the tank) still binds
    return exception.id, lifted_amount, lifted_binding


async def _check_token(
    session: AsyncSession, facts: _Facts, *, request: AuthorizationRequest, keyring: Keyring,
    settings: Settings, now: datetime,
) -> tuple[tokens.PaymentToken, _CardRow]:
    """Parse, find the enrollment, verify the cryptogram, the time window and the counter."""
    try:
        token = tokens.decode_qr_payload(request.token)
    except tokens.TokenFormatError as error:
        # Only the error's code: the message may quote parts of the token.
        raise _decline("token", ResponseCode.INVALID_CARD, "invalid_token",
                       f"the payment token is malformed ({error.code})") from None
    terminal_number = bytes.fromhex(request.unpredictable_number) if request.unpredictable_number else None
    if request.entry_mode == "nfc" and (terminal_number is None or token.unpredictable_number != terminal_number):
        raise _decline("token", ResponseCode.SECURITY_VIOLATION, "unpredictable_number_mismatch",
                       "the token does not answer this terminal's unpredictable number")
    if request.entry_mode == "qr" and token.unpredictable_number is not None:
        raise _decline("token", ResponseCode.INVALID_CARD, "invalid_token",
                       "an NFC token was presented as a QR code")

    card = await _load_card(session, keyring.lookup_hash(token.dpan, purpose=DPAN_PURPOSE))
    if card is None:
        raise _decline("token", ResponseCode.INVALID_CARD, "unknown_token",
                       "the token number belongs to no card")
    facts.company_id, facts.card_id, facts.enrollment_id = card.company_id, card.card_id, card.enrollment_id
    facts.driver_id, facts.org_unit_id = card.driver_id, card.org_unit_id
    facts.masked_card = masked_card_number(card.pan_first6, card.pan_last4)
    facts.card_first6, facts.card_last4 = card.pan_first6, card.pan_last4
    if card.enrollment_status != EnrollmentStatus.ACTIVE:
        raise _decline("enrollment", ResponseCode.INVALID_CARD, "enrollment_revoked",
                       "the card was removed from this phone; enroll it again")

    device_key = keyring.decrypt(card.device_key_encrypted, purpose=DEVICE_KEY_PURPOSE)
    if not tokens.verify_cryptogram(device_key, token):
        raise _decline("token", ResponseCode.SECURITY_VIOLATION, "bad_cryptogram",
                       "the token's cryptogram is wrong")

    facts.token_atc = token.atc
    window = tokens.check_window(
        generated_at=token.generated_at, now=int(now.timestamp()),
        validity_seconds=settings.token_validity_seconds,
        allowed_skew_seconds=settings.allowed_clock_skew_seconds,
    )
    facts.clock_skew_seconds = window.offset_seconds
    if not window.ok:
        # The cryptogram is genuine, so a bad time is the phone's clock, not a forgery: say so.
        await _record_skew(session, card.enrollment_id, window.offset_seconds)
        if window.problem == "clock_ahead":
            raise _decline("token", ResponseCode.EXPIRED_TOKEN, "clock_ahead",
                           f"the phone clock is {tokens.describe_offset(window.offset_seconds)} ahead of the host; "
                           "sync the app's time and make a new token")
        age = -window.offset_seconds
        hint = ""
        if age > 2 * (settings.token_validity_seconds + settings.allowed_clock_skew_seconds):
            hint = f"; if the token is fresh, the phone clock is {tokens.describe_offset(age)} behind"
        raise _decline("token", ResponseCode.EXPIRED_TOKEN, "token_expired",
                       f"the token expired: made {tokens.describe_offset(age)} ago, "
                       f"valid for {settings.token_validity_seconds} seconds{hint}")

    consumed = await session.execute(
        update(DeviceEnrollment)
        .where(DeviceEnrollment.id == card.enrollment_id,
               DeviceEnrollment.last_atc < token.atc,
               DeviceEnrollment.status == EnrollmentStatus.ACTIVE)
        .values(last_atc=token.atc, last_clock_skew_seconds=window.offset_seconds)
    )
    if consumed.rowcount != 1:
        raise _decline("token", ResponseCode.SECURITY_VIOLATION, "token_replayed",
                       "this token was already used")
    return token, card


async def _record_skew(session: AsyncSession, enrollment_id: int, skew_seconds: int) -> None:
    await session.execute(
        update(DeviceEnrollment).where(DeviceEnrollment.id == enrollment_id)
        .values(last_clock_skew_seconds=skew_seconds)
    )


def _volume_for(amount_minor: int, product: str, price_minor: int) -> int:
    """Millilitres that ``amount_minor`` buys at the posted price (0 for non-volume products)."""
    if product not in VOLUME_PRODUCTS:
        return 0
    return amount_minor * 1000 // price_minor


def _fit_to_limits(
    request: AuthorizationRequest, card: _CardRow, station: _StationRow, limits: list[LimitRule],
    counters: list[CounterState],
) -> tuple[int, Decline | None]:
    """The most the limits and the tank allow (at most the request), and the check that bound it."""
    product = request.product.value
    price = station.price_minor
    by_key = {(c.scope_kind, c.scope_id, c.period): c for c in counters}
    amount, binding = request.amount_minor, None
    for limit in limits:
        where = "card" if limit.scope_kind == ScopeKind.CARD else f"org unit {limit.scope_id}"
        counter = None if limit.period == LimitPeriod.TRANSACTION else by_key[(limit.scope_kind, limit.scope_id, limit.period)]
        period_words = "per transaction" if counter is None else f"per {limit.period}"
        if limit.metric == LimitMetric.COUNT:
            if counter.count + 1 > limit.max_value:
                raise _decline("limits", ResponseCode.EXCEEDS_FREQUENCY_LIMIT, "frequency_limit_exceeded",
                               f"{where} allows {limit.max_value} purchases {period_words}")
            continue
        if limit.metric == LimitMetric.AMOUNT:
            left = limit.max_value - (counter.amount_minor if counter else 0)
            allowed = left
            words = f"{where} limit {format_money(limit.max_value, request.currency)} {period_words}, {format_money(max(left, 0), request.currency)} left"
            reason = "amount_limit_exceeded"
        else:
            if product not in VOLUME_PRODUCTS:
                continue
            left = limit.max_value - (counter.volume_ml if counter else 0)
            allowed = max(left, 0) * price // 1000
            words = f"{where} limit {format_volume(limit.max_value)} {period_words}, {format_volume(max(left, 0))} left"
            reason = "volume_limit_exceeded"
        if allowed < amount:
            amount, binding = allowed, Decline("limits", ResponseCode.EXCEEDS_AMOUNT_LIMIT, reason, words)
    if product in TANK_PRODUCTS and card.tank_capacity_ml:
        allowed = card.tank_capacity_ml * price // 1000
        if allowed < amount:
            amount, binding = allowed, Decline(
                "vehicle", ResponseCode.EXCEEDS_AMOUNT_LIMIT, "tank_capacity_exceeded",
                f"more than the vehicle's {format_volume(card.tank_capacity_ml)} tank holds")
    return max(amount, 0), binding


async def _insert_authorization(session: AsyncSession, values: dict) -> int:
    return (await session.execute(insert(Authorization).returning(Authorization.id), [values])).scalar_one()


def _event_marks(facts: _Facts, station: _StationRow, authorization_id: int, *, terminal: TerminalIdentity,
                 request: AuthorizationRequest) -> payloads.AuthorizationMarks:
    """The event's markers, from what the checks already loaded (no further reads)."""
    return payloads.AuthorizationMarks(
        company_id=facts.company_id, authorization_id=authorization_id, terminal_code=terminal.code,
        terminal_transaction_id=request.terminal_transaction_id,
        station=payloads.StationMarks(station.station_id, station.station_code, station.station_name,
                                      station.network_id),
        card=payloads.CardMarks(facts.card_id, facts.card_first6, facts.card_last4),
        driver_id=facts.driver_id, org_unit_id=facts.org_unit_id, product=request.product.value,
        currency=request.currency, unit_price_minor=facts.unit_price_minor,
    )


async def _record_decline(
    session: AsyncSession, facts: _Facts, decline: Decline, station: _StationRow, *,
    terminal: TerminalIdentity, request: AuthorizationRequest, now: datetime,
) -> AuthorizationAnswer:
    authorization_id = await _insert_authorization(session, {
        **_common_values(facts, terminal=terminal, request=request, now=now),
        "status": AuthorizationStatus.DECLINED, "approved_amount_minor": 0, "hold_volume_ml": 0,
        "response_code": decline.response_code, "decided_by": decline.decided_by,
        "decline_reason": decline.decline_reason, "reason": decline.reason,
    })
    if facts.company_id is not None:
        # A token tied to no card (or refused before the card was known) concerns no company:
        # it stays in the authorization log and the security console, not in a company's events.
        await emit(session, EventType.AUTHORIZATION_DECLINED, company_id=facts.company_id, now=now,
                   payload=payloads.authorization_declined(
                       _event_marks(facts, station, authorization_id, terminal=terminal, request=request),
                       requested_amount_minor=request.amount_minor, response_code=decline.response_code,
                       decline_reason=decline.decline_reason, reason=decline.reason,
                       decided_by=decline.decided_by, entry_mode=request.entry_mode))
    return AuthorizationAnswer(
        terminal_transaction_id=request.terminal_transaction_id, authorization_id=authorization_id,
        approved=False, response_code=decline.response_code, decline_reason=decline.decline_reason,
        reason=decline.reason, requested_amount_minor=request.amount_minor, approved_amount_minor=0,
        hold_volume_ml=0, currency=request.currency, product=request.product.value,
        unit_price_minor=facts.unit_price_minor, card=facts.masked_card, hold_expires_at=None,
    )


async def _record_approval(
    session: AsyncSession, facts: _Facts, approval: _Approval, station: _StationRow, *,
    terminal: TerminalIdentity, request: AuthorizationRequest, settings: Settings, now: datetime,
) -> AuthorizationAnswer:
    code = ResponseCode.PARTIAL_APPROVAL if approval.partial else ResponseCode.APPROVED
    reason = "approved" if not approval.partial else (
        f"approved for {format_money(approval.amount_minor, request.currency)} of "
        f"{format_money(request.amount_minor, request.currency)}"
    )
    if approval.fraud_verdict == FraudVerdict.REVIEW:
        reason += "; queued for security review"
    hold_expires_at = now + timedelta(seconds=settings.hold_expiry_seconds)
    authorization_id = await _insert_authorization(session, {
        **_common_values(facts, terminal=terminal, request=request, now=now),
        "status": AuthorizationStatus.APPROVED, "approved_amount_minor": approval.amount_minor,
        "hold_volume_ml": approval.volume_ml, "response_code": code, "decided_by": "approved",
        "decline_reason": None, "reason": reason, "fraud_verdict": approval.fraud_verdict,
        "counted_on": approval.local_day, "hold_expires_at": hold_expires_at,
    })
    entry_id = await post_entry(
        session, kind=EntryKind.HOLD, company_id=facts.company_id, authorization_id=authorization_id,
        description=f"hold for terminal {terminal.code} transaction {request.terminal_transaction_id}",
        lines=[(approval.available_account_id, -approval.amount_minor),
               (approval.held_account_id, approval.amount_minor)], now=now,
    )
    await emit(session, EventType.AUTHORIZATION_APPROVED, company_id=facts.company_id, now=now,
               payload=payloads.authorization_approved(
                   _event_marks(facts, station, authorization_id, terminal=terminal, request=request),
                   requested_amount_minor=request.amount_minor, amount_minor=approval.amount_minor,
                   volume_ml=approval.volume_ml, partial=approval.partial, response_code=code,
                   entry_mode=request.entry_mode, hold_expires_at=hold_expires_at,
                   fraud_verdict=approval.fraud_verdict, journal_entry_id=entry_id))
    await add_to_counters(session, approval.counters, amount_minor=approval.amount_minor,
                          volume_ml=approval.volume_ml, count=1)
    if approval.limit_exception_id is not None:
        await limit_exceptions.mark_used(session, exception_id=approval.limit_exception_id,
                                         authorization_id=authorization_id, now=now)
    return AuthorizationAnswer(
        terminal_transaction_id=request.terminal_transaction_id, authorization_id=authorization_id,
        approved=True, response_code=code, decline_reason=None, reason=reason,
        requested_amount_minor=request.amount_minor, approved_amount_minor=approval.amount_minor,
        hold_volume_ml=approval.volume_ml, currency=request.currency, product=request.product.value,
        unit_price_minor=facts.unit_price_minor, card=facts.masked_card, hold_expires_at=hold_expires_at,
    )


def _common_values(facts: _Facts, *, terminal: TerminalIdentity, request: AuthorizationRequest, now: datetime) -> dict:
    return {
        "terminal_id": terminal.id, "terminal_transaction_id": request.terminal_transaction_id,
        "station_id": facts.station_id, "company_id": facts.company_id, "card_id": facts.card_id,
        "driver_id": facts.driver_id, "enrollment_id": facts.enrollment_id,
        "org_unit_id": facts.org_unit_id,
        "entry_mode": request.entry_mode,
        "product": request.product.value, "currency": request.currency,
        "requested_amount_minor": request.amount_minor, "unit_price_minor": facts.unit_price_minor,
        "token_atc": facts.token_atc, "clock_skew_seconds": facts.clock_skew_seconds,
        "created_at": now,
    }
