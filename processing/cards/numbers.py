"""How a card number is shown: never whole, anywhere (answers, logs, events, exports)."""

from __future__ import annotations


def masked_card_number(first6: str, last4: str) -> str:
    """How a card number is shown anywhere: "7005 12•• •••• 1234" (16-digit PANs)."""
    return f"{first6[:4]} {first6[4:6]}•• •••• {last4}"
