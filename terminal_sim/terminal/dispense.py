"""The simulated pump: litres and money rise at the configured flow until a stop condition.

Money follows the host's arithmetic exactly (amount = millilitres x price per litre // 1000,
as the completion check computes it), so the completion always matches its litres.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

TICK_SECONDS = 0.25


@dataclass(frozen=True)
class Progress:
    volume_ml: int
    amount_minor: int
    limit_volume_ml: int


@dataclass(frozen=True)
class Dispensed:
    volume_ml: int
    amount_minor: int
    stopped_because: str  # "authorized amount reached" or "tank full"


def amount_for(volume_ml: int, price_minor: int) -> int:
    """What `volume_ml` costs at `price_minor` per litre, rounded as the host rounds."""
    return volume_ml * price_minor // 1000


def most_volume_for(amount_minor: int, price_minor: int) -> int:
    """The most millilitres whose `amount_for` does not exceed `amount_minor`."""
    return ((amount_minor + 1) * 1000 - 1) // price_minor


async def dispense(*, price_minor: int, authorized_minor: int, flow_ml_per_second: int,
                   tank_room_ml: int | None = None,
                   on_progress: Callable[[Progress], None] | None = None,
                   sleep: Callable[[float], Awaitable[None]] | None = None,
                   tick_seconds: float = TICK_SECONDS) -> Dispensed:
    """Run the pump; `sleep` paces it in real time (None: as fast as possible, for tests)."""
    by_money = most_volume_for(authorized_minor, price_minor)
    limit = by_money if tank_room_ml is None else min(by_money, tank_room_ml)
    step = max(1, int(flow_ml_per_second * tick_seconds))
    volume = 0
    while volume < limit:
        if sleep is not None:
            await sleep(tick_seconds)
        volume = min(limit, volume + step)
        if on_progress is not None:
            on_progress(Progress(volume, amount_for(volume, price_minor), limit))
    tank_full = tank_room_ml is not None and tank_room_ml < by_money
    return Dispensed(volume, amount_for(volume, price_minor),
                     "tank full" if tank_full else "authorized amount reached")
