"""The hot path: answer one authorization (pre-authorization hold) in one short transaction.

Order of work, and of row locks: the message slot, the terminal (its fraud state, read with the
station), the card (its fraud state, read with the enrollment, company, vehicle and, unlocked,
the company's available balance), the enrollment (its transaction counter), the limit counters
the decision checks (the card's, and those of scopes with a period limit), a one-off limit
exception of the card (only when a limit bound the amount); then, last, just before the commit,
the rows other cards share: counters of units without a period limit (added to, never read) and
the company's accounts (the available balance debited by one guarded statement, the held one
credited). Every other writer locks in the same order, so concurrent messages queue instead of
deadlocking (docs: the lock order table in docs/fraud.md), and a company whose cards all pay at
once holds its shared rows only for the commit (docs/loadtests.md: hot accounts).
Statements are built once on the tables, not per message and not through the ORM (blocking a
card by a fraud rule, rare, goes through the card status service).

The fraud rules (``FraudRules``, plugged in from the ``fraud`` package) run once per decision,
approved or declined, over what the checks already loaded; their next card and terminal state,
their trace and their alerts are written in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from processing import tokens
from processing.audit.service import AuditActor, record, snapshot
from processing.authorization import idempotency
from processing.authorization.codes import ResponseCode
from processing.authorization.errors import TransactionIdReused
from processing.authorization.fraud_hook import FraudContext, FraudDecision, FraudRules, FraudVerdict
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
    get_card,
    masked_card_number,
)
from processing.cards.status import block_card
from processing.crypto import Keyring
from processing.db import fastpath
from processing.ledger.models import Account, EntryKind
from processing.ledger.service import move_balances, post_entry
from processing.limits import exceptions as limit_exceptions
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import (
    CounterState,
    LimitRule,
    add_to_counters,
    checked_scopes,
    controls_refusal,
    count_unchecked,
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
from processing.risk.models import AlertSource, AlertStatus, CompanyFraudProfile, FraudAlert
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
    def __init__(self, decline: Decline, fraud: FraudDecision | None = None):
        self.decline = decline
        # Set when the fraud rules themselves declined: their decision is stored as it is,
        # the rules do not run a second time on the decline path.
        self.fraud = fraud


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
    card: _CardRow | None = None  # the card's row, once the token named a known card
    local_time: datetime | None = None  # in the company's time zone, once the card is known


async def authorize(
    session: AsyncSession, *, terminal: TerminalIdentity, request: AuthorizationRequest,
    keyring: Keyring, settings: Settings, fraud_rules: FraudRules, now: datetime,
    lock_funds_first: bool = False,
) -> idempotency.StoredAnswer:
    """Decide, hold the money if approved, and store the answer for repeats of the message.

    The company's accounts and shared unit counters are written last, just before the commit
    (hot accounts: a large fleet's many cards at once). The funds check is then one guarded
    statement; if the balance moved since the decision read it, ``FundsMoved`` is raised and the
    caller decides again in a new transaction, the last time with ``lock_funds_first`` (the
    account row locked before the decision, as a fallback that cannot miss).
    """
    digest = idempotency.request_digest(request)
    prior = await idempotency.claim(
        session, terminal_id=terminal.id, transaction_id=request.terminal_transaction_id,
        message_type=MessageType.AUTHORIZE, digest=digest,
    )
    if prior is not None:
        # A voided slot (digest None) answers every late copy with its stored decline; a repeat
        # never reaches the rules, so their state counts each terminal message once.
        if prior.request_digest not in (None, digest):
            raise TransactionIdReused()
        return prior.answer

    # Before the first row lock: a stale rule set is reloaded without holding the terminal.
    await fraud_rules.prepare(session)
    station = await _load_station(session, terminal.id, request.product)
    facts = _Facts(station_id=station.station_id)
    approval = None
    try:
        approval = await _decide(session, facts, station, terminal=terminal, request=request, keyring=keyring,
                                 settings=settings, fraud_rules=fraud_rules, now=now,
                                 lock_funds_first=lock_funds_first)
    except _Declined as declined:
        answer, fraud = await _record_decline(
            session, facts, declined.decline, station, terminal=terminal, request=request,
            fraud_rules=fraud_rules, fraud=declined.fraud, now=now)
    else:
        answer, fraud = await _record_approval(session, facts, approval, station, terminal=terminal,
                                               request=request, settings=settings, now=now)
    logger.info(
        "authorization terminal=%s txn=%s card=%s code=%s reason=%s amount=%s fraud=%s",
        terminal.code, request.terminal_transaction_id, facts.masked_card or "-",
        answer.response_code, answer.decline_reason or "approved", answer.approved_amount_minor,
        fraud.verdict.value if fraud.trace is not None else "-",  # "-": no rules engine ran
    )
    stored = await idempotency.store_answer(
        session, terminal_id=terminal.id, transaction_id=request.terminal_transaction_id,
        message_type=MessageType.AUTHORIZE, answer=answer,
    )
    if approval is not None:
        await _write_shared_rows(session, approval)
    return stored


async def _write_shared_rows(session: AsyncSession, approval: _Approval) -> None:
    """The rows other cards' authorizations also write, last: unit counters nothing checked,
    then the accounts (the guarded debit of the available balance, the held credit)."""
    await count_unchecked(session, approval.unchecked_scopes, approval.local_day,
                          amount_minor=approval.amount_minor, volume_ml=approval.volume_ml, count=1)
    await move_balances(
        session, [(approval.available_account_id, -approval.amount_minor),
                  (approval.held_account_id, approval.amount_minor)],
        guarded_debit=None if approval.funds_locked else (approval.available_account_id, approval.amount_minor),
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
    latitude: float
    longitude: float
    terminal_fraud_state: dict | None


# The hot path's statements are built once, on the tables (not the ORM entities): no statement
# construction, cache-key walk or ORM bookkeeping per message, only the execution.
_terminals, _stations, _prices = Terminal.__table__, Station.__table__, StationProduct.__table__
_cards, _enrollments = Card.__table__, DeviceEnrollment.__table__

_LOAD_STATION = (
    select(_terminals.c.station_id, _terminals.c.status, _stations.c.status, _stations.c.network_id,
           _stations.c.region, _prices.c.price_minor, _prices.c.currency, _stations.c.code,
           _stations.c.name, _stations.c.latitude, _stations.c.longitude, _terminals.c.fraud_state)
    .join(_stations, _stations.c.id == _terminals.c.station_id)
    .outerjoin(_prices, (_prices.c.station_id == _stations.c.id) & (_prices.c.product == bindparam("product")))
    .where(_terminals.c.id == bindparam("terminal_id"))
    .with_for_update(of=_terminals, key_share=True)
)


async def _load_station(session: AsyncSession, terminal_id: int, product: str) -> _StationRow:
    """The terminal, its station and the posted price, in one statement; locks the terminal row
    (first in the lock order): its fraud state is rewritten by this transaction.

    FOR NO KEY UPDATE, the lock an UPDATE of a non-key column takes anyway: the message slot
    claimed before (and every authorization) references the terminal, and PostgreSQL holds KEY
    SHARE on it for that foreign key. A plain FOR UPDATE conflicts with KEY SHARE, so two
    messages of one terminal, each holding its slot's KEY SHARE, would deadlock."""
    row = (await fastpath.execute(session, _LOAD_STATION, {"terminal_id": terminal_id, "product": str(product)})).one()
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
    card_created_at: datetime
    card_fraud_state: dict | None
    company_profile: dict | None
    available_balance_minor: int  # read without a lock: the final debit checks it again
    credit_limit_minor: int


_companies, _units, _vehicles, _accounts = Company.__table__, OrgUnit.__table__, Vehicle.__table__, Account.__table__
_profiles = CompanyFraudProfile.__table__
_LOAD_CARD = (
    select(
        _enrollments.c.id, _enrollments.c.status, _enrollments.c.device_key_encrypted,
        _cards.c.id, _cards.c.driver_id, _cards.c.status, _cards.c.pan_first6, _cards.c.pan_last4,
        _companies.c.id, _companies.c.status, _companies.c.currency, _companies.c.timezone,
        _companies.c.available_account_id, _companies.c.held_account_id,
        _cards.c.org_unit_id, _units.c.path, _vehicles.c.tank_capacity_ml, _vehicles.c.allowed_products,
        _cards.c.created_at, _cards.c.fraud_state, _profiles.c.profile,
        _accounts.c.balance_minor, _accounts.c.credit_limit_minor,
    )
    .join(_cards, _cards.c.id == _enrollments.c.card_id)
    .join(_companies, _companies.c.id == _cards.c.company_id)
    .join(_units, _units.c.id == _cards.c.org_unit_id)
    .outerjoin(_vehicles, _vehicles.c.id == _cards.c.vehicle_id)
    .outerjoin(_profiles, _profiles.c.company_id == _cards.c.company_id)
    .join(_accounts, _accounts.c.id == _companies.c.available_account_id)
    .where(_enrollments.c.dpan_hash == bindparam("dpan_hash"))
    .with_for_update(of=_cards, key_share=True)
)


async def _load_card(session: AsyncSession, dpan_hash: bytes) -> _CardRow | None:
    """Everything the checks and the fraud rules need about the card, in one statement; locks the
    card row only (after the terminal, before the enrollment): its fraud state is rewritten here.
    FOR NO KEY UPDATE for the same reason as the terminal's (rows referencing the card)."""
    row = (await fastpath.execute(session, _LOAD_CARD, {"dpan_hash": dpan_hash})).first()
    return None if row is None else _CardRow(*row)


@dataclass(frozen=True, slots=True)
class _Approval:
    amount_minor: int
    volume_ml: int
    partial: bool
    counters: list[CounterState]  # locked and checked: the card's and limited scopes'
    unchecked_scopes: list  # counted at the end without a lock
    available_account_id: int
    held_account_id: int
    funds_locked: bool  # the account row was locked before deciding (the fallback)
    local_day: date
    fraud: FraudDecision
    limit_exception_id: int | None = None


async def _decide(
    session: AsyncSession, facts: _Facts, station: _StationRow, *, terminal: TerminalIdentity,
    request: AuthorizationRequest, keyring: Keyring, settings: Settings, fraud_rules: FraudRules,
    now: datetime, lock_funds_first: bool,
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

    local_time = facts.local_time
    scopes = scopes_for_card(card.card_id, card.org_unit_path)
    limits, controls = await load_rules(session, scopes)
    refusal = controls_refusal(
        controls, product=product, station_id=station.station_id, network_id=station.network_id,
        region=station.region, local_time=local_time,
    )
    if refusal is not None:
        raise _decline("controls", ResponseCode.NOT_PERMITTED, *refusal)

    checked = checked_scopes(scopes, limits)
    counters = await lock_counters(session, checked, local_time.date())
    amount, binding = _fit_to_limits(request, card, station, limits, counters)
    exception_id, limits_alone = None, amount
    if binding is not None and binding.decided_by == "limits" and binding.decline_reason in _LIFTABLE:
        exception_id, amount, binding = await _lift_with_exception(
            session, request, card, station, limits, counters, amount, binding, now=now)

    if lock_funds_first:
        funds = (await fastpath.execute(session, _LOCK_FUNDS, {"account_id": card.available_account_id})).one()
        spendable = funds.balance_minor + funds.credit_limit_minor
    else:
        spendable = card.available_balance_minor + card.credit_limit_minor
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
    # Last, with everything known: the rules see the hold about to be approved.
    fraud = fraud_rules.check(_fraud_context(
        facts, station, terminal=terminal, request=request, now=now, amount_minor=amount,
        volume_ml=volume, card_counters=card_counters,
    ))
    if fraud.verdict in (FraudVerdict.DECLINE, FraudVerdict.BLOCK):
        raise _Declined(Decline("fraud", ResponseCode.SUSPECTED_FRAUD, "suspected_fraud",
                                fraud.reason or "declined by the fraud rules"), fraud)
    return _Approval(
        amount_minor=amount, volume_ml=volume, partial=amount < request.amount_minor,
        counters=counters, unchecked_scopes=[scope for scope in scopes if scope not in checked],
        available_account_id=card.available_account_id, held_account_id=card.held_account_id,
        funds_locked=lock_funds_first, local_day=local_time.date(),
        fraud=fraud, limit_exception_id=exception_id,
    )


_LOCK_FUNDS = (select(_accounts.c.balance_minor, _accounts.c.credit_limit_minor)
               .where(_accounts.c.id == bindparam("account_id")).with_for_update())


def _fraud_context(
    facts: _Facts, station: _StationRow, *, terminal: TerminalIdentity, request: AuthorizationRequest,
    now: datetime, amount_minor: int = 0, volume_ml: int = 0, card_counters: dict | None = None,
    decline: Decline | None = None,
) -> FraudContext:
    """What the rules look at, from what the checks already loaded (no further reads)."""
    card = facts.card
    card_side = {} if card is None else {
        "company_id": card.company_id, "card_id": card.card_id, "enrollment_id": card.enrollment_id,
        "driver_id": card.driver_id, "card_created_at": card.card_created_at, "local_time": facts.local_time,
        "vehicle_tank_ml": card.tank_capacity_ml, "vehicle_products": tuple(card.vehicle_products or ()),
        "company_profile": card.company_profile, "card_state": card.card_fraud_state,
    }
    return FraudContext(
        now=now, terminal_id=terminal.id, terminal_transaction_id=request.terminal_transaction_id,
        station_id=station.station_id, network_id=station.network_id, region=station.region,
        station_latitude=station.latitude, station_longitude=station.longitude,
        product=request.product.value, entry_mode=request.entry_mode,
        requested_amount_minor=request.amount_minor, amount_minor=amount_minor, volume_ml=volume_ml,
        clock_skew_seconds=facts.clock_skew_seconds, card_counters=card_counters or {},
        terminal_state=station.terminal_fraud_state,
        declined_by=decline.decided_by if decline else None,
        decline_reason=decline.decline_reason if decline else None,
        **card_side,
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
    if request.entry_mode == "qr" and token.unpredictable_number is not None:
        raise _decline("token", ResponseCode.INVALID_CARD, "invalid_token",
                       "an NFC token was presented as a QR code")

    card = await _load_card(session, keyring.lookup_hash(token.dpan, purpose=DPAN_PURPOSE))
    if card is None:
        raise _decline("token", ResponseCode.INVALID_CARD, "unknown_token",
                       "the token number belongs to no card")
    facts.card = card
    facts.company_id, facts.card_id, facts.enrollment_id = card.company_id, card.card_id, card.enrollment_id
    facts.driver_id, facts.org_unit_id = card.driver_id, card.org_unit_id
    facts.masked_card = masked_card_number(card.pan_first6, card.pan_last4)
    facts.card_first6, facts.card_last4 = card.pan_first6, card.pan_last4
    facts.local_time = now.astimezone(ZoneInfo(card.company_timezone))
    # Checked once the card is known, so that the rules count a wrong number against its enrollment.
    terminal_number = bytes.fromhex(request.unpredictable_number) if request.unpredictable_number else None
    if request.entry_mode == "nfc" and (terminal_number is None or token.unpredictable_number != terminal_number):
        raise _decline("token", ResponseCode.SECURITY_VIOLATION, "unpredictable_number_mismatch",
                       "the token does not answer this terminal's unpredictable number")
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

    consumed = await fastpath.execute(session, _CONSUME_ATC, {
        "enrollment_id": card.enrollment_id, "atc": token.atc, "skew": window.offset_seconds})
    if consumed.rowcount != 1:
        raise _decline("token", ResponseCode.SECURITY_VIOLATION, "token_replayed",
                       "this token was already used")
    return token, card


_CONSUME_ATC = (
    update(_enrollments)
    .where(_enrollments.c.id == bindparam("enrollment_id"), _enrollments.c.last_atc < bindparam("atc"),
           _enrollments.c.status == EnrollmentStatus.ACTIVE.value)
    .values(last_atc=bindparam("atc"), last_clock_skew_seconds=bindparam("skew"))
)
_RECORD_SKEW = (update(_enrollments).where(_enrollments.c.id == bindparam("enrollment_id"))
                .values(last_clock_skew_seconds=bindparam("skew")))


async def _record_skew(session: AsyncSession, enrollment_id: int, skew_seconds: int) -> None:
    await fastpath.execute(session, _RECORD_SKEW, {"enrollment_id": enrollment_id, "skew": skew_seconds})


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


_INSERT_AUTHORIZATION = insert(Authorization.__table__).returning(Authorization.__table__.c.id)


async def _insert_authorization(session: AsyncSession, values: dict) -> int:
    return (await session.execute(_INSERT_AUTHORIZATION, values)).scalar_one()


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
    terminal: TerminalIdentity, request: AuthorizationRequest, fraud_rules: FraudRules,
    fraud: FraudDecision | None, now: datetime,
) -> tuple[AuthorizationAnswer, FraudDecision]:
    """Record the decline. The rules run on it too (unless they made it): they cannot turn it into
    an approval, but they advance their state, raise alerts and may block the card."""
    if fraud is None:
        fraud = fraud_rules.check(_fraud_context(facts, station, terminal=terminal, request=request,
                                                 now=now, decline=decline))
    authorization_id = await _insert_authorization(session, {
        **_common_values(facts, terminal=terminal, request=request, now=now),
        "status": AuthorizationStatus.DECLINED, "approved_amount_minor": 0, "hold_volume_ml": 0,
        "response_code": decline.response_code, "decided_by": decline.decided_by,
        "decline_reason": decline.decline_reason, "reason": decline.reason,
        **_fraud_columns(fraud),
    })
    await _store_fraud_outcome(session, fraud, facts, station, authorization_id=authorization_id,
                               terminal=terminal, now=now)
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
    ), fraud


async def _record_approval(
    session: AsyncSession, facts: _Facts, approval: _Approval, station: _StationRow, *,
    terminal: TerminalIdentity, request: AuthorizationRequest, settings: Settings, now: datetime,
) -> tuple[AuthorizationAnswer, FraudDecision]:
    fraud = approval.fraud
    code = ResponseCode.PARTIAL_APPROVAL if approval.partial else ResponseCode.APPROVED
    reason = "approved" if not approval.partial else (
        f"approved for {format_money(approval.amount_minor, request.currency)} of "
        f"{format_money(request.amount_minor, request.currency)}"
    )
    if fraud.verdict == FraudVerdict.REVIEW:
        reason += "; queued for security review"
    hold_expires_at = now + timedelta(seconds=settings.hold_expiry_seconds)
    authorization_id = await _insert_authorization(session, {
        **_common_values(facts, terminal=terminal, request=request, now=now),
        "status": AuthorizationStatus.APPROVED, "approved_amount_minor": approval.amount_minor,
        "hold_volume_ml": approval.volume_ml, "response_code": code, "decided_by": "approved",
        "decline_reason": None, "reason": reason, "fraud_verdict": fraud.verdict.value,
        "fraud_trace": _plain(fraud.trace), "counted_on": approval.local_day, "hold_expires_at": hold_expires_at,
    })
    await _store_fraud_outcome(session, fraud, facts, station, authorization_id=authorization_id,
                               terminal=terminal, now=now)
    entry_id = await post_entry(
        session, kind=EntryKind.HOLD, company_id=facts.company_id, authorization_id=authorization_id,
        description=f"hold for terminal {terminal.code} transaction {request.terminal_transaction_id}",
        lines=[(approval.available_account_id, -approval.amount_minor),
               (approval.held_account_id, approval.amount_minor)], now=now,
        move_balances_now=False,  # _write_shared_rows moves them last
    )
    await emit(session, EventType.AUTHORIZATION_APPROVED, company_id=facts.company_id, now=now,
               payload=payloads.authorization_approved(
                   _event_marks(facts, station, authorization_id, terminal=terminal, request=request),
                   requested_amount_minor=request.amount_minor, amount_minor=approval.amount_minor,
                   volume_ml=approval.volume_ml, partial=approval.partial, response_code=code,
                   entry_mode=request.entry_mode, hold_expires_at=hold_expires_at,
                   fraud_verdict=fraud.verdict.value, journal_entry_id=entry_id))
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
    ), fraud


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


