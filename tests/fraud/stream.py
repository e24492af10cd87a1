"""A generated month of authorization requests for the backtest tests.

The stream is a list of plain requests (who, where, when, what, which token) that two runs can
play: the pure one here (``play_pure``: a model of the core's checks in front of ``evaluate``,
recording what the database would hold) and the real one through the terminal API
(tests/fraud/test_backtest_live.py). Besides ordinary purchases it plants the situations each
rule looks for: bursts of attempts, refuels close together, long trips in no time, night
purchases, runs of declines, a new card's big first purchase, replayed, forged, expired and
clock-ahead tokens, unknown tokens at one terminal, many cards at one terminal, the wrong fuel,
and officers' unblocks.

Limits that depend on history (per day/week/month) and funds are kept out of the stream: a rule
set that declines more leaves limit headroom and money behind, which a replay cannot know
(fraud.backtest's documented limits). A per-transaction limit is history-free and is used.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fraud.backtest import AuthorizationRecord, Replay, SettleRecord, Tally, UnblockRecord
from fraud.engine.evaluate import evaluate
from fraud.engine.ruleset import RuleSet, RuleSetting
from processing.authorization.fraud_hook import FraudContext, FraudVerdict
from processing.products import FUELS

MOSCOW = ZoneInfo("Europe/Moscow")
PRICES = {"diesel": 6_550, "ai95": 5_890}
VALIDITY_SECONDS, ALLOWED_SKEW_SECONDS = 120, 30  # the Settings defaults


@dataclass(frozen=True)
class StationSpec:
    key: int
    latitude: float
    longitude: float


STATIONS = (
    StationSpec(0, 55.7558, 37.6173),  # Moscow
    StationSpec(1, 55.8000, 37.5000),  # Moscow, 8.6 km
    StationSpec(2, 55.7000, 37.7000),  # Moscow, 7.9 km
    StationSpec(3, 59.9343, 30.3351),  # Saint Petersburg
    StationSpec(4, 59.9000, 30.4000),  # Saint Petersburg
    StationSpec(5, 56.8587, 35.9176),  # Tver, 160 km from Moscow
)
HOME_STATIONS = {"moscow": (0, 1, 2), "spb": (3, 4)}


@dataclass(frozen=True)
class CardSpec:
    key: int
    company: int  # index into the stream's companies
    created_day: float  # days after the stream start (negative: issued before it)
    tank_ml: int | None  # None: no vehicle
    fuels: tuple[str, ...]
    home: str
    max_amount_minor: int | None = None  # a per-transaction amount limit


@dataclass(frozen=True)
class Request:
    at: float  # seconds after the stream start
    station: int
    card: int | None  # None: a token of no card ("unknown" or "malformed")
    token: str  # ok | replay | cryptogram | expired | ahead | unknown | malformed
    product: str = "diesel"
    amount_minor: int = 200_000
    skew: int = 0  # ok tokens: how far the phone clock is ahead (negative: token age)
    # After an approval: complete for this share of the hold's litres (None: reverse) ...
    dispensed_share: float | None = 0.9
    settle_after: float = 600.0  # ... this many seconds later


@dataclass(frozen=True)
class Unblock:
    at: float
    card: int


@dataclass
class Stream:
    start: datetime
    days: int
    companies: int
    cards: tuple[CardSpec, ...]
    requests: list[Request]
    unblocks: list[Unblock]
    # company -> purchases per local hour of the week (the worker's profile, fixed for the month)
    profiles: dict[int, list[int]] = field(default_factory=dict)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def _tank_amount(rng: random.Random, card: CardSpec, product: str) -> int:
    if card.tank_ml is None:
        return rng.randint(100_000, 400_000)
    litres = card.tank_ml * rng.uniform(0.3, 0.75)
    return int(litres) * PRICES[product] // 1000


def generate(start: datetime, *, days: int = 30, seed: int = 7, purchases_per_day: int = 14) -> Stream:
    """A month of traffic of two companies (12 cards, six stations) with every rule's situation."""
    rng = random.Random(seed)
    cards = (
        CardSpec(0, 0, -200, 60_000, ("diesel",), "moscow"),
        CardSpec(1, 0, -150, 60_000, ("diesel",), "moscow"),
        CardSpec(2, 0, -90, 60_000, ("diesel",), "moscow", max_amount_minor=250_000),
        CardSpec(3, 0, -60, 45_000, ("ai95",), "moscow"),
        CardSpec(4, 0, -300, 80_000, ("diesel",), "spb"),
        CardSpec(5, 1, -400, 60_000, ("diesel",), "spb"),
        CardSpec(6, 1, -30, 60_000, ("diesel",), "moscow"),
        CardSpec(7, 1, 9.5, None, (), "moscow"),  # issued during the month, no vehicle
        CardSpec(8, 1, -100, 70_000, ("diesel",), "moscow"),
        CardSpec(9, 0, -120, 60_000, ("diesel",), "moscow"),
        CardSpec(10, 1, 20.2, None, (), "spb"),  # issued during the month, no vehicle
        CardSpec(11, 0, -80, 60_000, ("diesel",), "moscow"),
    )
    requests: list[Request] = []
    unblocks: list[Unblock] = []

    def fuel(card: CardSpec) -> str:
        return card.fuels[0] if card.fuels else "diesel"

    def day_time(day: int, hour_from: int = 7, hour_to: int = 21) -> float:
        # Local (Moscow, UTC+3) hour -> seconds after the stream start (which is 00:00 UTC).
        return day * 86400 + (rng.uniform(hour_from, hour_to) - 3) * 3600

    def purchase(at: float, card: CardSpec, **extra) -> None:
        product = extra.pop("product", fuel(card))
        station = extra.pop("station", rng.choice(HOME_STATIONS[card.home]))
        amount = extra.pop("amount_minor", _tank_amount(rng, card, product))
        skew = extra.pop("skew", rng.randint(-100, 8))
        requests.append(Request(at, station, card.key, extra.pop("token", "ok"), product, amount, skew,
                                **extra))

    for day in range(days):
        for _ in range(purchases_per_day):
            card = rng.choice(cards)
            if card.created_day > day:
                continue
            share = rng.choice((0.95, 0.8, 0.6, None)) if rng.random() < 0.15 else rng.uniform(0.7, 1.0)
            purchase(day_time(day), card, dispensed_share=share, settle_after=rng.uniform(120, 1500))
        scenario = day % 10
        base = day_time(day, 9, 17)
        if scenario == 0:  # card velocity: six tries a minute apart
            card = cards[1]
            for n in range(6):
                purchase(base + 60 * n, card, amount_minor=50_000 + n)
        elif scenario == 1:  # replays of a token just used, then a forged one
            card = cards[0]
            purchase(base, card, skew=-5)
            for n in range(3):
                requests.append(Request(base + 20 + 15 * n, 0, card.key, "replay", "diesel", 150_000))
            requests.append(Request(base + 400, 0, card.key, "cryptogram", "diesel", 150_000))
            unblocks.append(Unblock(base + 7200, card.key))
        elif scenario == 2:  # unknown and malformed tokens at one terminal
            for n in range(11):
                requests.append(Request(base + 200 * n, 5, None, "unknown" if n % 3 else "malformed"))
        elif scenario == 3:  # ten cards at one terminal within nine minutes
            for n, card in enumerate(c for c in cards if c.created_day <= day and c.key != 3):
                purchase(base + 55 * n, card, station=2, product="diesel" if card.key != 3 else "ai95")
        elif scenario == 4:  # Moscow, then Saint Petersburg 50 minutes later; Tver after 1.5 h
            card = cards[6]
            purchase(base, card, station=0)
            purchase(base + 3000, card, station=3)
            purchase(base + 3000 + 5400, card, station=5)
        elif scenario == 5:  # refuels close together beyond the tank; night purchases
            card = cards[9]
            purchase(base, card, amount_minor=50_000 * 6_550 // 1000, dispensed_share=1.0, settle_after=300)
            purchase(base + 5400, card, amount_minor=22_000 * 6_550 // 1000)
            purchase(day * 86400 + (2.5 - 3) * 3600 + 86400, cards[11])  # 02:30 local, the next night
        elif scenario == 6:  # a run of declines over a per-transaction limit, then a pass
            card = cards[2]
            for n in range(3):
                purchase(base + 300 * n, card, amount_minor=300_000 + n)
            purchase(base + 1200, card, amount_minor=200_000)
        elif scenario == 7:  # the wrong fuel; clock skews
            purchase(base, cards[0], product="ai95", amount_minor=150_000)
            purchase(base + 900, cards[3], product="diesel", amount_minor=150_000)
            for n in range(3):
                purchase(base + 1800 + 600 * n, cards[8], skew=21 + n)
            requests.append(Request(base + 4000, 1, cards[8].key, "ahead", "diesel", 100_000))
            requests.append(Request(base + 4100, 1, cards[8].key, "expired", "diesel", 100_000))
            unblocks.append(Unblock(base + 10_000, cards[8].key))
            unblocks.append(Unblock(base + 10_100, cards[0].key))
    # The new cards' first purchases, early in the morning after they were issued (before the
    # day's ordinary traffic): one large, one just below the threshold.
    for card, amount in ((cards[7], 1_600_000), (cards[10], 900_000)):
        purchase((card.created_day + 0.6) * 86400, card, amount_minor=amount)
    requests = sorted((r for r in requests if r.at < days * 86400 - 3600), key=lambda r: r.at)
    # Spread requests planted at the same second apart: every decision has its own time.
    seen: set[int] = set()
    spread = []
    for request in requests:
        at = int(request.at)
        while at in seen:
            at += 1
        seen.add(at)
        spread.append(_with_at(request, float(at)))
    # Weekday fleets: each working hour holds 1.2-2.4 % of the purchases (above the default 1 %),
    # nights and weekends none.
    working = [20 if hour < 5 * 24 and hour % 24 in range(7, 22) else 0 for hour in range(168)]
    profiles = {0: [count * (2 if hour % 24 in range(8, 12) else 1) for hour, count in enumerate(working)],
                1: [count // 2 for count in working]}
    return Stream(start=start, days=days, companies=2, cards=cards, requests=spread,
                  unblocks=sorted((u for u in unblocks if u.at < days * 86400), key=lambda u: u.at),
                  profiles=profiles)


def _with_at(request: Request, at: float) -> Request:
    values = dict(vars(request))
    values["at"] = at
    return Request(**values)


# --- rule sets the tests play the stream with -------------------------------------------------


def default_rules(*, company_override_for: int | None = None) -> list[RuleSetting]:
    """The shipped defaults, plus a company's own card velocity setting when given."""
    settings = [RuleSetting.default(code) for code in _codes()]
    if company_override_for is not None:
        settings.append(RuleSetting.create("card_velocity", company_id=company_override_for,
                                           params={"max_authorizations": 6}))
    return settings


def stricter_rules(*, company_override_for: int | None = None) -> list[RuleSetting]:
    changes = {
        "card_velocity": {"params": {"max_authorizations": 3}},
        "tank_overfill": {"params": {"max_tank_ratio": 1.0}, "outcome": "decline"},
        "impossible_travel": {"params": {"max_speed_kmh": 100.0}},
        "unusual_hours": {"params": {"min_share_percent": 1.5, "min_history": 20}},
        "decline_run": {"params": {"max_consecutive_declines": 2}, "outcome": "block_card"},
        "new_card_large_purchase": {"params": {"min_amount_minor": 800_000}, "outcome": "decline"},
        "enrollment_token_anomalies": {"params": {"max_anomalies": 2, "skew_seconds": 20}},
        "terminal_token_anomalies": {"params": {"max_anomalies": 5}},
        "terminal_card_burst": {"params": {"max_distinct_cards": 6}, "outcome": "review"},
        "product_mismatch": {"outcome": "block_card"},
    }
    settings = [RuleSetting.default(code).replace(**changes[code]) for code in _codes()]
    if company_override_for is not None:
        settings.append(RuleSetting.create("card_velocity", company_id=company_override_for,
                                           params={"max_authorizations": 2}))
    return settings


def _codes() -> list[str]:
    from fraud.engine.catalogue import RULES

    return list(RULES)


# --- the pure run: a model of the core in front of evaluate ------------------------------------


@dataclass(frozen=True)
class StreamIds:
    """The database ids of the stream's companies, cards, enrollments, stations and terminals."""

    companies: dict[int, int]
    cards: dict[int, int]
    enrollments: dict[int, int]
    stations: dict[int, int]
    terminals: dict[int, int]

    @classmethod
    def made_up(cls, stream: Stream) -> StreamIds:
        return cls(companies={c: 100 * (c + 1) for c in range(stream.companies)},
                   cards={card.key: 1000 + card.key for card in stream.cards},
                   enrollments={card.key: 2000 + card.key for card in stream.cards},
                   stations={station.key: 10 + station.key for station in STATIONS},
                   terminals={station.key: 500 + station.key for station in STATIONS})


@dataclass
class PureRun:
    """What a live run left behind: the records the backtest reads, and the live tally."""

    authorizations: list[AuthorizationRecord]
    settlements: list[SettleRecord]
    unblocks: list[UnblockRecord]
    live: Tally

    def records_in_order(self) -> list:
        keyed = ([((r.at, 0, n), r) for n, r in enumerate(self.settlements)]
                 + [((r.at, 1, n), r) for n, r in enumerate(self.unblocks)]
                 + [((r.created_at, 2, r.id), r) for r in self.authorizations])
        return [record for _, record in sorted(keyed, key=lambda item: item[0])]


def _token_outcome(request: Request, last_ok: dict[int, float]) -> tuple[str | None, str | None, int | None, bool]:
    """(declined_by, decline_reason, clock skew seen, card known) as the core's token checks end."""
    token = request.token
    if token == "unknown":
        return "token", "unknown_token", None, False
    if token == "malformed":
        return "token", "invalid_token", None, False
    if token == "cryptogram":
        return "token", "bad_cryptogram", None, True
    if token == "expired":
        return "token", "token_expired", -400, True
    if token == "ahead":
        return "token", "clock_ahead", 120, True
    if token == "replay":
        made = last_ok[request.card]
        return "token", "token_replayed", int(made) - int(request.at), True
    if request.skew > ALLOWED_SKEW_SECONDS:
        return "token", "clock_ahead", request.skew, True
    return None, None, request.skew, True


def play_pure(stream: Stream, settings: list[RuleSetting], *, ids: StreamIds | None = None) -> PureRun:
    """Play the stream through the core's checks (modelled) and ``evaluate``, keeping states the
    way the core stores them, and record what the database would hold."""
    ruleset = RuleSet(settings)
    ids = ids or StreamIds.made_up(stream)
    company_ids = ids.companies
    from fraud.engine.profile import build_profile

    profiles = {company_ids[c]: build_profile(counts, typical_amount_minor=300_000)
                for c, counts in stream.profiles.items()}
    cards = {card.key: card for card in stream.cards}
    card_states: dict[int, dict] = {}
    terminal_states: dict[int, dict] = {}
    blocked: set[int] = set()
    last_ok: dict[int, float] = {}
    authorizations, settlements, unblock_records = [], [], []
    live = Tally()
    # (time, order, n, kind, payload): settlements first, then unblocks, then requests
    events = [(r.at, 2, n, "request", r) for n, r in enumerate(stream.requests)]
    events += [(u.at, 1, n, "unblock", u) for n, u in enumerate(stream.unblocks)]
    heapq.heapify(events)
    sequence = 0
    while events:
        at, _, _, kind, payload = heapq.heappop(events)
        now = stream.start + timedelta(seconds=at)
        if kind == "settle":
            card_id, terminal_id, transaction_id, volume = payload
            record = SettleRecord(now, card_id, terminal_id, transaction_id, volume)
            settlements.append(record)
            new_state = _settle(card_states.get(card_id), record)
            if new_state is not None:
                card_states[card_id] = new_state
            continue
        if kind == "unblock":
            blocked.discard(ids.cards[payload.card])
            unblock_records.append(UnblockRecord(now, ids.cards[payload.card]))
            continue
        request: Request = payload
        sequence += 1
        transaction_id = f"{sequence:06d}"
        station = STATIONS[request.station]
        terminal_id, station_id = ids.terminals[request.station], ids.stations[request.station]
        declined_by, reason, skew, card_known = _token_outcome(request, last_ok)
        card = cards.get(request.card) if card_known else None
        card_id = None if card is None else ids.cards[card.key]
        if declined_by is None:
            last_ok[request.card] = request.at + request.skew  # the token's generation time
            if card_id in blocked:
                declined_by, reason = "card", "card_blocked"
            elif card.fuels and request.product in FUELS and request.product not in card.fuels:
                declined_by, reason = "vehicle", "product_not_allowed"
            elif card.max_amount_minor is not None and request.amount_minor > card.max_amount_minor:
                declined_by, reason = "limits", "amount_limit_exceeded"
        amount = volume = 0
        if declined_by is None:
            amount = request.amount_minor
            volume = amount * 1000 // PRICES[request.product] if request.product in PRICES else 0
        context = FraudContext(
            now=now, terminal_id=terminal_id, terminal_transaction_id=transaction_id, station_id=station_id,
            network_id=1, region="RU", station_latitude=station.latitude, station_longitude=station.longitude,
            product=request.product, entry_mode="qr", requested_amount_minor=request.amount_minor,
            amount_minor=amount, volume_ml=volume,
            company_id=None if card is None else company_ids[card.company], card_id=card_id,
            enrollment_id=None if card is None else ids.enrollments[card.key],
            card_created_at=None if card is None else stream.start + timedelta(days=card.created_day),
            local_time=now.astimezone(MOSCOW) if card is not None else None, clock_skew_seconds=skew,
            vehicle_tank_ml=None if card is None else card.tank_ml,
            vehicle_products=() if card is None else card.fuels,
            company_profile=None if card is None else profiles.get(company_ids[card.company]),
            card_state=card_states.get(card_id), terminal_state=terminal_states.get(terminal_id),
            declined_by=declined_by, decline_reason=reason,
        )
        decision = evaluate(ruleset, context)
        if decision.card_state is not None:
            card_states[card_id] = decision.card_state
        if decision.terminal_state is not None:
            terminal_states[terminal_id] = decision.terminal_state
        if decision.verdict is FraudVerdict.BLOCK and card_id is not None:
            blocked.add(card_id)
        approved = declined_by is None and decision.verdict not in (FraudVerdict.DECLINE, FraudVerdict.BLOCK)
        decided_by = declined_by or ("approved" if approved else "fraud")
        authorizations.append(AuthorizationRecord(
            id=sequence, created_at=now, terminal_id=terminal_id, terminal_transaction_id=transaction_id,
            station_id=station_id, company_id=context.company_id, card_id=card_id,
            enrollment_id=context.enrollment_id, product=request.product, decided_by=decided_by,
            decline_reason=reason if declined_by else ("suspected_fraud" if not approved else None),
            clock_skew_seconds=skew, fraud_trace=decision.trace,
        ))
        live.add(decision.trace, on_decline_path=declined_by is not None)
        if approved:
            litres = 0 if request.dispensed_share is None else int(volume * request.dispensed_share)
            heapq.heappush(events, (request.at + request.settle_after, 0, sequence, "settle",
                                    (card_id, terminal_id, transaction_id, litres)))
    return PureRun(authorizations, settlements, unblock_records, live)


def _settle(state, record: SettleRecord):
    from fraud.engine.state import settle

    return settle(state, terminal_id=record.terminal_id, terminal_transaction_id=record.terminal_transaction_id,
                  volume_ml=record.volume_ml)


def replay(run: PureRun, candidate: list[RuleSetting], *, count_from: datetime) -> Replay:
    """The backtest's replay over what the run left behind."""
    result = Replay(RuleSet(candidate), count_from=count_from)
    for record in run.records_in_order():
        result.feed(record)
    return result

