"""The fraud state of cards and terminals: its JSON format and its pure transitions.

The core stores these as opaque JSON (``cards.fraud_state``, ``terminals.fraud_state``) and
never reads them; the live path (``evaluate``) and the backtest advance them with the same
functions here, so a replay rebuilds exactly the states the live path stored.

Times are integer Unix seconds (``attempt.epoch_seconds``). Every list is pruned to the longest
window any rule may use (``MAX_WINDOW_SECONDS``, 24 h: the params models cap windows there) and
capped in length, newest kept. The caps are above the largest threshold a params model allows,
so pruning never changes whether a counting rule fires.

Card state (version 1)::

    {"v": 1,
     "attempts": [t, ...],              # every attempt tied to the card, approved or declined
     "declines": [t, ...],              # the current run of consecutive declines by checks other
                                        #   than the fraud rules; an approval ends it
     "fills": [["<terminal id>:<terminal transaction id>", t, ml], ...],
                                        # approved holds of tank fuels: hold litres until settled,
                                        #   then the dispensed litres (0 once released)
     "last": [station_id, lat, lon, t], # the last station where the token passed every check
     "purchases": n,                    # approved holds ever (saturates at PURCHASES_CAP)
     "anomalies": {"<enrollment id>": [[t, kind] or [t, "skew", seconds], ...]}}

Terminal state (version 1)::

    {"v": 1,
     "cards": [[card_id, t], ...],      # the last attempt of each card seen at the terminal,
                                        #   oldest first
     "anomalies": [[t, kind] or [t, "skew", seconds], ...]}
"""

from __future__ import annotations

from collections.abc import Mapping

from fraud.engine.attempt import Attempt
from processing.products import TANK_PRODUCTS

STATE_VERSION = 1
MAX_WINDOW_SECONDS = 24 * 3600
MAX_ATTEMPTS = 64
MAX_DECLINES = 64
MAX_FILLS = 32
MAX_ENROLLMENTS = 4
MAX_ENROLLMENT_ANOMALIES = 32
MAX_TERMINAL_CARDS = 64
MAX_TERMINAL_ANOMALIES = 128
PURCHASES_CAP = 1_000_000

_EMPTY: Mapping = {}


def fill_key(terminal_id: int, terminal_transaction_id: str) -> str:
    return f"{terminal_id}:{terminal_transaction_id}"


class StateView:
    """The rules' read-only view of the two states before this attempt (no copies)."""

    __slots__ = ("card", "terminal", "enrollment_key")

    def __init__(self, card_state: Mapping | None, terminal_state: Mapping | None,
                 enrollment_id: int | None = None):
        self.card = card_state or _EMPTY
        self.terminal = terminal_state or _EMPTY
        self.enrollment_key = None if enrollment_id is None else str(enrollment_id)

    @property
    def attempts(self) -> list:
        return self.card.get("attempts", ())

    @property
    def declines(self) -> list:
        return self.card.get("declines", ())

    @property
    def fills(self) -> list:
        return self.card.get("fills", ())

    @property
    def last_station(self) -> list | None:
        return self.card.get("last")

    @property
    def purchases(self) -> int:
        return self.card.get("purchases", 0)

    @property
    def enrollment_anomalies(self) -> list:
        if self.enrollment_key is None:
            return ()
        return self.card.get("anomalies", _EMPTY).get(self.enrollment_key, ())

    @property
    def terminal_cards(self) -> list:
        return self.terminal.get("cards", ())

    @property
    def terminal_anomalies(self) -> list:
        return self.terminal.get("anomalies", ())


def _recent(times, cutoff: int, cap: int) -> list:
    kept = [t for t in times if t > cutoff]
    return kept[-cap:] if len(kept) > cap else kept


def _recent_events(events, cutoff: int, cap: int) -> list:
    kept = [event for event in events if event[0] > cutoff]
    return kept[-cap:] if len(kept) > cap else kept


def _anomaly_event(attempt: Attempt) -> list:
    return [attempt.at, *attempt.anomaly]


