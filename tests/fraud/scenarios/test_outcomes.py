"""Outcomes other than a rule's default, a company's own setting, a disabled rule, the decline
path, and a repeated terminal message: all through the terminal API with the real engine.

card_velocity is the rule changed here: 5 attempts in 10 minutes are easy to make and it fires
on the approval path.
"""

from __future__ import annotations

from processing.authorization.models import AuthorizationStatus
from processing.cards.models import CardStatus
from tests.factories import authorization_message, database_dump, make_world
from tests.fraud.scenarios.support import (
    alert_count,
    alerts,
    assert_fired_once,
    audit_entries,
    authorization_row,
    authorize,
    card_row,
    events,
    real_engine,
    rule_entry,
    set_rule,
    terminal_row,
)


async def four_approved(terminal, phone, clock) -> None:
    for _ in range(4):
        reply = await authorize(terminal, phone, clock)
        assert reply.body["response_code"] == "00", reply.body
        clock.advance(60)


async def test_block_card_outcome_declines_59_now_and_62_on_the_next_authorization(state, http, clock):
    real_engine(state)
    await set_rule(state, "card_velocity", outcome="block_card", severity="critical")
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)

    fifth = await authorize(terminal, world.phone, clock)

    assert (fifth.body["response_code"], fifth.body["decline_reason"]) == ("59", "suspected_fraud")
    await assert_fired_once(state, fifth, "card_velocity", outcome="block_card", severity="critical", world=world)
    row = await authorization_row(state, fifth.body["authorization_id"])
    assert (row.fraud_verdict, row.decided_by, row.approved_amount_minor) == ("block", "fraud", 0)
    card = await card_row(state, world.card_id)
    assert card.status == CardStatus.BLOCKED
    assert card.status_reason.startswith("blocked by fraud rule card_velocity: Card velocity: 5 authorization")
    [audit] = await audit_entries(state, target_id=world.card_id)
    assert (audit.actor_role, audit.action, audit.actor_login) == ("fraud_rules", "card.block", "fraud rule card_velocity")
    assert len(await events(state, "card.blocked")) == 1

    clock.advance(60)
    sixth = await authorize(terminal, world.phone, clock)

    assert (sixth.body["response_code"], sixth.body["decline_reason"]) == ("62", "card_blocked")
    # Already blocked: the rules' block on this decline changes neither the status nor its reason.
    assert (await card_row(state, world.card_id)).status_reason == card.status_reason
    assert len(await audit_entries(state, target_id=world.card_id)) == 1
    assert len(await events(state, "card.blocked")) == 1


async def test_review_outcome_approves_and_queues_an_alert(state, http, clock):
    real_engine(state)
    await set_rule(state, "card_velocity", outcome="review")
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)

    fifth = await authorize(terminal, world.phone, clock)

    assert fifth.body["approved"] is True and fifth.body["response_code"] == "00"
    assert fifth.body["reason"] == "approved; queued for security review"
    assert fifth.body["approved_amount_minor"] == 10_000
    await assert_fired_once(state, fifth, "card_velocity", outcome="review", severity="high", world=world)
    row = await authorization_row(state, fifth.body["authorization_id"])
    assert (row.status, row.fraud_verdict) == (AuthorizationStatus.APPROVED, "review")


async def test_approve_outcome_keeps_the_firing_in_the_trace_only(state, http, clock):
    real_engine(state)
    await set_rule(state, "card_velocity", outcome="approve")
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)

    fifth = await authorize(terminal, world.phone, clock)

    assert fifth.body["response_code"] == "00" and fifth.body["reason"] == "approved"
    row = await authorization_row(state, fifth.body["authorization_id"])
    assert rule_entry(row.fraud_trace, "card_velocity")["fired"] is True
    assert row.fraud_verdict == "approve"
    assert await alerts(state) == []


