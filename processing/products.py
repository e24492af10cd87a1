"""What a station sells. Fuels are sold by the litre; the rest by the piece or service."""

from __future__ import annotations

from enum import StrEnum


class Product(StrEnum):
    DIESEL = "diesel"
    AI92 = "ai92"
    AI95 = "ai95"
    AI98 = "ai98"
    GAS = "gas"  # LPG / autogas
    ADBLUE = "adblue"
    CAR_WASH = "car_wash"
    SHOP = "shop"


# Products measured in litres: their amount must match litres x posted price at completion,
# and they count against volume limits and the vehicle's tank.
FUELS = frozenset({Product.DIESEL, Product.AI92, Product.AI95, Product.AI98, Product.GAS})
VOLUME_PRODUCTS = FUELS | {Product.ADBLUE}
# Only these go into the vehicle's fuel tank (AdBlue has its own small tank).
TANK_PRODUCTS = FUELS
