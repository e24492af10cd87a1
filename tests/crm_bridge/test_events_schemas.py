"""The payload schemas: one per event type and version, strict (every field required, no other
field allowed), matching the payload builders, and refusing anything that looks like a card number."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import jsonschema
import pytest

from crm_bridge.events.schemas import PAYLOAD_MODELS, all_schemas, main, payload_schema, schema_for
from processing.outbox import payloads
from processing.outbox.catalogue import EventType

CARD = payloads.CardMarks(7, "700512", "4821")
MARKS = payloads.AuthorizationMarks(
    company_id=1, authorization_id=10, terminal_code="T00001", terminal_transaction_id="000451",
    station=payloads.StationMarks(3, "ST0003", "Station 3, Tverskaya 1", 2), card=CARD, driver_id=12,
    org_unit_id=9, product="diesel", currency="RUB", unit_price_minor=6_550,
)
CARD_ROW = SimpleNamespace(id=7, company_id=1, pan_first6="700512", pan_last4="4821", status="blocked",
                           status_reason="phone lost", org_unit_id=9, driver_id=12, vehicle_id=None)
UNIT_SCOPE = payloads.LimitScopeMarks(company_id=1, currency="RUB", scope_kind="org_unit", scope_id=9, org_unit_id=9)
CARD_SCOPE = payloads.LimitScopeMarks(company_id=1, currency="RUB", scope_kind="card", scope_id=7, org_unit_id=9,
                                      card=CARD)
CONTROLS = {"allowed_products": ["diesel"], "allowed_station_ids": None, "allowed_network_ids": [2],
            "allowed_regions": None, "allowed_weekdays": [1, 2, 3], "allowed_hours": [[360, 1320]]}

SAMPLES: list[tuple[EventType, dict]] = [
    (EventType.CARD_ISSUED, payloads.card_issued(SimpleNamespace(**{**vars(CARD_ROW), "status": "active"}))),
    (EventType.CARD_BOUND, payloads.card_holder_changed(CARD_ROW, bound=True, previous_driver_id=None,
                                                        previous_vehicle_id=None, previous_org_unit_id=5,
                                                        revoked_enrollments=0)),
    (EventType.CARD_UNBOUND, payloads.card_holder_changed(
        SimpleNamespace(**{**vars(CARD_ROW), "driver_id": None}), bound=False, previous_driver_id=12,
        previous_vehicle_id=4, previous_org_unit_id=9, revoked_enrollments=1)),
    (EventType.CARD_BLOCKED, payloads.card_status_changed(CARD_ROW, previous_status="active")),
    (EventType.CARD_UNBLOCKED, payloads.card_status_changed(
        SimpleNamespace(**{**vars(CARD_ROW), "status": "active", "status_reason": None}), previous_status="blocked")),
    (EventType.CARD_CLOSED, payloads.card_status_changed(
        SimpleNamespace(**{**vars(CARD_ROW), "status": "closed"}), previous_status="blocked")),
    (EventType.AUTHORIZATION_APPROVED, payloads.authorization_approved(
        MARKS, requested_amount_minor=500_000, amount_minor=300_000, volume_ml=45_801, partial=True,
        response_code="10", entry_mode="nfc", hold_expires_at=datetime(2025, 6, 4, 9, 30, tzinfo=UTC),
        fraud_verdict="approve", journal_entry_id=100)),
    (EventType.AUTHORIZATION_DECLINED, payloads.authorization_declined(
        MARKS, requested_amount_minor=500_000, response_code="51", decline_reason="insufficient_funds",
        reason="not enough money", decided_by="funds", entry_mode="qr")),
    (EventType.AUTHORIZATION_COMPLETED, payloads.authorization_completed(
        MARKS, amount_minor=200_000, volume_ml=30_534, hold_amount_minor=300_000, response_code="00",
        journal_entry_id=101)),
    (EventType.AUTHORIZATION_REVERSED, payloads.hold_released(
        MARKS, source="terminal", amount_minor=300_000, volume_ml=45_801, reason="customer left",
        journal_entry_id=102)),
    (EventType.HOLD_EXPIRED, payloads.hold_released(
        MARKS, source="expiry", amount_minor=300_000, volume_ml=45_801,
        reason="no completion before the hold expired", journal_entry_id=103)),
    (EventType.TOP_UP_CREDITED, payloads.top_up_credited(
        company_id=1, amount_minor=55_013, currency="RUB", journal_entry_id=104, description="bank transfer",
        reference=None)),
    (EventType.TOP_UP_REFUNDED, payloads.top_up_refunded(
        company_id=1, amount_minor=250_000, currency="RUB", journal_entry_id=105,
        description="card top-up refunded", reference="gateway payment gw_1")),
    (EventType.LIMIT_CHANGED, payloads.credit_limit_changed(
        company_id=1, currency="RUB", before_minor=0, after_minor=5_000_000)),
    (EventType.LIMIT_CHANGED, payloads.limits_changed(
        UNIT_SCOPE, before=[], after=[{"metric": "amount", "period": "day", "max_value": 1_500_000}])),
    (EventType.LIMIT_CHANGED, payloads.limits_changed(
        CARD_SCOPE, before=[{"metric": "count", "period": "week", "max_value": 3}], after=[])),
    (EventType.LIMIT_CHANGED, payloads.controls_changed(
        UNIT_SCOPE, before={name: None for name in CONTROLS}, after=CONTROLS)),
    (EventType.LIMIT_CHANGED, payloads.credit_limit_changed(
        company_id=1, currency="RUB", before_minor=0, after_minor=10_000_000)),
]


def validate(event_type: EventType, payload: dict) -> None:
    jsonschema.Draft202012Validator(payload_schema(event_type)).validate(json.loads(json.dumps(payload)))


def test_every_event_type_has_one_valid_strict_schema():
    schemas = all_schemas()
    assert set(PAYLOAD_MODELS) == set(EventType)
    assert set(schemas) == {(event_type.value, event_type.version) for event_type in EventType}
    assert len({schema["$id"] for schema in schemas.values()}) == len(schemas)
    for (event_type, version), schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False, event_type
        assert set(schema["required"]) == set(schema["properties"]), event_type
        assert "operation" in schema["required"] and "company_id" in schema["required"], event_type
        assert schema_for(event_type, version) == schema
    with pytest.raises(KeyError):
        schema_for("card.issued", 99)


@pytest.mark.parametrize(("event_type", "payload"), SAMPLES, ids=lambda value: getattr(value, "value", ""))
def test_every_builder_makes_a_payload_its_schema_accepts(event_type, payload):
    validate(event_type, payload)


def test_every_event_type_has_a_builder_sample():
    assert {event_type for event_type, _ in SAMPLES} == set(EventType)


@pytest.mark.parametrize("change", [
    {"card_last4": "7005121234564821"},  # a whole PAN where the last four belong
    {"card_masked": "7005 1212 3456 4821"},  # an unmasked number
    {"card_masked": "7005121234564821"},
    {"amount_minor": -1},
    {"currency": "rub"},
    {"pan": "7005121234564821"},  # no field beyond the schema
    {"product": "kerosene"},
    {"journal_entry_id": None},  # money moved: the entry must be named
])
def test_a_schema_refuses_a_wrong_payload(change):
    payload = {**dict(SAMPLES)[EventType.AUTHORIZATION_COMPLETED], **change}
    with pytest.raises(jsonschema.ValidationError):
        validate(EventType.AUTHORIZATION_COMPLETED, payload)


def test_a_missing_field_is_refused_even_when_nullable():
    payload = dict(dict(SAMPLES)[EventType.CARD_ISSUED])
    del payload["driver_id"]
    with pytest.raises(jsonschema.ValidationError):
        validate(EventType.CARD_ISSUED, payload)


def test_the_status_of_a_status_event_must_match_its_type():
    blocked = dict(SAMPLES)[EventType.CARD_BLOCKED]
    with pytest.raises(jsonschema.ValidationError):
        validate(EventType.CARD_CLOSED, blocked)


def test_schemas_are_written_as_files(tmp_path, capsys):
    main(["--out", str(tmp_path / "schemas")])

    files = sorted(path.name for path in (tmp_path / "schemas").iterdir())
    assert files == sorted(f"{event_type.value}.v{event_type.version}.json" for event_type in EventType)
    written = json.loads((tmp_path / "schemas" / "authorization.completed.v1.json").read_text(encoding="utf-8"))
    assert written == payload_schema(EventType.AUTHORIZATION_COMPLETED)
    assert "authorization.completed.v1.json" in capsys.readouterr().out