def next_card_state(state: Mapping | None, attempt: Attempt, *, approved: bool) -> dict:
    """The card's state after ``attempt``, which ended approved (a hold) or declined.

    - ``attempts`` gains every attempt tied to the card, whatever its outcome;
    - ``declines`` gains a decline by any check other than the fraud rules
      (``attempt.declined_by`` set); an approval empties it; a decline by the fraud rules
      themselves neither extends nor ends the run (the rules must not feed on their own output);
    - ``fills`` gains an approved hold of a tank fuel at its hold litres (``settle`` corrects it);
    - ``purchases`` counts approved holds;
    - ``last`` moves to this station when the token passed every token check (``present``);
    - ``anomalies`` of the attempt's enrollment gain a token anomaly.
    """
    state = state or _EMPTY
    now = attempt.at
    cutoff = now - MAX_WINDOW_SECONDS

    attempts = _recent(state.get("attempts", ()), cutoff, MAX_ATTEMPTS - 1)
    attempts.append(now)

    declines = _recent(state.get("declines", ()), cutoff, MAX_DECLINES)
    if attempt.declined_by is not None:
        declines.append(now)
        if len(declines) > MAX_DECLINES:
            del declines[0]
    elif approved:
        declines = []

    fills = _recent_fills(state.get("fills", ()), cutoff, MAX_FILLS)
    purchases = state.get("purchases", 0)
    if approved:
        purchases = min(purchases + 1, PURCHASES_CAP)
        if attempt.product in TANK_PRODUCTS and attempt.volume_ml > 0:
            fills.append([fill_key(attempt.terminal_id, attempt.terminal_transaction_id), now, attempt.volume_ml])
            if len(fills) > MAX_FILLS:
                del fills[0]

    result = {"v": STATE_VERSION, "attempts": attempts}
    if declines:
        result["declines"] = declines
    if fills:
        result["fills"] = fills
    if attempt.present and attempt.latitude is not None and attempt.longitude is not None:
        result["last"] = [attempt.station_id, attempt.latitude, attempt.longitude, now]
    else:
        last = state.get("last")
        if last is not None and last[3] > cutoff:
            result["last"] = last
    if purchases:
        result["purchases"] = purchases

    anomalies = _next_enrollment_anomalies(state.get("anomalies"), attempt, cutoff)
    if anomalies:
        result["anomalies"] = anomalies
    return result


def _recent_fills(fills, cutoff: int, cap: int) -> list:
    """Fills are [key, t, ml]: their time is the second element."""
    kept = [fill for fill in fills if fill[1] > cutoff]
    return kept[-cap:] if len(kept) > cap else kept


def _next_enrollment_anomalies(anomalies: Mapping | None, attempt: Attempt, cutoff: int) -> dict:
    result = {}
    if anomalies:
        for key, events in anomalies.items():
            kept = _recent_events(events, cutoff, MAX_ENROLLMENT_ANOMALIES)
            if kept:
                result[key] = kept
    if attempt.anomaly is not None and attempt.enrollment_id is not None:
        key = str(attempt.enrollment_id)
        events = result.pop(key, [])  # re-inserted last: the newest enrollment stays
        events.append(_anomaly_event(attempt))
        if len(events) > MAX_ENROLLMENT_ANOMALIES:
            del events[0]
        result[key] = events
    while len(result) > MAX_ENROLLMENTS:
        oldest = min(result, key=lambda key: result[key][-1][0])
        del result[oldest]
    return result


def next_terminal_state(state: Mapping | None, attempt: Attempt) -> dict | None:
    """The terminal's state after ``attempt``, or None when the attempt changes nothing.

    ``cards`` records every attempt tied to a card (any outcome); ``anomalies`` every token
    anomaly, also of tokens tied to no card.
    """
    if attempt.card_id is None and attempt.anomaly is None:
        return None
    state = state or _EMPTY
    now = attempt.at
    cutoff = now - MAX_WINDOW_SECONDS
    cards = _next_cards(state.get("cards", ()), attempt.card_id, now, cutoff)
    anomalies = state.get("anomalies", ())
    if anomalies and anomalies[0][0] <= cutoff:
        anomalies = _recent_events(anomalies, cutoff, MAX_TERMINAL_ANOMALIES)
    else:
        anomalies = list(anomalies)
    if attempt.anomaly is not None:
        anomalies.append(_anomaly_event(attempt))
        if len(anomalies) > MAX_TERMINAL_ANOMALIES:
            del anomalies[0]
    result = {"v": STATE_VERSION}
    if cards:
        result["cards"] = cards
    if anomalies:
        result["anomalies"] = anomalies
    return result


def _next_cards(cards: list, card_id: int | None, now: int, cutoff: int) -> list:
    """The terminal's cards with ``card_id`` moved to the end at ``now``; a day old or more, or
    the oldest beyond the cap, dropped. The list stays in order of last sight, so the stale
    entries are at its front."""
    start, size = 0, len(cards)
    while start < size and cards[start][1] <= cutoff:
        start += 1
    kept = [entry for entry in cards[start:] if entry[0] != card_id] if card_id is not None else cards[start:]
    if card_id is not None:
        kept.append([card_id, now])
    if len(kept) > MAX_TERMINAL_CARDS:
        del kept[: len(kept) - MAX_TERMINAL_CARDS]
    return kept


def settle(card_state: Mapping | None, *, terminal_id: int, terminal_transaction_id: str,
           volume_ml: int) -> dict | None:
    """The card's state once the hold ``terminal_id:terminal_transaction_id`` dispensed
    ``volume_ml`` (its completion) or 0 (its reversal or expiry); None when nothing changes
    (no such fill: not a tank fuel, declined, already pruned; or the same litres already)."""
    if not card_state:
        return None
    fills = card_state.get("fills")
    if not fills:
        return None
    key = fill_key(terminal_id, terminal_transaction_id)
    for index, fill in enumerate(fills):
        if fill[0] == key:
            if fill[2] == volume_ml:
                return None
            new_fills = list(fills)
            new_fills[index] = [key, fill[1], volume_ml]
            return {**card_state, "fills": new_fills}
    return None
