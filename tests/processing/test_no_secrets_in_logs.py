"""No log line written during a whole terminal flow (issuing, authorize, declines, completion,
reversal, refusals, bad requests, hold expiry) carries a card number, a device token number, a
payment token or a key, even with every logger, SQL included, at DEBUG."""

from __future__ import annotations

import base64
import logging
import re
import secrets

import orjson

from processing import tokens
from processing.authorization.lifecycle import expire_stale_holds
from processing.db.engine import unit_of_work
from processing.tokens import is_luhn_valid
from tests.factories import authorization_message, make_world

AUTHORIZE = "/v1/terminal/authorizations"
# A run of 13 or more digits standing on its own. Runs inside a longer word are left out: a
# SHA-256 hex digest (the stored request digest) often holds one, Luhn-valid one time in ten.
# The card's own numbers are looked for everywhere, embedded or not, by the exact checks.
CARD_NUMBER_RUN = re.compile(r"(?<![0-9A-Za-z_])\d{13,}(?![0-9A-Za-z_])")


def spellings(key: bytes) -> list[str]:
    """The ways a key could end up in a log line."""
    return [
        key.hex(), key.hex().upper(), repr(key),
        base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode(),
        base64.b64encode(key).decode().rstrip("="), base64.urlsafe_b64encode(key).decode().rstrip("="),
    ]


def texts_of(record: logging.LogRecord) -> list[str]:
    """The message as formatted, each argument on its own, and any traceback."""
    texts = [record.getMessage(), str(record.msg)]
    args = record.args.values() if isinstance(record.args, dict) else (record.args or ())
    for arg in args:
        texts += [str(arg), repr(arg)]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        texts.append(record.exc_text)
    return texts


async def run_the_flow(state, http, clock, world) -> list[str]:
    """Every kind of terminal message and refusal once; returns the payment tokens sent."""
    terminal = world.terminal(http, clock)
    sent_tokens = []

    def message(**changes):
        built = authorization_message(world.phone, clock(), **changes)
        sent_tokens.append(built["token"])
        return built

    approved = message(amount_minor=300_000)
    assert (await terminal.authorize(**approved)).body["approved"] is True
    assert (await terminal.authorize(**approved)).status_code == 200  # repeat
    reused = await terminal.authorize(**{**approved, "amount_minor": 1})
    assert reused.status_code == 409
    replay = await terminal.authorize(**{**approved, "terminal_transaction_id": "REPLAY-1"})
    assert replay.body["decline_reason"] == "token_replayed"
    too_much = await terminal.authorize(**message(amount_minor=390_000))
    assert too_much.body["decline_reason"] == "insufficient_funds", too_much.body
    forged = tokens.encode_qr_payload(tokens.make_token(
        secrets.token_bytes(32), dpan=world.phone.dpan, atc=10_000, generated_at=int(clock().timestamp())))
    sent_tokens.append(forged)
    bad = await terminal.authorize(**{**message(), "token": forged})
    assert bad.body["decline_reason"] == "bad_cryptogram"
    ahead = world.phone.token(clock(), generated_at=int(clock().timestamp()) + 3600)
    sent_tokens.append(ahead)
    clock_ahead = await terminal.authorize(**{**message(), "token": ahead})
    assert clock_ahead.body["decline_reason"] == "clock_ahead"
    nfc = world.phone.token(clock(), unpredictable_number=bytes.fromhex("01020304"))
    sent_tokens.append(nfc)
    mismatch = await terminal.authorize(**{**message(), "token": nfc, "entry_mode": "nfc",
                                           "unpredictable_number": "05060708"})
    assert mismatch.body["decline_reason"] == "unpredictable_number_mismatch"
    malformed = await terminal.authorize(**{**message(), "token": world.phone.dpan + "=="})
    assert malformed.body["decline_reason"] == "invalid_token"

    transaction_id = approved["terminal_transaction_id"]
    above = await terminal.complete(transaction_id, amount_minor=300_001, volume_ml=45_802, product="diesel")
    assert above.status_code == 409
    done = await terminal.complete(transaction_id, amount_minor=196_500, volume_ml=30_000, product="diesel")
    assert done.status_code == 200, done.body
    assert (await terminal.reverse(transaction_id)).status_code == 409
    assert (await terminal.status(transaction_id)).status_code == 200

    second = message(amount_minor=100_000)
    assert (await terminal.authorize(**second)).body["approved"] is True
    assert (await terminal.reverse(second["terminal_transaction_id"])).status_code == 200
    assert (await terminal.reverse(second["terminal_transaction_id"])).status_code == 200
    assert (await terminal.reverse("VOID-1")).body["status"] == "voided"

    third = message(amount_minor=50_000)
    assert (await terminal.authorize(**third)).body["approved"] is True
    clock.advance(state.settings.hold_expiry_seconds + 1)
    async with unit_of_work(state.sessionmaker) as session:
        assert await expire_stale_holds(session, now=clock(), fraud_rules=state.fraud_rules) == 1
    expired = await terminal.complete(third["terminal_transaction_id"], amount_minor=1_965, volume_ml=300,
                                      product="diesel")
    assert expired.status_code == 409

    # Bad requests: unsigned, badly signed, malformed, invalid, unknown terminal.
    body = orjson.dumps(message())
    headers = terminal.signed_headers("POST", AUTHORIZE, body)
    assert (await http.post(AUTHORIZE, content=body)).status_code == 401
    assert (await http.post(AUTHORIZE, content=body + b" ", headers=headers)).status_code == 401
    assert (await http.post(AUTHORIZE, content=b"{" + body, headers=terminal.signed_headers(
        "POST", AUTHORIZE, b"{" + body))).status_code == 400
    invalid = orjson.dumps({**message(), "amount_minor": "1", "pan": world.pan})
    assert (await http.post(AUTHORIZE, content=invalid, headers=terminal.signed_headers(
        "POST", AUTHORIZE, invalid))).status_code == 422
    assert (await http.post(AUTHORIZE, content=body, headers={**headers, "X-Terminal-Id": "T-NONE"})).status_code == 401
    return sent_tokens


async def test_no_card_number_token_or_key_in_any_log_line(state, http, clock, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy sets its own loggers to WARN
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")

    world = await make_world(state, balance_minor=500_000)
    sent_tokens = await run_the_flow(state, http, clock, world)

    records = caplog.records
    # The capture really saw the SQL (with its parameters) and the host's own lines.
    assert any(r.name.startswith("sqlalchemy.engine") and "INSERT INTO authorizations" in r.getMessage()
               for r in records)
    assert any(r.name.startswith("sqlalchemy.engine") and "[" in r.getMessage() and "(" in r.getMessage()
               and r.levelno == logging.INFO and r.args for r in records)
    assert any(r.name == "processing.authorization.engine" for r in records)
    assert any(r.name == "processing.authorization.lifecycle" for r in records)

    forbidden = {
        "the card number": [world.pan],
        "the device token number": [world.phone.dpan],
        "the device key": spellings(world.phone.device_key),
        "the terminal key": spellings(world.terminal_key),
        "a payment token": sent_tokens,
    }
    leaks = []
    for record in records:
        for text in texts_of(record):
            for what, values in forbidden.items():
                if any(value in text for value in values):
                    leaks.append(f"{what} in {record.name}: {text[:200]}")
            for match in CARD_NUMBER_RUN.finditer(text):
                run = match.group()
                if len(run) <= 19 and is_luhn_valid(run):
                    leaks.append(f"Luhn-valid number {run[:6]}... in {record.name}: {text[:200]}")
    assert leaks == []
    assert world.pan not in caplog.text and world.phone.dpan not in caplog.text
