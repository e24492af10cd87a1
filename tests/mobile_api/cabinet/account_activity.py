"""Spending in the test fleet through the real terminal API, for the account, transaction and report tests.

Ivan (North-East) at ``ivan_at``: a diesel sale of 1 310.00 (20 l), a hold of 2 000.00 left open,
and a decline (more than the company has). Ten minutes later Olga (South): an AI-95 sale of
1 178.00 (20 l) and a hold reversed by the terminal. Before all that a top-up of 5 000.00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from processing.cards.service import enroll_device
from processing.db.engine import unit_of_work
from processing.ledger.service import top_up
from tests.factories import Phone, authorization_message

START_BALANCE = 1_000_000  # make_world's top-up
TOP_UP = 500_000
IVAN_SALE, IVAN_SALE_ML = 131_000, 20_000  # 20 l diesel at 65.50
IVAN_HOLD = 200_000
OLGA_SALE, OLGA_SALE_ML = 117_800, 20_000  # 20 l AI-95 at 58.90
CAPTURED = IVAN_SALE + OLGA_SALE
BALANCE_AFTER = START_BALANCE + TOP_UP - CAPTURED - IVAN_HOLD


@dataclass
class Activity:
    ivan_at: datetime
    olga_at: datetime
    ivan_sale: int  # authorization ids
    ivan_hold: int
    ivan_declined: int
    olga_sale: int
    olga_reversed: int
    other_company_sale: int

    @property
    def all_ids(self) -> set[int]:
        return {self.ivan_sale, self.ivan_hold, self.ivan_declined, self.olga_sale, self.olga_reversed}


async def olga_phone(state, fleet) -> Phone:
    async with unit_of_work(state.sessionmaker) as session:
        enrolled = await enroll_device(session, state.keyring, card_id=fleet.olga_card_id,
                                       dpan_prefix=state.settings.dpan_prefix, device_label="Olga's phone")
    return Phone(enrolled.dpan, enrolled.device_key, enrolled.enrollment.id)


async def _authorize(terminal, phone, clock, amount_minor: int, **extra) -> tuple[str, dict]:
    message = authorization_message(phone, clock(), amount_minor=amount_minor, **extra)
    reply = await terminal.authorize(**message)
    assert reply.status_code == 200, reply.body
    return message["terminal_transaction_id"], reply.body


async def _sale(terminal, phone, clock, hold: int, amount: int, volume_ml: int, product: str) -> int:
    transaction_id, answer = await _authorize(terminal, phone, clock, hold, product=product)
    assert answer["approved"], answer
    done = await terminal.complete(transaction_id, amount_minor=amount, volume_ml=volume_ml, product=product)
    assert done.status_code == 200, done.body
    return answer["authorization_id"]


async def spend(state, http, clock, fleet) -> Activity:
    """Run the activity described above; returns the authorization ids."""
    async with unit_of_work(state.sessionmaker) as session:
        await top_up(session, company_id=fleet.company_id, amount_minor=TOP_UP, description="bank transfer 42",
                     now=clock())
    terminal = fleet.world.terminal(http, clock)
    ivan, olga = fleet.world.phone, await olga_phone(state, fleet)

    ivan_at = clock()
    ivan_sale = await _sale(terminal, ivan, clock, 300_000, IVAN_SALE, IVAN_SALE_ML, "diesel")
    _, held = await _authorize(terminal, ivan, clock, IVAN_HOLD)
    assert held["approved"], held
    _, declined = await _authorize(terminal, ivan, clock, 50_000_000)
    assert not declined["approved"], declined

    clock.advance(600)
    olga_at = clock()
    olga_sale = await _sale(terminal, olga, clock, 150_000, OLGA_SALE, OLGA_SALE_ML, "ai95")
    reversed_id, reversed_answer = await _authorize(terminal, olga, clock, 100_000)
    assert reversed_answer["approved"], reversed_answer
    assert (await terminal.reverse(reversed_id)).status_code == 200

    other_terminal = fleet.other_world.terminal(http, clock)
    other_sale = await _sale(other_terminal, fleet.other_world.phone, clock, 300_000, IVAN_SALE, IVAN_SALE_ML,
                             "diesel")
    return Activity(ivan_at=ivan_at, olga_at=olga_at, ivan_sale=ivan_sale, ivan_hold=held["authorization_id"],
                    ivan_declined=declined["authorization_id"], olga_sale=olga_sale,
                    olga_reversed=reversed_answer["authorization_id"], other_company_sale=other_sale)
