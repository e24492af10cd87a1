"""The customer's receipt: plain text, decimal strings only here at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from processing.money import format_money, format_volume

WIDTH = 40


@dataclass(frozen=True)
class Receipt:
    station: str
    terminal_code: str
    pump: int
    product: str
    volume_ml: int
    unit_price_minor: int
    amount_minor: int
    currency: str
    card: str
    authorization_id: int
    transaction_id: str
    entry_mode: str
    printed_at: datetime

    def text(self) -> str:
        def line(left: str, right: str) -> str:
            return f"{left}{right.rjust(WIDTH - len(left))}"

        return "\n".join([
            self.station.center(WIDTH),
            f"terminal {self.terminal_code}".center(WIDTH),
            self.printed_at.strftime("%Y-%m-%d %H:%M:%S").center(WIDTH),
            "-" * WIDTH,
            line(f"Pump {self.pump}", self.product),
            line("Volume", format_volume(self.volume_ml)),
            line("Price", f"{format_money(self.unit_price_minor, self.currency)}/l"),
            line("TOTAL", format_money(self.amount_minor, self.currency)),
            "-" * WIDTH,
            line("Card", self.card),
            line("Entry", self.entry_mode.upper()),
            line("Authorization", str(self.authorization_id)),
            line("Transaction", self.transaction_id),
            "APPROVED".center(WIDTH),
        ])
