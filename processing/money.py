"""Formatting integer minor units and millilitres for people (reasons, receipts, CLI)."""

from __future__ import annotations


def format_money(amount_minor: int, currency: str = "RUB") -> str:
    """12345678 -> '123 456.78 RUB' (thin grouping, never a float)."""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    return f"{sign}{major:,}.{minor:02d} {currency}".replace(",", " ")


def format_volume(volume_ml: int) -> str:
    """40500 -> '40.50 l'."""
    sign = "-" if volume_ml < 0 else ""
    litres, millilitres = divmod(abs(volume_ml), 1000)
    return f"{sign}{litres}.{millilitres // 10:02d} l"


def decimal_amount(amount_minor: int) -> str:
    """12345 -> "123.45": exact, no grouping, no currency (a CSV cell, an export)."""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    return f"{sign}{major}.{minor:02d}"


def decimal_litres(volume_ml: int) -> str:
    """45800 -> "45.800"."""
    sign = "-" if volume_ml < 0 else ""
    litres, millilitres = divmod(abs(volume_ml), 1000)
    return f"{sign}{litres}.{millilitres:03d}"
