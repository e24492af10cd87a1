"""Token declines on the terminal path: each with its own ISO code and machine reason, and none
holds money, moves a limit counter or writes a journal entry. The decline itself is recorded."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

from sqlalchemy import func, select

from processing import tokens
from processing.authorization.models import Authorization, AuthorizationStatus
from processing.cards.models import CardStatus, DeviceEnrollment
from processing.cards.service import enroll_device, set_card_status
from processing.db.engine import unit_of_work
from processing.ledger.models import Account, JournalEntry, JournalLine
from processing.limits.models import LimitCounter
from tests.factories import (
    Phone,
    authorization_message,
    make_world,
    next_transaction_id,
)

VALIDITY = 120  # Settings.token_validity_seconds default
SKEW = 30  # Settings.allowed_clock_skew_seconds default


async def money_state(state) -> dict:
    """Everything a hold would change: balances, journal, limit counters."""
    async with unit_of_work(state.sessionmaker) as session:
        async def rows(statement):
            return [tuple(row) for row in (await session.execute(statement)).all()]

        return {
            "accounts": await rows(select(Account.id, Account.balance_minor).order_by(Account.id)),
            "entries": await rows(select(JournalEntry.id, JournalEntry.kind).order_by(JournalEntry.id)),
            "lines": await rows(select(JournalLine.id, JournalLine.amount_minor).order_by(JournalLine.id)),
            "counters": await rows(
                select(LimitCounter.scope_kind, LimitCounter.scope_id, LimitCounter.period,
                       LimitCounter.period_start, LimitCounter.amount_minor,
                       LimitCounter.volume_ml, LimitCounter.count).order_by(LimitCounter.id)
            ),
        }


async def authorization_count(state) -> int:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.scalar(select(func.count()).select_from(Authorization))


async def authorization_row(state, authorization_id: int) -> Authorization:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.get(Authorization, authorization_id)


async def enrollment_row(state, enrollment_id: int) -> DeviceEnrollment:
    async with unit_of_work(state.sessionmaker) as session:
        return await session.get(DeviceEnrollment, enrollment_id)


async def assert_declined_cleanly(state, world, before_money: dict, before_count: int, reply, *,
                                  response_code: str, decline_reason: str, decided_by: str):
    """The answer, the recorded decline, and that nothing was held or counted."""
    assert reply.status_code == 200, reply.body
    body = reply.body
    assert body["approved"] is False
    assert body["response_code"] == response_code, body
    assert body["decline_reason"] == decline_reason, body
    assert body["reason"], "a decline carries words for a human"
    assert body["approved_amount_minor"] == 0
    assert body["hold_expires_at"] is None
    assert world.pan not in reply.raw.decode()

    assert await money_state(state) == before_money
    assert await authorization_count(state) == before_count + 1
    row = await authorization_row(state, body["authorization_id"])
    assert row.status == AuthorizationStatus.DECLINED
    assert (row.response_code, row.decline_reason, row.decided_by) == (response_code, decline_reason, decided_by)
    assert row.approved_amount_minor == 0 and row.hold_volume_ml == 0 and row.hold_expires_at is None
    return row


async def approve_one(state, terminal, world, clock) -> dict:
    """An approved authorization first, so limit counters and a HOLD entry exist to compare."""
    reply = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=100_000))
    assert reply.body["approved"] is True, reply.body
    return reply.body


def message_with_token(token: str, **extra) -> dict:
    return {"terminal_transaction_id": next_transaction_id(), "token": token, "entry_mode": "qr",
            "product": "diesel", "amount_minor": 300_000, "currency": "RUB", **extra}


async def test_replayed_token_is_refused_at_a_second_transaction_id(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    token = world.phone.token(clock())
    first = await terminal.authorize(**message_with_token(token))
    assert first.body["approved"] is True, first.body
    before_money, before_count = await money_state(state), await authorization_count(state)

    replay = await terminal.authorize(**message_with_token(token))

    row = await assert_declined_cleanly(state, world, before_money, before_count, replay,
                                        response_code="63", decline_reason="token_replayed",
                                        decided_by="token")
    assert row.card_id == world.card_id
    assert (await enrollment_row(state, world.phone.enrollment_id)).last_atc == world.phone.atc


async def test_replayed_token_at_another_terminal_of_the_same_station_is_refused(state, http, clock):
    """The counter lives on the enrollment, so a second terminal cannot take the token again."""
    world = await make_world(state)
    other = await make_world(state)
    token = world.phone.token(clock())
    first = await world.terminal(http, clock).authorize(**message_with_token(token))
    assert first.body["approved"] is True, first.body
    before_money, before_count = await money_state(state), await authorization_count(state)

    replay = await other.terminal(http, clock).authorize(**message_with_token(token))

    await assert_declined_cleanly(state, world, before_money, before_count, replay,
                                  response_code="63", decline_reason="token_replayed", decided_by="token")


async def test_one_token_sent_to_two_terminals_at_once_is_approved_once(state, http, clock):
    world = await make_world(state)
    other = await make_world(state)
    token = world.phone.token(clock())

    replies = await asyncio.gather(
        world.terminal(http, clock).authorize(**message_with_token(token)),
        other.terminal(http, clock).authorize(**message_with_token(token)),
    )

    outcomes = sorted((r.body["approved"], r.body["response_code"], r.body["decline_reason"]) for r in replies)
    assert outcomes == [(False, "63", "token_replayed"), (True, "00", None)]
    async with unit_of_work(state.sessionmaker) as session:
        held = await session.scalar(select(Account.balance_minor).where(Account.id == world.held_account_id))
        holds = await session.scalar(select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "hold"))
    assert held == 300_000
    assert holds == 1


async def test_token_from_a_phone_clock_ahead_is_declined_and_names_the_clock(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await approve_one(state, terminal, world, clock)
    before_money, before_count = await money_state(state), await authorization_count(state)
    ahead = int(clock().timestamp()) + 600

    reply = await terminal.authorize(**message_with_token(world.phone.token(clock(), generated_at=ahead)))

    row = await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                        response_code="54", decline_reason="clock_ahead", decided_by="token")
    assert "phone clock is 10 minutes ahead" in reply.body["reason"]
    assert row.clock_skew_seconds == 600
    enrollment = await enrollment_row(state, world.phone.enrollment_id)
    assert enrollment.last_clock_skew_seconds == 600
    # A token refused for its time does not consume the counter: the next good token still works.
    good = await terminal.authorize(**authorization_message(world.phone, clock(), amount_minor=10_000))
    assert good.body["approved"] is True, good.body


async def test_token_one_second_beyond_the_allowed_skew_is_clock_ahead(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    before_money, before_count = await money_state(state), await authorization_count(state)
    ahead = int(clock().timestamp()) + SKEW + 1

    reply = await terminal.authorize(**message_with_token(world.phone.token(clock(), generated_at=ahead)))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="54", decline_reason="clock_ahead", decided_by="token")
    assert "31 seconds ahead" in reply.body["reason"]


async def test_expired_token_is_declined(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await approve_one(state, terminal, world, clock)
    token = world.phone.token(clock())
    clock.advance(VALIDITY + SKEW + 1)
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await terminal.authorize(**message_with_token(token))

    row = await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                        response_code="54", decline_reason="token_expired", decided_by="token")
    assert "expired" in reply.body["reason"]
    assert row.clock_skew_seconds == -(VALIDITY + SKEW + 1)
    assert (await enrollment_row(state, world.phone.enrollment_id)).last_clock_skew_seconds == -(VALIDITY + SKEW + 1)


async def test_tokens_at_the_edges_of_the_window_are_accepted(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    now = int(clock().timestamp())

    oldest = await terminal.authorize(**message_with_token(
        world.phone.token(clock(), generated_at=now - VALIDITY - SKEW), amount_minor=10_000))
    newest = await terminal.authorize(**message_with_token(
        world.phone.token(clock(), generated_at=now + SKEW), amount_minor=10_000))

    assert (oldest.body["approved"], oldest.body["response_code"]) == (True, "00"), oldest.body
    assert (newest.body["approved"], newest.body["response_code"]) == (True, "00"), newest.body
    # The host records the skew it saw on the enrollment: the last token was 30 s ahead.
    assert (await enrollment_row(state, world.phone.enrollment_id)).last_clock_skew_seconds == SKEW


async def test_token_one_second_past_the_window_is_expired(state, http, clock):
    world = await make_world(state)
    now = int(clock().timestamp())
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await world.terminal(http, clock).authorize(**message_with_token(
        world.phone.token(clock(), generated_at=now - VALIDITY - SKEW - 1)))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="54", decline_reason="token_expired", decided_by="token")


async def test_host_records_the_skew_of_an_accepted_token(state, http, clock):
    world = await make_world(state)
    behind = int(clock().timestamp()) - 20

    reply = await world.terminal(http, clock).authorize(**message_with_token(
        world.phone.token(clock(), generated_at=behind), amount_minor=10_000))

    assert reply.body["approved"] is True, reply.body
    assert (await enrollment_row(state, world.phone.enrollment_id)).last_clock_skew_seconds == -20
    assert (await authorization_row(state, reply.body["authorization_id"])).clock_skew_seconds == -20


async def test_token_signed_with_another_key_has_a_bad_cryptogram(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await approve_one(state, terminal, world, clock)
    before_money, before_count = await money_state(state), await authorization_count(state)
    forged = tokens.make_token(secrets.token_bytes(32), dpan=world.phone.dpan, atc=world.phone.atc + 1,
                               generated_at=int(clock().timestamp()))

    reply = await terminal.authorize(**message_with_token(tokens.encode_qr_payload(forged)))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="63", decline_reason="bad_cryptogram", decided_by="token")
    # A forgery does not consume the counter value it claimed.
    assert (await enrollment_row(state, world.phone.enrollment_id)).last_atc == world.phone.atc


async def test_tampered_tokens_have_a_bad_cryptogram(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    genuine = tokens.decode_qr_payload(world.phone.token(clock()))
    flipped = bytes([genuine.cryptogram[0] ^ 0x01]) + genuine.cryptogram[1:]
    tampered = [
        replace(genuine, cryptogram=flipped),
        replace(genuine, atc=genuine.atc + 1000),
        replace(genuine, generated_at=genuine.generated_at - 5),
    ]
    for token in tampered:
        before_money, before_count = await money_state(state), await authorization_count(state)
        reply = await terminal.authorize(**message_with_token(tokens.encode_qr_payload(token)))
        await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                      response_code="63", decline_reason="bad_cryptogram", decided_by="token")


async def test_tokens_of_a_revoked_enrollment_are_refused(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await approve_one(state, terminal, world, clock)
    async with unit_of_work(state.sessionmaker) as session:
        enrolled = await enroll_device(session, state.keyring, card_id=world.card_id,
                                       dpan_prefix=state.settings.dpan_prefix, device_label="new phone")
    new_phone = Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id)
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await terminal.authorize(**authorization_message(world.phone, clock()))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="14", decline_reason="enrollment_revoked", decided_by="enrollment")
    fresh = await terminal.authorize(**authorization_message(new_phone, clock(), amount_minor=10_000))
    assert fresh.body["approved"] is True, fresh.body


async def test_blocked_card_is_refused(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await approve_one(state, terminal, world, clock)
    async with unit_of_work(state.sessionmaker) as session:
        await set_card_status(session, card_id=world.card_id, status=CardStatus.BLOCKED, reason="lost phone")
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await terminal.authorize(**authorization_message(world.phone, clock()))

    row = await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                        response_code="62", decline_reason="card_blocked", decided_by="card")
    assert row.card_id == world.card_id
    assert reply.body["card"].endswith(world.pan[-4:]) and world.pan not in reply.body["card"]


async def test_malformed_tokens_are_invalid(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    genuine = world.phone.token(clock())
    malformed = [
        "not a token at all",
        "AAAAAAAAAAAA",  # base64 of zero bytes: not TLV
        genuine[:-4],  # truncated
        genuine + "AAAA",  # trailing bytes
        genuine.replace("+", "-").replace("/", "_") if ("+" in genuine or "/" in genuine) else genuine + "=",
    ]
    for token in malformed:
        before_money, before_count = await money_state(state), await authorization_count(state)
        reply = await terminal.authorize(**message_with_token(token))
        row = await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                            response_code="14", decline_reason="invalid_token", decided_by="token")
        assert row.card_id is None


async def test_token_of_an_unknown_device_number_is_refused(state, http, clock):
    world = await make_world(state)
    stranger = tokens.make_token(secrets.token_bytes(32), dpan=tokens.generate_card_number("700590"), atc=1,
                                 generated_at=int(clock().timestamp()))
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await world.terminal(http, clock).authorize(**message_with_token(tokens.encode_qr_payload(stranger)))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="14", decline_reason="unknown_token", decided_by="token")


async def test_nfc_token_answering_another_unpredictable_number_is_refused(state, http, clock):
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    token = world.phone.token(clock(), unpredictable_number=bytes.fromhex("A1B2C3D4"))
    before_money, before_count = await money_state(state), await authorization_count(state)

    reply = await terminal.authorize(**message_with_token(token, entry_mode="nfc", unpredictable_number="0BADF00D"))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="63", decline_reason="unpredictable_number_mismatch",
                                  decided_by="token")
    # Without the terminal's number an NFC token cannot be checked at all.
    before_money, before_count = await money_state(state), await authorization_count(state)
    missing = await terminal.authorize(**message_with_token(
        world.phone.token(clock(), unpredictable_number=bytes.fromhex("A1B2C3D4")), entry_mode="nfc"))
    await assert_declined_cleanly(state, world, before_money, before_count, missing,
                                  response_code="63", decline_reason="unpredictable_number_mismatch",
                                  decided_by="token")


async def test_nfc_token_answering_the_terminal_number_is_approved(state, http, clock):
    """The control case for the test above: the same path with the right number is approved."""
    world = await make_world(state)
    token = world.phone.token(clock(), unpredictable_number=bytes.fromhex("A1B2C3D4"))

    reply = await world.terminal(http, clock).authorize(**message_with_token(
        token, entry_mode="nfc", unpredictable_number="a1b2c3d4", amount_minor=10_000))

    assert (reply.body["approved"], reply.body["response_code"]) == (True, "00"), reply.body


async def test_nfc_token_presented_as_qr_is_invalid(state, http, clock):
    world = await make_world(state)
    before_money, before_count = await money_state(state), await authorization_count(state)
    token = world.phone.token(clock(), unpredictable_number=bytes.fromhex("A1B2C3D4"))

    reply = await world.terminal(http, clock).authorize(**message_with_token(token))

    await assert_declined_cleanly(state, world, before_money, before_count, reply,
                                  response_code="14", decline_reason="invalid_token", decided_by="token")