def _plain(mapping) -> dict | None:
    """A JSON column value: the engine's mappings as plain dicts (the state and trace it builds
    are JSON-native inside)."""
    if mapping is None or isinstance(mapping, dict):
        return mapping
    return dict(mapping)


def _fraud_columns(fraud: FraudDecision) -> dict:
    """The verdict and trace of a declined authorization, when rules ran (a decline without a rules
    engine keeps both empty, as before rules existed)."""
    if fraud.trace is None:
        return {}
    return {"fraud_verdict": fraud.verdict.value, "fraud_trace": _plain(fraud.trace)}


_STORE_CARD_STATE = update(_cards).where(_cards.c.id == bindparam("row_id")).values(fraud_state=bindparam("state"))
_STORE_TERMINAL_STATE = (update(_terminals).where(_terminals.c.id == bindparam("row_id"))
                         .values(fraud_state=bindparam("state")))


async def _store_fraud_outcome(
    session: AsyncSession, fraud: FraudDecision, facts: _Facts, station: _StationRow, *,
    authorization_id: int, terminal: TerminalIdentity, now: datetime,
) -> None:
    """The rules' next states (one UPDATE each, only when changed; both rows are already locked),
    their alerts (only when a rule fired) and a block of the card."""
    card = facts.card
    if card is not None and fraud.card_state is not None and fraud.card_state != card.card_fraud_state:
        await fastpath.execute(session, _STORE_CARD_STATE, {"row_id": card.card_id, "state": _plain(fraud.card_state)})
    if fraud.terminal_state is not None and fraud.terminal_state != station.terminal_fraud_state:
        await fastpath.execute(session, _STORE_TERMINAL_STATE, {"row_id": terminal.id, "state": _plain(fraud.terminal_state)})
    if fraud.alerts:
        await session.execute(insert(FraudAlert), [
            {"company_id": facts.company_id, "card_id": facts.card_id, "authorization_id": authorization_id,
             "terminal_id": terminal.id, "source": AlertSource.AUTHORIZATION.value,
             "rule_code": alert.rule_code, "rule_id": alert.rule_id, "rule_version": alert.rule_version,
             "outcome": alert.outcome, "severity": alert.severity, "status": AlertStatus.OPEN.value,
             "summary": alert.summary[:300], "details": _plain(alert.details) or {},
             "created_at": now, "updated_at": now}
            for alert in fraud.alerts
        ])
    # Only an active card is blocked: a blocked one keeps the reason an officer gave, a closed
    # one stays closed.
    if fraud.verdict == FraudVerdict.BLOCK and card is not None and card.card_status == CardStatus.ACTIVE:
        await _block_by_rule(session, fraud, card, authorization_id=authorization_id, now=now)


