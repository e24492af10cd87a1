"""Property: limits compose down the org tree. For random trees, limits and spend sequences, no
authorization is approved that would exceed any limit that applies to its card (the card's own
and every unit's from the root down to the card's unit), and none is declined by the limits
(61, 65) that fits all of them; with partial approval the approved amount is the most that fits.

Each example builds a fresh company through the real services (a tree one to three units deep
under the root, one or two cards in random leaves, random amount/volume/count limits per
transaction, day, week and month on any unit or card, including units and cards that do not
apply), then pays through the signed terminal HTTP API while the clock moves across days, ISO
weeks and months in the company's time zone.

The oracle knows nothing of the engine or of the counters: it keeps the list of approved
purchases and sums them per scope and calendar period each time. Its rules, from first
principles:

- amount: what the scope spent in the period plus the purchase must not exceed the limit;
- volume (fuels only): a purchase of ``A`` kopecks buys ``A / price`` litres exactly; that must
  fit in what is left of the limit (``A * 1000 <= left_ml * price``). What a purchase counts is
  its whole millilitres, ``A * 1000 // price`` (the hold's volume);
- count: the purchases in the period plus this one must not exceed the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from processing.cards.service import enroll_device, issue_card
from processing.db.engine import unit_of_work
from processing.limits.models import LimitMetric, LimitPeriod, ScopeKind
from processing.limits.service import set_limit
from processing.orgs.service import create_org_unit
from tests.factories import Phone, authorization_message, make_world

MOSCOW = ZoneInfo("Europe/Moscow")  # the company's time zone (create_company's default)
# Friday 27 June 2025, 10:00 in Moscow: a few days of moves cross a week (Monday 30 June) and a
# month (1 July).
START = datetime(2025, 6, 27, 7, 0, tzinfo=UTC)
CAR_WASH_PRICE_MINOR = 50_000  # make_world's price: not sold by volume
MAX_UNITS = 5

# --- the scenario ---------------------------------------------------------------------------

_scope = st.one_of(
    st.tuples(st.just("card"), st.integers(0, 1)),
    st.tuples(st.just("unit"), st.integers(0, MAX_UNITS)),  # 0 is the root
)
_limit = st.one_of(
    st.tuples(_scope, st.just("amount"), st.sampled_from(list(LimitPeriod)), st.integers(0, 700_000)),
    st.tuples(_scope, st.just("volume"), st.sampled_from(list(LimitPeriod)), st.integers(0, 150_000)),
    st.tuples(_scope, st.just("count"), st.sampled_from(list(LimitPeriod)[1:]), st.integers(0, 6)),
)
_pay = st.tuples(
    st.just("pay"), st.integers(0, 1), st.one_of(st.integers(1, 400_000), st.integers(1, 2_000)),
    st.sampled_from(["diesel", "diesel", "car_wash"]), st.booleans(),
)
_advance = st.tuples(st.just("advance"), st.sampled_from([1, 3, 7, 20, 24, 24, 48, 24 * 7, 24 * 31]))

scenarios = st.fixed_dictionaries({
    # Unit k (1..) hangs under an earlier unit with room below it: depth 1..3 under the root.
    "parents": st.lists(st.integers(0, 100), min_size=1, max_size=MAX_UNITS),
    "card_leaves": st.lists(st.integers(0, 100), min_size=1, max_size=2),
    "diesel_price_minor": st.integers(3_000, 12_000),
    "start_offset_hours": st.integers(0, 24 * 5),
    "limits": st.lists(_limit, min_size=1, max_size=7),
    "operations": st.lists(st.one_of(_pay, _pay, _pay, _advance), min_size=3, max_size=14),
})


def build_tree(parent_choices: list[int]) -> tuple[list[int | None], list[int]]:
    """Parents of nodes 0 (root) .. n, each unit at depth 1..3, and the leaves."""
    parents: list[int | None] = [None]
    depth = [0]
    for choice in parent_choices:
        room = [node for node in range(len(parents)) if depth[node] < 3]
        parent = room[choice % len(room)]
        parents.append(parent)
        depth.append(depth[parent] + 1)
    leaves = [node for node in range(1, len(parents)) if node not in parents]
    return parents, leaves


def path_to(node: int, parents: list[int | None]) -> list[int]:
    """Nodes from the root down to ``node``."""
    path = []
    while node is not None:
        path.append(node)
        node = parents[node]
    return path[::-1]


# --- the oracle -----------------------------------------------------------------------------

def period_key(period: str, day: date) -> object:
    if period == "day":
        return day
    if period == "week":
        return day.isocalendar()[:2]  # (ISO year, ISO week): weeks start on Monday
    return day.year, day.month


@dataclass(frozen=True)
class Purchase:
    card: int
    day: date  # company-local date of the authorization
    amount_minor: int
    volume_ml: int  # whole millilitres counted


@dataclass
class Oracle:
    price_minor: int
    card_paths: dict[int, list[int]]  # card -> its unit nodes, root first
    limits: dict[tuple[tuple[str, int], str, str], int]  # (scope, metric, period) -> max
    purchases: list[Purchase] = field(default_factory=list)

    def scopes(self, card: int) -> set[tuple[str, int]]:
        return {("card", card)} | {("unit", node) for node in self.card_paths[card]}

    def applicable(self, card: int) -> list[tuple[str, str, int, tuple[str, int]]]:
        mine = self.scopes(card)
        return [(metric, period, maximum, scope) for (scope, metric, period), maximum in self.limits.items()
                if scope in mine]

    def used(self, scope: tuple[str, int], period: str, day: date) -> tuple[int, int, int]:
        """(amount, volume, count) that ``scope`` spent in the period containing ``day``."""
        amount = volume = count = 0
        for purchase in self.purchases:
            if scope in self.scopes(purchase.card) and period_key(period, purchase.day) == period_key(period, day):
                amount, volume, count = amount + purchase.amount_minor, volume + purchase.volume_ml, count + 1
        return amount, volume, count

    def count_allows(self, card: int, day: date) -> bool:
        return all(self.used(scope, period, day)[2] + 1 <= maximum
                   for metric, period, maximum, scope in self.applicable(card) if metric == "count")

    def limit_allows(self, metric: str, period: str, maximum: int, scope, card: int, amount: int,
                     product: str, day: date) -> bool:
        spent_amount, spent_volume, _ = (0, 0, 0) if period == "transaction" else self.used(scope, period, day)
        if metric == "amount":
            return spent_amount + amount <= maximum
        if metric == "volume":
            if product != "diesel":
                return True
            return amount * 1000 <= (maximum - spent_volume) * self.price_minor  # exact litres fit
        return True

    def fits(self, card: int, amount: int, product: str, day: date) -> bool:
        return all(self.limit_allows(metric, period, maximum, scope, card, amount, product, day)
                   for metric, period, maximum, scope in self.applicable(card))

    def most_that_fits(self, card: int, request: int, product: str, day: date) -> int:
        """The largest amount in 0..request that fits every limit (fitting is monotone: search)."""
        if not self.fits(card, 0, product, day):
            return 0
        low, high = 0, request
        while low < high:
            middle = (low + high + 1) // 2
            if self.fits(card, middle, product, day):
                low = middle
            else:
                high = middle - 1
        return low

    def tight_metrics(self, card: int, amount: int, product: str, day: date) -> set[str]:
        """Metrics of the limits that do not allow one kopeck more than ``amount``."""
        return {metric for metric, period, maximum, scope in self.applicable(card)
                if metric != "count"
                and not self.limit_allows(metric, period, maximum, scope, card, amount + 1, product, day)}

    def volume_of(self, amount: int, product: str) -> int:
        return amount * 1000 // self.price_minor if product == "diesel" else 0


# --- the test -------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
async def test_limits_compose_down_the_tree(state, http, clock, scenario):
    clock.now = START + timedelta(hours=scenario["start_offset_hours"])
    parents, leaves = build_tree(scenario["parents"])
    card_nodes = [leaves[choice % len(leaves)] for choice in scenario["card_leaves"]]
    world = await make_world(state, balance_minor=10**10, tank_capacity_ml=None,
                             diesel_price_minor=scenario["diesel_price_minor"])

    async with unit_of_work(state.sessionmaker) as session:
        unit_ids = [world.root_unit_id]
        for node, parent in enumerate(parents[1:], start=1):
            unit = await create_org_unit(session, company_id=world.company_id, parent_id=unit_ids[parent],
                                         name=f"unit {node}")
            unit_ids.append(unit.id)
        card_ids, phones = [], []
        for node in card_nodes:
            issued = await issue_card(session, state.keyring, company_id=world.company_id,
                                      org_unit_id=unit_ids[node], pan_prefix=state.settings.pan_prefix)
            enrolled = await enroll_device(session, state.keyring, card_id=issued.card.id,
                                           dpan_prefix=state.settings.dpan_prefix)
            card_ids.append(issued.card.id)
            phones.append(Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id))
        limits = {}
        for (kind, index), metric, period, maximum in scenario["limits"]:
            if kind == "card":
                scope = ("card", index % len(card_ids))
                scope_kind, scope_id = ScopeKind.CARD, card_ids[scope[1]]
            else:
                scope = ("unit", index % len(unit_ids))
                scope_kind, scope_id = ScopeKind.ORG_UNIT, unit_ids[scope[1]]
            await set_limit(session, scope_kind=scope_kind, scope_id=scope_id, metric=LimitMetric(metric),
                            period=LimitPeriod(period), max_value=maximum)
            limits[(scope, metric, str(period))] = maximum  # a later limit of the same key replaces it

    oracle = Oracle(price_minor=scenario["diesel_price_minor"],
                    card_paths={card: path_to(node, parents) for card, node in enumerate(card_nodes)},
                    limits=limits)
    terminal = world.terminal(http, clock)

    for operation in scenario["operations"]:
        if operation[0] == "advance":
            clock.advance(operation[1] * 3600)
            continue
        _, card_choice, request, product, partial_allowed = operation
        card = card_choice % len(card_ids)
        day = clock().astimezone(MOSCOW).date()
        reply = await terminal.authorize(**authorization_message(
            phones[card], clock(), amount_minor=request, product=product,
            partial_approval_allowed=partial_allowed))
        assert reply.status_code == 200, reply.body
        body = reply.body
        context = (operation, body, oracle)

        if not oracle.count_allows(card, day):
            event("declined: count")
            assert (body["approved"], body["response_code"], body["decline_reason"]) == (
                False, "65", "frequency_limit_exceeded"), context
            continue
        most = oracle.most_that_fits(card, request, product, day)
        if most == request:
            expected, code = request, "00"
        elif partial_allowed and most > 0:
            expected, code = most, "10"
        else:
            event("declined: amount or volume")
            # Declined: then it really does not fit, and a limit that is tight said so.
            assert not oracle.fits(card, request, product, day)
            assert (body["approved"], body["response_code"]) == (False, "61"), context
            reasons = {f"{metric}_limit_exceeded" for metric in oracle.tight_metrics(card, most, product, day)}
            assert body["decline_reason"] in reasons, context
            continue

        event(f"approved {'in full' if code == '00' else 'in part'}")
        assert body["approved"], context  # it fits every applicable limit: never declined
        assert (body["response_code"], body["approved_amount_minor"]) == (code, expected), context
        assert oracle.fits(card, body["approved_amount_minor"], product, day), context  # never over a limit
        assert body["hold_volume_ml"] == oracle.volume_of(expected, product), context
        oracle.purchases.append(Purchase(card, day, expected, oracle.volume_of(expected, product)))
        # What the counters hold never exceeds a limit either (whole millilitres counted).
        for metric, period, maximum, scope in oracle.applicable(card):
            if metric != "count" and period != "transaction":
                index = 0 if metric == "amount" else 1
                assert oracle.used(scope, period, day)[index] <= maximum, context
