"""A generated month of authorizations through the real terminal API with the rules live; the
backtest over that database gives exactly the live counts, and a stricter rule set backtested
over it gives exactly what that set does live over the same requests in a fresh database."""

from __future__ import annotations

import heapq
import secrets
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from fraud.backtest import Tally, run_backtest
from fraud.engine.outcomes import effect_of
from fraud.engine.ruleset import RuleSet
from processing import tokens
from processing.authorization.models import Authorization
from processing.cards.models import Card, CardStatus
from processing.cards.status import block_card, unblock_card
from processing.db.engine import unit_of_work
from processing.risk.models import FraudAlert
from processing.terminal_api.client import TerminalClient
from tests.conftest import _empty_tables
from tests.fraud.stream import PRICES, Request, Stream, default_rules, generate, stricter_rules
from tests.fraud.stream_world import StreamWorld, build_world, store_rules

# A month before the test's wall-clock time: the clock walks through it.
DAYS = 30


def _stream() -> Stream:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return generate(today - timedelta(days=DAYS + 2), days=DAYS, purchases_per_day=14)


class Player:
    """Plays the stream's requests through the terminal API at their times."""

    def __init__(self, state, http, clock, stream: Stream, world: StreamWorld):
        self.state, self.http, self.clock, self.stream, self.world = state, http, clock, stream, world
        self.terminals = {key: TerminalClient(http, terminal_code=code, key=key_bytes, clock=clock.timestamp)
                          for key, (code, key_bytes) in world.terminals.items()}
        self.replies: Counter = Counter()
        self.sequence = 0

    async def play(self) -> None:
        events = [(r.at, 2, n, "request", r) for n, r in enumerate(self.stream.requests)]
        events += [(u.at, 1, n, "unblock", u) for n, u in enumerate(self.stream.unblocks)]
        heapq.heapify(events)
        while events:
            at, _, n, kind, payload = heapq.heappop(events)
            self.clock.now = self.stream.start + timedelta(seconds=at)
            if kind == "request":
                settle = await self.authorize(payload)
                if settle is not None:
                    heapq.heappush(events, (at + payload.settle_after, 0, n, "settle", settle))
            elif kind == "settle":
                await self.settle(*payload)
            else:
                await self.unblock(payload.card)

    def token(self, request: Request) -> str:
        now = int(self.clock.now.timestamp())
        if request.token == "unknown":
            stranger = tokens.make_token(secrets.token_bytes(32), atc=1, generated_at=now,
                                         dpan=tokens.generate_card_number(self.state.settings.dpan_prefix))
            return tokens.encode_qr_payload(stranger)
        if request.token == "malformed":
            return "AAAAAAAAAAAA"
        if request.token == "replay":
            return self.world.last_tokens[request.card]
        phone = self.world.phones[request.card]
        generated_at = {"expired": now - 400, "ahead": now + 120}.get(request.token, now + request.skew)
        token = phone.token(self.clock.now, generated_at=generated_at)
        if request.token == "cryptogram":
            genuine = tokens.decode_qr_payload(token)
            flipped = bytes([genuine.cryptogram[0] ^ 0x01]) + genuine.cryptogram[1:]
            return tokens.encode_qr_payload(replace(genuine, cryptogram=flipped))
        if request.token == "ok":
            self.world.last_tokens[request.card] = token
        return token

    async def authorize(self, request: Request):
        self.sequence += 1
        transaction_id = f"{self.sequence:06d}"
        terminal = self.terminals[request.station]
        reply = await terminal.authorize(
            terminal_transaction_id=transaction_id, token=self.token(request), entry_mode="qr",
            product=request.product, amount_minor=request.amount_minor, currency="RUB")
        assert reply.status_code == 200, reply.body
        self.replies[(reply.body["response_code"], reply.body["decline_reason"])] += 1
        if not reply.body["approved"]:
            return None
        volume = 0 if request.dispensed_share is None else int(reply.body["hold_volume_ml"] * request.dispensed_share)
        return terminal, transaction_id, request.product, volume

    async def settle(self, terminal: TerminalClient, transaction_id: str, product: str, volume: int) -> None:
        if volume:
            reply = await terminal.complete(transaction_id, amount_minor=volume * PRICES[product] // 1000,
                                            volume_ml=volume, product=product)
        else:
            reply = await terminal.reverse(transaction_id)
        assert reply.status_code == 200, reply.body

    async def unblock(self, card_key: int) -> None:
        """An officer's unblock. A card that is not blocked is blocked and unblocked at once, so the
        unblock happens in every run whatever the rules did before (the backtest replays it)."""
        card_id, now = self.world.ids.cards[card_key], self.clock.now
        async with unit_of_work(self.state.sessionmaker) as session:
            status = await session.scalar(select(Card.status).where(Card.id == card_id))
            if status != CardStatus.BLOCKED:
                await block_card(session, card_id=card_id, reason="officer's check", now=now)
            await unblock_card(session, card_id=card_id, now=now)