FRAUD_RULES_ACTOR_ROLE = "fraud_rules"
_STATUS_REASON_LENGTH = 200  # cards.status_reason


async def _block_by_rule(session: AsyncSession, fraud: FraudDecision, card: _CardRow, *,
                         authorization_id: int, now: datetime) -> None:
    """Block the card the way an officer would (status service: card.blocked event; 62 from the
    next authorization), audited as done by the fraud rules."""
    rule = fraud.rule or "unknown"
    reason = f"blocked by fraud rule {rule}: {fraud.reason or 'suspected fraud'}"[:_STATUS_REASON_LENGTH]
    before = _card_snapshot(await get_card(session, card.card_id, for_update=True))
    blocked = await block_card(session, card_id=card.card_id, reason=reason, now=now)
    await record(
        session, actor=AuditActor(user_id=None, role=FRAUD_RULES_ACTOR_ROLE, login=f"fraud rule {rule}"),
        action="card.block", target_kind="card", target_id=card.card_id, company_id=card.company_id,
        org_unit_path=card.org_unit_path, before=before,
        after=_card_snapshot(blocked, fraud_rule=rule, authorization_id=authorization_id), now=now,
    )
    logger.warning("card %s blocked by fraud rule %s (authorization %s)",
                   masked_card_number(card.pan_first6, card.pan_last4), rule, authorization_id)


def _card_snapshot(card: Card, **extra) -> dict:
    # The same fields as an admin's card.block entry in the audit log (masked number only).
    return snapshot(card_id=card.id, card=masked_card_number(card.pan_first6, card.pan_last4),
                    status=card.status, status_reason=card.status_reason, org_unit_id=card.org_unit_id,
                    driver_id=card.driver_id, vehicle_id=card.vehicle_id, **extra)
