"""How much the fraud rules add to one authorization: ``check()`` per call, all ten rules enabled,
over realistic full states, against the no-rules hook. A one-off measurement, not a test.

    python -m loadtests.fraud_rules_bench [--calls 50000] [--cards 10000] [--terminals 60]

The states come from the engine's own transitions: a warm-up drives a fleet of cards through a
busy day at a few dozen terminals (attempts, declines, token anomalies, completions), so card
states hold a day of history and every terminal's state is full (its card list at the cap).
Each measured call then takes a random card and terminal, checks, and stores the states it
returns, as the hot path does. Printed: µs per call (median, p99), calls/s, and the JSON sizes
the core reads and writes per decision (card state, terminal state, trace).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from fraud.engine.plugin import FraudRulesEngine
from fraud.engine.profile import build_profile
from fraud.engine.ruleset import RuleSet
from fraud.engine.state import MAX_TERMINAL_CARDS
from processing.authorization.fraud_hook import FraudContext, NoFraudRules

MOSCOW = ZoneInfo("Europe/Moscow")
START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 06:00 in Moscow, a Monday
DECLINES = [("funds", "insufficient_funds"), ("limits", "amount_limit_exceeded"),
            ("token", "token_replayed"), ("token", "token_expired"), ("token", "bad_cryptogram")]


class Fleet:
    def __init__(self, rng: random.Random, cards: int, terminals: int):
        self.rng = rng
        self.cards = [
            {"card_id": n + 1, "company_id": 1 + n % 20, "enrollment_id": 10_000 + n,
             "created_at": START - timedelta(days=rng.randint(1, 900)),
             "tank_ml": rng.choice((50_000, 60_000, 80_000, 400_000)), "fuels": ("diesel",)}
            for n in range(cards)
        ]
        # Four cities, the stations of each within ~15 km; a card buys in its own city, and
        # one purchase in a hundred is in another city (an honest long trip, or not).
        cities = [(55.75, 37.62), (59.93, 30.34), (56.33, 44.00), (55.79, 49.11)]
        self.stations = [(1 + t, cities[t % 4][0] + rng.uniform(-0.1, 0.1), cities[t % 4][1] + rng.uniform(-0.15, 0.15))
                         for t in range(terminals)]
        for card in self.cards:
            card["city"] = card["card_id"] % 4
        # Day-shift fleets: purchases on weekdays between 06:00 and 22:00 local time, a few at
        # night and at weekends.
        shape = [2 if day >= 5 or hour < 6 or hour >= 22 else 60 for day in range(7) for hour in range(24)]
        self.profiles = {company: build_profile([rng.randint(w // 2, w) for w in shape],
                                                typical_amount_minor=250_000) for company in range(1, 21)}
        self.card_states: dict[int, dict] = {}
        self.terminal_states: dict[int, dict] = {}
        self.sequence = 0

    def context(self, now: datetime) -> FraudContext:
        rng = self.rng
        card = rng.choice(self.cards)
        city = card["city"] if rng.random() < 0.99 else rng.randrange(4)
        station_id, latitude, longitude = rng.choice(self.stations[city::4])
        self.sequence += 1
        declined = rng.random() < 0.08
        declined_by, reason = rng.choice(DECLINES) if declined else (None, None)
        # A hold for 30-80 % of the tank at 65.50 RUB per litre.
        amount = 0 if declined else int(card["tank_ml"] * rng.uniform(0.3, 0.8)) * 6_550 // 1000
        return FraudContext(
            now=now, terminal_id=station_id, terminal_transaction_id=f"{self.sequence:08d}",
            station_id=station_id, network_id=1, region="RU-MOW", station_latitude=latitude,
            station_longitude=longitude, product="diesel", entry_mode="qr", requested_amount_minor=amount,
            amount_minor=amount, volume_ml=amount * 1000 // 6_550, company_id=card["company_id"],
            card_id=card["card_id"], enrollment_id=card["enrollment_id"], driver_id=card["card_id"],
            card_created_at=card["created_at"], local_time=now.astimezone(MOSCOW),
            clock_skew_seconds=None if reason == "bad_cryptogram" else rng.randint(-100, 5),
            vehicle_tank_ml=card["tank_ml"], vehicle_products=card["fuels"],
            company_profile=self.profiles[card["company_id"]],
            card_state=self.card_states.get(card["card_id"]), terminal_state=self.terminal_states.get(station_id),
            declined_by=declined_by, decline_reason=reason,
        )

    def store(self, context: FraudContext, decision, engine) -> None:
        if decision.card_state is not None:
            self.card_states[context.card_id] = decision.card_state
            # Most holds complete soon after: settle them as the completion would.
            if context.volume_ml and self.rng.random() < 0.9:
                settled = engine.settle(decision.card_state, terminal_id=context.terminal_id,
                                        terminal_transaction_id=context.terminal_transaction_id,
                                        volume_ml=int(context.volume_ml * self.rng.uniform(0.6, 1.0)))
                if settled is not None:
                    self.card_states[context.card_id] = settled
        if decision.terminal_state is not None:
            self.terminal_states[context.terminal_id] = decision.terminal_state


def measure(check, fleet: Fleet, engine, *, calls: int, now: datetime, step: timedelta, store: bool):
    timings, alerts = [], 0
    for _ in range(calls):
        local = now.astimezone(MOSCOW)
        if local.weekday() >= 5:
            now += timedelta(days=7 - local.weekday())  # the fleets rest at weekends
        elif not 6 <= local.hour < 22:
            now += timedelta(hours=8)  # and at night: traffic on weekdays between 06:00 and 22:00
        context = fleet.context(now)
        started = time.perf_counter_ns()
        decision = check(context)
        timings.append(time.perf_counter_ns() - started)
        alerts += len(decision.alerts)
        if store:
            fleet.store(context, decision, engine)
        now += step
    return timings, now, alerts


def report(name: str, timings: list[int]) -> tuple[float, float]:
    ordered = sorted(timings)
    median = statistics.median(ordered) / 1000
    p99 = ordered[int(len(ordered) * 0.99)] / 1000
    mean = sum(ordered) / len(ordered) / 1000
    print(f"{name:<28} median {median:7.1f} µs   p99 {p99:7.1f} µs   mean {mean:7.1f} µs   "
          f"{1e6 / mean:10,.0f} calls/s")
    return median, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--terminals", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()

    fleet = Fleet(random.Random(arguments.seed), arguments.cards, arguments.terminals)
    engine = FraudRulesEngine()
    engine.use(RuleSet.defaults())
    # Warm-up: a day of traffic (one decision every 4 s) fills every state.
    step = timedelta(seconds=4)
    _, now, _ = measure(engine.check, fleet, engine, calls=16 * 3600 // 4, now=START, step=step, store=True)
    full = sum(len(s.get("cards", ())) >= MAX_TERMINAL_CARDS for s in fleet.terminal_states.values())
    attempts = statistics.mean(len(s["attempts"]) for s in fleet.card_states.values())
    print(f"rules: {len(engine.ruleset.rules_for(1))} enabled; {len(fleet.card_states)} card states "
          f"(mean {attempts:.1f}, max {max(len(s['attempts']) for s in fleet.card_states.values())} attempts in 24 h); {full}/{len(fleet.terminal_states)} terminal states at the "
          f"{MAX_TERMINAL_CARDS}-card cap")

    gc.collect()
    timings, now, alerts = measure(engine.check, fleet, engine, calls=arguments.calls, now=now, step=step,
                                   store=True)
    rules_median, rules_p99 = report("check(), ten rules", timings)
    print(f"  (alerts raised: {alerts} in {arguments.calls} decisions)")
    baseline = NoFraudRules()
    timings, _, _ = measure(baseline.check, fleet, engine, calls=arguments.calls, now=now, step=step, store=False)
    none_median, _ = report("check(), NoFraudRules", timings)
    print(f"added by the rules: {rules_median - none_median:.1f} µs median, {rules_p99:.1f} µs p99 per authorization")

    sample = [fleet.context(now) for _ in range(1000)]
    decisions = [engine.check(context) for context in sample]
    sizes = {
        "card state": [len(json.dumps(d.card_state)) for d in decisions if d.card_state],
        "terminal state": [len(json.dumps(d.terminal_state)) for d in decisions if d.terminal_state],
        "trace": [len(json.dumps(d.trace)) for d in decisions],
    }
    print("JSON written per decision (bytes, median / max): " + ", ".join(
        f"{name} {statistics.median(values):.0f} / {max(values)}" for name, values in sizes.items()))
    # The core reads the two states and writes them back with the trace: with SQLAlchemy's
    # default serializer (the standard json module) and with orjson, for comparison.
    encoded = [(json.dumps(d.card_state), json.dumps(d.terminal_state)) for d in decisions]
    for name, dumps, loads in (("json", json.dumps, json.loads), ("orjson", orjson.dumps, orjson.loads)):
        started = time.perf_counter_ns()
        for decision, (card_text, terminal_text) in zip(decisions, encoded, strict=True):
            loads(card_text)
            loads(terminal_text)
            dumps(decision.card_state)
            dumps(decision.terminal_state)
            dumps(decision.trace)
        elapsed = (time.perf_counter_ns() - started) / len(decisions) / 1000
        print(f"reading the states and writing them and the trace with {name}: {elapsed:.1f} µs per decision")


if __name__ == "__main__":
    main()
