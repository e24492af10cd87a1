"""Event payloads: what accounting and the CRM read, built from data the writer already holds.

Every payload says which ``operation`` it books ("hold", "capture", "release", "decline",
"top_up", "card_issue", "card_bind", "card_unbind", "card_status", "limit") and carries the
markers needed to book it without asking back: amounts in kopecks with their currency, litres in
millilitres, product, station (id, code, name, network), card (id, last four, masked number),
driver, org unit, authorization and terminal transaction ids, response code and decline reason,
and the journal entry id wherever money moved (None where it did not). Never a PAN or a DPAN:
the card is named by its last four digits and the masked number only.

The JSON Schema of each payload (crm_bridge.events.schemas) is generated from pydantic models
that mirror these builders; the tests validate every payload the real flows write against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processing.cards.numbers import masked_card_number


class Operation:
    """The ``operation`` marker of each payload."""

    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    DECLINE = "decline"
    TOP_UP = "top_up"
    TOP_UP_REFUND = "top_up_refund"
    CARD_ISSUE = "card_issue"
    CARD_BIND = "card_bind"
    CARD_UNBIND = "card_unbind"
    CARD_STATUS = "card_status"
    LIMIT = "limit"


# Operations that move money and appear in the accounting register.
MONEY_OPERATIONS = (Operation.TOP_UP, Operation.TOP_UP_REFUND, Operation.HOLD, Operation.CAPTURE,
                    Operation.RELEASE)


@dataclass(frozen=True, slots=True)
class CardMarks:
    """A card as events name it: id, last four digits, masked number."""

    card_id: int
    first6: str
    last4: str

    def fields(self) -> dict[str, Any]:
        return {"card_id": self.card_id, "card_last4": self.last4,
                "card_masked": masked_card_number(self.first6, self.last4)}


@dataclass(frozen=True, slots=True)
class StationMarks:
    station_id: int
    code: str
    name: str
    network_id: int

    def fields(self) -> dict[str, Any]:
        return {"station_id": self.station_id, "station_code": self.code, "station_name": self.name,
                "network_id": self.network_id}


@dataclass(frozen=True, slots=True)
class AuthorizationMarks:
    """What every authorization event repeats: who paid where, for what."""

    company_id: int
    authorization_id: int
    terminal_code: str
    terminal_transaction_id: str
    station: StationMarks
    card: CardMarks
    driver_id: int | None
    org_unit_id: int
    product: str
    currency: str
    unit_price_minor: int | None

    def fields(self) -> dict[str, Any]:
        return {
            "company_id": self.company_id, "authorization_id": self.authorization_id,
            "terminal_code": self.terminal_code, "terminal_transaction_id": self.terminal_transaction_id,
            **self.station.fields(), **self.card.fields(), "driver_id": self.driver_id,
            "org_unit_id": self.org_unit_id, "product": self.product, "currency": self.currency,
            "unit_price_minor": self.unit_price_minor,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- authorizations --------------------------------------------------------------------------

def authorization_approved(
    marks: AuthorizationMarks, *, requested_amount_minor: int, amount_minor: int, volume_ml: int,
    partial: bool, response_code: str, entry_mode: str, hold_expires_at: datetime,
    fraud_verdict: str | None, journal_entry_id: int,
) -> dict[str, Any]:
    """A hold: ``amount_minor`` moved from the company's available money to its held money."""
    return {
        "operation": Operation.HOLD, **marks.fields(), "requested_amount_minor": requested_amount_minor,
        "amount_minor": amount_minor, "volume_ml": volume_ml, "partial": partial,
        "response_code": str(response_code), "entry_mode": entry_mode, "hold_expires_at": _iso(hold_expires_at),
        "fraud_verdict": fraud_verdict, "journal_entry_id": journal_entry_id,
    }


def authorization_declined(
    marks: AuthorizationMarks, *, requested_amount_minor: int, response_code: str, decline_reason: str,
    reason: str, decided_by: str, entry_mode: str,
) -> dict[str, Any]:
    """A refusal: nothing moved, so no journal entry."""
    return {
        "operation": Operation.DECLINE, **marks.fields(), "requested_amount_minor": requested_amount_minor,
        "amount_minor": 0, "volume_ml": 0, "response_code": str(response_code), "decline_reason": decline_reason,
        "reason": reason, "decided_by": decided_by, "entry_mode": entry_mode, "journal_entry_id": None,
    }


def authorization_completed(
    marks: AuthorizationMarks, *, amount_minor: int, volume_ml: int, hold_amount_minor: int,
    response_code: str, journal_entry_id: int,
) -> dict[str, Any]:
    """A sale: ``amount_minor`` captured for the station network, the rest of the hold released."""
    return {
        "operation": Operation.CAPTURE, **marks.fields(), "amount_minor": amount_minor, "volume_ml": volume_ml,
        "hold_amount_minor": hold_amount_minor, "released_amount_minor": hold_amount_minor - amount_minor,
        "response_code": str(response_code), "journal_entry_id": journal_entry_id,
    }