async def _run_live(state, http, clock, stream: Stream, settings_for, *, tag: str) -> tuple[StreamWorld, Player]:
    # Fresh terminal codes in each run: the host caches terminal keys by code.
    world = await build_world(state, stream, tag=tag)
    await store_rules(state, settings_for(world), now=stream.start)
    state.fraud_rules.invalidate()
    player = Player(state, http, clock, stream, world)
    await player.play()
    return world, player


async def _backtest(state, candidate, stream: Stream):
    async with unit_of_work(state.readonly_sessionmaker) as session:
        return await run_backtest(session, candidate=candidate, days=DAYS - 1, now=stream.end)


async def _stored_facts(state) -> dict:
    """Counts read from the rows the live path wrote, independent of the backtest's reading."""
    async with unit_of_work(state.sessionmaker) as session:
        alerts = dict((await session.execute(
            select(FraudAlert.rule_code, func.count()).group_by(FraudAlert.rule_code))).all())
        decided = dict((await session.execute(
            select(Authorization.decided_by, func.count()).group_by(Authorization.decided_by))).all())
        traces = (await session.execute(select(Authorization.decided_by, Authorization.fraud_trace))).all()
    everything, alerts_by_trace = Tally(), Counter()
    for decided_by, trace in traces:
        on_decline_path = decided_by not in ("approved", "fraud")
        everything.add(trace, on_decline_path=on_decline_path)
        for entry in trace["rules"]:
            if entry["fired"] and effect_of(entry["outcome"], on_decline_path=on_decline_path) != "approve":
                alerts_by_trace[entry["rule"]] += 1
    return {"alerts": alerts, "alerts_by_trace": dict(alerts_by_trace), "decided": decided, "all": everything}


async def test_backtest_of_a_generated_month_equals_the_rules_live(state, http, clock, database_url):
    stream = _stream()

    # 1. The stricter set live, in this (fresh) database.
    strict_world, strict_player = await _run_live(
        state, http, clock, stream, lambda world: stricter_rules(company_override_for=world.ids.companies[1]),
        tag="s")
    strict_live = (await _backtest(state, RuleSet(stricter_rules(
        company_override_for=strict_world.ids.companies[1])), stream)).live
    assert strict_player.replies[("62", "card_blocked")] > 0  # its blocks stopped later purchases

    # 2. A fresh database: the shipped rules live over the same requests.
    await _empty_tables(database_url)
    world, player = await _run_live(
        state, http, clock, stream, lambda world: default_rules(company_override_for=world.ids.companies[1]),
        tag="d")
    live_rules = RuleSet(default_rules(company_override_for=world.ids.companies[1]))

    same = await _backtest(state, live_rules, stream)
    assert same.candidate == same.live
    assert same.skipped_without_trace == 0 and same.warm_up_authorizations > 0
    stored = await _stored_facts(state)
    assert stored["all"].authorizations == same.live.authorizations + same.warm_up_authorizations
    # The traces agree with the alerts and the declines the core stored beside them.
    whole_month = stored["all"]
    assert stored["alerts"] == stored["alerts_by_trace"]
    assert sum(stored["alerts"].values()) == whole_month.alerts
    assert stored["decided"].get("fraud", 0) == whole_month.declined_by_rules
    assert set(same.live.by_rule) == {setting.code for setting in default_rules()}  # every rule fired

    stricter = await _backtest(state, RuleSet(stricter_rules(company_override_for=world.ids.companies[1])), stream)
    assert stricter.candidate == strict_live
    assert stricter.candidate.declined_by_rules > same.candidate.declined_by_rules
    assert stricter.live == same.live