async def test_a_company_override_replaces_the_global_rule_for_that_company_only(state, http, clock):
    real_engine(state)
    relaxed = await make_world(state)
    strict = await make_world(state)
    await set_rule(state, "card_velocity", company_id=relaxed.company_id, params={"max_authorizations": 10})
    relaxed_terminal, strict_terminal = relaxed.terminal(http, clock), strict.terminal(http, clock)
    for _ in range(4):
        await authorize(relaxed_terminal, relaxed.phone, clock)
        await authorize(strict_terminal, strict.phone, clock)
        clock.advance(60)

    relaxed_fifth = await authorize(relaxed_terminal, relaxed.phone, clock)
    strict_fifth = await authorize(strict_terminal, strict.phone, clock)

    assert relaxed_fifth.body["response_code"] == "00"
    assert strict_fifth.body["response_code"] == "59"
    relaxed_entry = rule_entry((await authorization_row(state, relaxed_fifth.body["authorization_id"])).fraud_trace,
                               "card_velocity")
    strict_entry = rule_entry((await authorization_row(state, strict_fifth.body["authorization_id"])).fraud_trace,
                              "card_velocity")
    assert (relaxed_entry["fired"], relaxed_entry["inputs"]["max"]) == (False, 10)
    assert (strict_entry["fired"], strict_entry["inputs"]["max"]) == (True, 4)
    assert relaxed_entry["rule_id"] != strict_entry["rule_id"]  # the company's own row
    await assert_fired_once(state, strict_fifth, "card_velocity", outcome="decline", severity="high", world=strict)
    assert await alerts(state, company_id=relaxed.company_id) == []


async def test_a_disabled_rule_does_not_run(state, http, clock):
    real_engine(state)
    await set_rule(state, "card_velocity", enabled=False)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)

    fifth = await authorize(terminal, world.phone, clock)

    assert fifth.body["response_code"] == "00"
    trace = (await authorization_row(state, fifth.body["authorization_id"])).fraud_trace
    assert "card_velocity" not in {entry["rule"] for entry in trace["rules"]}
    assert "terminal_card_burst" in {entry["rule"] for entry in trace["rules"]}  # the others still run
    assert await alerts(state) == []


async def test_the_decline_path_never_approves(state, http, clock):
    """A core decline keeps its code: a decline rule firing on it only alerts, and approving
    outcomes change nothing; no money is held."""
    real_engine(state)
    world = await make_world(state, balance_minor=40_000)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)  # 4 × 100 RUB held: nothing left

    fifth = await authorize(terminal, world.phone, clock, amount_minor=10_000)

    assert (fifth.body["approved"], fifth.body["response_code"], fifth.body["decline_reason"]) == (
        False, "51", "insufficient_funds")
    alert = await assert_fired_once(state, fifth, "card_velocity", outcome="alert", severity="high", world=world)
    assert alert.details["configured_outcome"] == "decline" and alert.details["declined_by"] == "funds"
    row = await authorization_row(state, fifth.body["authorization_id"])
    assert (row.status, row.decided_by, row.approved_amount_minor, row.fraud_verdict) == (
        AuthorizationStatus.DECLINED, "funds", 0, "alert")

    # Every rule set to approve: a vehicle decline (57) stays a decline, the firing only traced.
    for code in ("product_mismatch", "card_velocity", "decline_run"):
        await set_rule(state, code, outcome="approve")
    clock.advance(60)
    mismatch = await authorize(terminal, world.phone, clock, product="ai95", amount_minor=10_000)
    assert (mismatch.body["approved"], mismatch.body["response_code"]) == (False, "57")
    row = await authorization_row(state, mismatch.body["authorization_id"])
    assert rule_entry(row.fraud_trace, "product_mismatch")["fired"] is True
    assert row.fraud_verdict == "approve" and row.status == AuthorizationStatus.DECLINED
    assert await alerts(state, authorization_id=row.id) == []


async def test_a_repeated_message_gets_the_same_bytes_and_the_rules_do_not_run_again(state, http, clock):
    real_engine(state)
    world = await make_world(state)
    terminal = world.terminal(http, clock)
    await four_approved(terminal, world.phone, clock)
    message = authorization_message(world.phone, clock(), amount_minor=10_000)
    first = await terminal.authorize(**message)
    assert first.body["response_code"] == "59"
    before = await database_dump(state)
    assert await alert_count(state) == 1

    clock.advance(5)
    again = await terminal.authorize(**message)

    assert again.raw == first.raw
    assert await database_dump(state) == before  # no alert, no state change, no authorization
    assert (await terminal_row(state, world.terminal_code)).fraud_state is not None