def hold_released(
    marks: AuthorizationMarks, *, source: str, amount_minor: int, volume_ml: int, reason: str,
    journal_entry_id: int,
) -> dict[str, Any]:
    """A whole hold given back, by the terminal's reversal or by expiry."""
    return {
        "operation": Operation.RELEASE, **marks.fields(), "source": source, "amount_minor": amount_minor,
        "volume_ml": volume_ml, "reason": reason, "journal_entry_id": journal_entry_id,
    }


# --- money in --------------------------------------------------------------------------------

def top_up_credited(
    *, company_id: int, amount_minor: int, currency: str, journal_entry_id: int, description: str,
    reference: str | None,
) -> dict[str, Any]:
    return {
        "operation": Operation.TOP_UP, "company_id": company_id, "amount_minor": amount_minor,
        "currency": currency, "journal_entry_id": journal_entry_id, "description": description,
        "reference": reference,
    }


def top_up_refunded(
    *, company_id: int, amount_minor: int, currency: str, journal_entry_id: int, description: str,
    reference: str | None,
) -> dict[str, Any]:
    """A card top-up the gateway gave back: the reverse of top_up_credited."""
    return {**top_up_credited(company_id=company_id, amount_minor=amount_minor, currency=currency,
                              journal_entry_id=journal_entry_id, description=description, reference=reference),
            "operation": Operation.TOP_UP_REFUND}


# --- cards -----------------------------------------------------------------------------------

def _card(card) -> CardMarks:
    return CardMarks(card.id, card.pan_first6, card.pan_last4)


def card_issued(card) -> dict[str, Any]:
    """``card`` is a processing.cards.models.Card just issued."""
    return {
        "operation": Operation.CARD_ISSUE, "company_id": card.company_id, **_card(card).fields(),
        "status": str(card.status), "org_unit_id": card.org_unit_id, "driver_id": card.driver_id,
        "vehicle_id": card.vehicle_id,
    }


def card_holder_changed(card, *, bound: bool, previous_driver_id: int | None, previous_vehicle_id: int | None,
                        previous_org_unit_id: int, revoked_enrollments: int) -> dict[str, Any]:
    """Bound to a driver (or vehicle), or unbound: who holds the card now and who held it before."""
    return {
        "operation": Operation.CARD_BIND if bound else Operation.CARD_UNBIND, "company_id": card.company_id,
        **_card(card).fields(), "org_unit_id": card.org_unit_id, "driver_id": card.driver_id,
        "vehicle_id": card.vehicle_id, "previous_org_unit_id": previous_org_unit_id,
        "previous_driver_id": previous_driver_id, "previous_vehicle_id": previous_vehicle_id,
        "revoked_enrollments": revoked_enrollments,
    }


def card_status_changed(card, *, previous_status: str) -> dict[str, Any]:
    return {
        "operation": Operation.CARD_STATUS, "company_id": card.company_id, **_card(card).fields(),
        "status": str(card.status), "previous_status": str(previous_status), "reason": card.status_reason,
        "org_unit_id": card.org_unit_id, "driver_id": card.driver_id,
    }


# --- limits ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LimitScopeMarks:
    """Whose limits changed: a card (with its unit), an org unit, or the company (credit limit)."""

    company_id: int
    currency: str
    scope_kind: str  # "card" | "org_unit" | "company"
    scope_id: int
    org_unit_id: int | None
    card: CardMarks | None = None

    def fields(self) -> dict[str, Any]:
        card = self.card.fields() if self.card else {"card_id": None, "card_last4": None, "card_masked": None}
        return {"company_id": self.company_id, "currency": self.currency, "scope_kind": self.scope_kind,
                "scope_id": self.scope_id, "org_unit_id": self.org_unit_id, **card}


_NO_CHANGE: dict[str, Any] = {
    "limits_before": None, "limits_after": None, "controls_before": None, "controls_after": None,
    "credit_limit_before_minor": None, "credit_limit_after_minor": None,
}


def limits_changed(scope: LimitScopeMarks, *, before: Sequence[dict], after: Sequence[dict]) -> dict[str, Any]:
    """The scope's whole limit set before and after; each {metric, period, max_value} (kopecks, ml
    or a count)."""
    return {"operation": Operation.LIMIT, "change": "limits", **scope.fields(),
            **_NO_CHANGE, "limits_before": list(before), "limits_after": list(after)}


def controls_changed(scope: LimitScopeMarks, *, before: dict, after: dict) -> dict[str, Any]:
    """The scope's spending controls before and after (None in a field: no restriction)."""
    return {"operation": Operation.LIMIT, "change": "controls", **scope.fields(),
            **_NO_CHANGE, "controls_before": dict(before), "controls_after": dict(after)}


def credit_limit_changed(*, company_id: int, currency: str, before_minor: int, after_minor: int) -> dict[str, Any]:
    """A company's credit limit (how far its available money may go below zero) changed."""
    scope = LimitScopeMarks(company_id=company_id, currency=currency, scope_kind="company",
                            scope_id=company_id, org_unit_id=None)
    return {"operation": Operation.LIMIT, "change": "credit_limit", **scope.fields(), **_NO_CHANGE,
            "credit_limit_before_minor": before_minor, "credit_limit_after_minor": after_minor}
