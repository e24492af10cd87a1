"""Backtest: what a candidate rule set would have done to the authorizations of the last N days.

The replay walks the stored authorizations in the order the live path decided them (by id),
completions, reversals and expiries at their times, and officers' unblocks of cards, rebuilding
the fraud states of cards and terminals with the live path's own transitions
(``fraud.engine.state``) and evaluating the candidate with the live path's own ``decide``. Each
authorization is rebuilt from its row and the ``context`` part of its stored trace, which holds
everything the rules read that is not a column. A warm-up of 24 hours before the period (the
longest window any rule may use) rebuilds the states the period starts with; it is evaluated but
not counted.

How an authorization is replayed:
- declined live by a check other than the rules (token, card, limits, funds, ...): it stays
  declined; the candidate's rules run on the decline path (they can only alert or block);
- approved live, or declined live by the rules: the candidate decides it on the approval path;
  if the candidate declines it, it is no purchase in the replay (no fill, no purchase count),
  and its completion or reversal changes nothing;
- once the candidate blocked a card, its later authorizations that passed the card's status
  check live are declined as a blocked card (62) in the replay, until an officer's unblock
  (a ``card.unblocked`` event) in the period.

What a replay cannot know (so the figures are exact only where these do not arise):
- the litres of a purchase declined live but approved by the candidate: it never completed,
  so it counts at its hold litres until it leaves the window;
- limits and funds: a purchase the candidate declines leaves limit headroom and money that
  could have let a later purchase pass that was declined live for limits or funds (and the
  other way round); such later declines stay as they were;
- a card blocked live by a rule that the candidate would not block: its later declines as a
  blocked card stay declines (their amounts were never known);
- cards the candidate would have blocked before the warm-up, and authorizations stored without
  a trace (no rules ran on them live): those are skipped and counted as such;
- whether a card made an approved purchase before the warm-up comes from the live outcome (the
  last 30 days, the longest a card counts as new), not the candidate's.

Events at the same instant are replayed in this order: completions and reversals, unblocks,
then authorizations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.engine.attempt import Attempt
from fraud.engine.catalogue import RULE_ORDER, RULES
from fraud.engine.evaluate import decide
from fraud.engine.outcomes import ALERT, APPROVE, BLOCK, DECLINE, REVIEW, effect_of
from fraud.engine.ruleset import RuleSet, RuleSetting
from fraud.engine.state import MAX_WINDOW_SECONDS, settle
from processing.authorization.models import Authorization, Completion, Reversal
from processing.errors import ProcessingError
from processing.outbox.catalogue import EventType
from processing.outbox.models import OutboxEvent

MAX_DAYS = 92
BATCH_SIZE = 1_000
WARM_UP = timedelta(seconds=MAX_WINDOW_SECONDS)
# The longest a card counts as new (new_card_large_purchase.max_card_age_days ≤ 30).
NEW_CARD_HORIZON = timedelta(days=30)
# decided_by of an authorization that reached the rules on the approval path.
APPROVAL_PATH = frozenset({"approved", "fraud"})


class InvalidBacktestPeriod(ProcessingError):
    status_code = 422
    code = "invalid_backtest_period"


# --- counting ---------------------------------------------------------------------------------


@dataclass
class RuleCounts:
    fired: int = 0
    declined: int = 0  # authorizations this rule declines (decline or block on the approval path)
    blocked: int = 0  # cards blocked (block_card on either path)
    reviewed: int = 0
    alerted: int = 0  # fired with the effect "alert" (on the decline path decline/review are alerts)


@dataclass
class Tally:
    """What a rule set did to the authorizations of a period."""

    authorizations: int = 0
    approved: int = 0
    declined_by_rules: int = 0  # approval path, verdict decline or block
    declined_by_checks: int = 0  # declined before the rules (blocked card included)
    blocked: int = 0  # decisions that blocked the card
    reviewed: int = 0
    alerts: int = 0  # alerts raised: one per fired rule whose effect is not approve
    by_rule: dict[str, RuleCounts] = field(default_factory=dict)

    def add(self, trace: Mapping, *, on_decline_path: bool) -> None:
        """Count one decision from its trace (the same for the live one and the replayed one)."""
        verdict = trace["verdict"]
        self.authorizations += 1
        if on_decline_path:
            self.declined_by_checks += 1
        elif verdict in (DECLINE, BLOCK):
            self.declined_by_rules += 1
        else:
            self.approved += 1
        self.blocked += verdict == BLOCK
        self.reviewed += verdict == REVIEW
        for entry in trace["rules"]:
            if not entry["fired"]:
                continue
            effect = effect_of(entry["outcome"], on_decline_path=on_decline_path)
            counts = self.by_rule.get(entry["rule"])
            if counts is None:
                counts = self.by_rule[entry["rule"]] = RuleCounts()
            counts.fired += 1
            counts.declined += effect is DECLINE or (effect is BLOCK and not on_decline_path)
            counts.blocked += effect is BLOCK
            counts.reviewed += effect is REVIEW
            counts.alerted += effect is ALERT
            self.alerts += effect is not APPROVE

    def as_dict(self) -> dict:
        return {
            "authorizations": self.authorizations, "approved": self.approved,
            "declined_by_rules": self.declined_by_rules, "declined_by_checks": self.declined_by_checks,
            "blocked": self.blocked, "reviewed": self.reviewed, "alerts": self.alerts,
            "by_rule": {code: vars(counts).copy() for code, counts in
                        sorted(self.by_rule.items(), key=lambda item: RULE_ORDER.get(item[0], 99))},
        }


@dataclass
class BacktestResult:
    since: datetime
    until: datetime
    days: int
    candidate_revision: int
    candidate: Tally  # what the candidate would have done
    live: Tally  # what the live rules did, from the stored traces of the same authorizations
    skipped_without_trace: int = 0  # authorizations of the period no rules ran on live
    warm_up_authorizations: int = 0

    def rows(self) -> list[dict]:
        """Per rule, candidate next to live, in catalogue order (for a table)."""
        codes = sorted(set(self.candidate.by_rule) | set(self.live.by_rule) | set(RULES),
                       key=lambda code: RULE_ORDER.get(code, 99))
        empty = RuleCounts()
        return [{"rule": code, "title": RULES[code].title if code in RULES else code,
                 "candidate": vars(self.candidate.by_rule.get(code, empty)).copy(),
                 "live": vars(self.live.by_rule.get(code, empty)).copy()} for code in codes]

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "days": self.days,
                "candidate_revision": self.candidate_revision, "candidate": self.candidate.as_dict(),
                "live": self.live.as_dict(), "skipped_without_trace": self.skipped_without_trace,
                "warm_up_authorizations": self.warm_up_authorizations, "rules": self.rows()}


# --- the replay (pure: records in, counts out) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationRecord:
    """What the replay needs of one stored authorization."""

    id: int
    created_at: datetime
    terminal_id: int
    terminal_transaction_id: str
    station_id: int
    company_id: int | None
    card_id: int | None
    enrollment_id: int | None
    product: str
    decided_by: str
    decline_reason: str | None
    clock_skew_seconds: int | None
    fraud_trace: Mapping | None


@dataclass(frozen=True, slots=True)
class SettleRecord:
    """A completion (its litres) or a reversal or expiry (0 litres) of an approved hold."""

    at: datetime
    card_id: int | None
    terminal_id: int
    terminal_transaction_id: str
    volume_ml: int


@dataclass(frozen=True, slots=True)
class UnblockRecord:
    at: datetime
    card_id: int


class Replay:
    """Feeds stored decisions through the candidate, keeping the states the candidate would have."""

    def __init__(self, candidate: RuleSet, *, count_from: datetime, purchased_cards: Iterable[int] = ()):
        self.candidate = candidate
        self.count_from = count_from
        self.card_states: dict[int, Mapping] = {card_id: {"v": 1, "purchases": 1} for card_id in purchased_cards}
        self.terminal_states: dict[int, Mapping] = {}
        self.blocked_cards: set[int] = set()
        self.candidate_tally = Tally()
        self.live_tally = Tally()
        self.skipped_without_trace = 0
        self.warm_up_authorizations = 0

    def authorization(self, record: AuthorizationRecord) -> None:
        counted = record.created_at >= self.count_from
        trace = record.fraud_trace
        if not trace:
            self.skipped_without_trace += counted
            return
        live_on_decline = record.decided_by not in APPROVAL_PATH
        attempt = Attempt.from_record(
            created_at=record.created_at, terminal_id=record.terminal_id,
            terminal_transaction_id=record.terminal_transaction_id, station_id=record.station_id,
            product=record.product, company_id=record.company_id, card_id=record.card_id,
            enrollment_id=record.enrollment_id, clock_skew_seconds=record.clock_skew_seconds,
            declined_by=record.decided_by if live_on_decline else None,
            decline_reason=record.decline_reason if live_on_decline else None,
            context=trace.get("context") or {},
        )
        card_id = record.card_id
        if card_id is not None and card_id in self.blocked_cards and attempt.reaches_card_status_check:
            attempt = attempt.declined_as_blocked_card()
        decision = decide(self.candidate, attempt, self.card_states.get(card_id),
                          self.terminal_states.get(record.terminal_id))
        if decision.card_state is not None:
            self.card_states[card_id] = decision.card_state
        if decision.terminal_state is not None:
            self.terminal_states[record.terminal_id] = decision.terminal_state
        if decision.verdict is BLOCK and card_id is not None:
            self.blocked_cards.add(card_id)
        if counted:
            self.candidate_tally.add(decision.trace, on_decline_path=attempt.on_decline_path)
            self.live_tally.add(trace, on_decline_path=live_on_decline)
        else:
            self.warm_up_authorizations += 1

    def settlement(self, record: SettleRecord) -> None:
        if record.card_id is None:
            return
        settled = settle(self.card_states.get(record.card_id), terminal_id=record.terminal_id,
                         terminal_transaction_id=record.terminal_transaction_id, volume_ml=record.volume_ml)
        if settled is not None:
            self.card_states[record.card_id] = settled

    def unblock(self, record: UnblockRecord) -> None:
        self.blocked_cards.discard(record.card_id)

    def feed(self, record) -> None:
        if isinstance(record, AuthorizationRecord):
            self.authorization(record)
        elif isinstance(record, SettleRecord):
            self.settlement(record)
        else:
            self.unblock(record)


# --- reading the database in batches -----------------------------------------------------------

_AUTHORIZATION_COLUMNS = (
    Authorization.id, Authorization.created_at, Authorization.terminal_id,
    Authorization.terminal_transaction_id, Authorization.station_id, Authorization.company_id,
    Authorization.card_id, Authorization.enrollment_id, Authorization.product, Authorization.decided_by,
    Authorization.decline_reason, Authorization.clock_skew_seconds, Authorization.fraud_trace,
)


async def _authorizations(session: AsyncSession, since: datetime, until: datetime) -> AsyncIterator:
    # By id: the order the live path decided them in (per card and terminal, the row locks
    # made ids follow the decisions; created_at is taken before the locks are waited for).
    last_id = 0
    while True:
        rows = (await session.execute(
            select(*_AUTHORIZATION_COLUMNS)
            .where(Authorization.id > last_id, Authorization.created_at >= since,
                   Authorization.created_at <= until)
            .order_by(Authorization.id).limit(BATCH_SIZE)
        )).all()
        for row in rows:
            yield (row.created_at, 2, row.id), AuthorizationRecord(*row)
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1].id


async def _settlements(session: AsyncSession, table, volume, since: datetime, until: datetime) -> AsyncIterator:
    last_id = 0
    while True:
        rows = (await session.execute(
            select(table.id, table.created_at, Authorization.card_id, Authorization.terminal_id,
                   Authorization.terminal_transaction_id, volume)
            .join(Authorization, Authorization.id == table.authorization_id)
            .where(table.id > last_id, table.created_at >= since, table.created_at <= until)
            .order_by(table.id).limit(BATCH_SIZE)
        )).all()
        for row in rows:
            yield (row[1], 0, row[0]), SettleRecord(row[1], row[2], row[3], row[4], int(row[5]))
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1][0]


async def _unblocks(session: AsyncSession, since: datetime, until: datetime) -> AsyncIterator:
    last_id = 0
    while True:
        rows = (await session.execute(
            select(OutboxEvent.id, OutboxEvent.occurred_at, OutboxEvent.payload)
            .where(OutboxEvent.id > last_id, OutboxEvent.event_type == EventType.CARD_UNBLOCKED.value,
                   OutboxEvent.occurred_at >= since, OutboxEvent.occurred_at <= until)
            .order_by(OutboxEvent.id).limit(BATCH_SIZE)
        )).all()
        for event_id, occurred_at, payload in rows:
            card_id = (payload or {}).get("card_id")
            if card_id is not None:
                yield (occurred_at, 1, event_id), UnblockRecord(occurred_at, int(card_id))
        if len(rows) < BATCH_SIZE:
            return
        last_id = rows[-1][0]


async def _merged(streams: list[AsyncIterator]) -> AsyncIterator:
    """The records of several streams in the order of their keys (time, kind, id)."""
    heads = []
    for stream in streams:
        head = await anext(stream, None)
        if head is not None:
            heads.append([head, stream])
    while heads:
        index = min(range(len(heads)), key=lambda i: heads[i][0][0])
        (key, record), stream = heads[index]
        yield record
        following = await anext(stream, None)
        if following is None:
            del heads[index]
        else:
            heads[index][0] = following


async def _cards_with_purchases(session: AsyncSession, since: datetime, until: datetime) -> set[int]:
    rows = await session.execute(
        select(Authorization.card_id).distinct()
        .where(Authorization.decided_by == "approved", Authorization.card_id.is_not(None),
               Authorization.created_at >= since, Authorization.created_at < until)
    )
    return set(rows.scalars())


async def run_backtest(
    session: AsyncSession, *, candidate: RuleSet | Iterable[RuleSetting], days: int, now: datetime,
) -> BacktestResult:
    """Replay the authorizations of the ``days`` before ``now`` through ``candidate`` and count
    what it would have declined, blocked, reviewed and alerted, by rule, next to what the live
    rules did. Reads in batches of ``BATCH_SIZE`` rows; memory grows with the number of cards
    and terminals active in the period, not with the authorizations."""
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidBacktestPeriod(f"days must be a whole number from 1 to {MAX_DAYS}")
    ruleset = candidate if isinstance(candidate, RuleSet) else RuleSet(candidate)
    since = now - timedelta(days=days)
    warm_up_from = since - WARM_UP
    replay = Replay(ruleset, count_from=since,
                    purchased_cards=await _cards_with_purchases(session, warm_up_from - NEW_CARD_HORIZON,
                                                                warm_up_from))
    streams = [
        _authorizations(session, warm_up_from, now),
        _settlements(session, Completion, Completion.volume_ml, warm_up_from, now),
        _settlements(session, Reversal, literal(0), warm_up_from, now),
        _unblocks(session, warm_up_from, now),
    ]
    async for record in _merged(streams):
        replay.feed(record)
    return BacktestResult(
        since=since, until=now, days=days, candidate_revision=ruleset.revision,
        candidate=replay.candidate_tally, live=replay.live_tally,
        skipped_without_trace=replay.skipped_without_trace,
        warm_up_authorizations=replay.warm_up_authorizations,
    )
