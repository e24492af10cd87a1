"""The station's configuration: name, products and prices, the fill-up maximum, the pump's flow.

Kept in a small TOML (or JSON) file; money is written as decimal strings ("65.50") and turned
into kopecks here, never through a float.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from processing.products import VOLUME_PRODUCTS, Product
from terminal_sim.terminal.errors import ConfigurationError

DEFAULT_FILL_UP_MAX_MINOR = 500_000  # 5 000 RUB: what the terminal asks the host to hold for "fill up"
DEFAULT_FLOW_ML_PER_SECOND = 40_000 // 60  # 40 l/min, a car pump
_MONEY = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


@dataclass(frozen=True)
class StationConfig:
    station_name: str
    # Per litre, in kopecks; only products sold by volume can be pumped.
    prices_minor: dict[str, int]
    currency: str = "RUB"
    fill_up_max_minor: int = DEFAULT_FILL_UP_MAX_MINOR
    flow_ml_per_second: int = DEFAULT_FLOW_ML_PER_SECOND
    pumps: tuple[int, ...] = field(default=(1, 2, 3, 4))

    def price_of(self, product: str) -> int:
        try:
            return self.prices_minor[product]
        except KeyError:
            sold = ", ".join(sorted(self.prices_minor)) or "nothing"
            raise ConfigurationError(f"this station does not sell {product} (it sells {sold})") from None


def parse_money(text: str | int, what: str = "amount") -> int:
    """'65.50' or '65.5' or '65' -> 6550 kopecks. An int is taken as whole roubles."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ConfigurationError(f"{what} must be written like \"65.50\", not {text!r}")
    match = _MONEY.match(str(text).strip())
    if match is None:
        raise ConfigurationError(f"{what} must be written like \"65.50\", not {text!r}")
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


def station_config_from_dict(data: dict) -> StationConfig:
    prices_text = data.get("prices") or {}
    if not isinstance(prices_text, dict) or not prices_text:
        raise ConfigurationError("the station file needs a [prices] table, e.g. diesel = \"65.50\"")
    prices = {}
    for name, price in prices_text.items():
        try:
            product = Product(name)
        except ValueError:
            raise ConfigurationError(f"unknown product {name!r}: one of {', '.join(Product)}") from None
        if product not in VOLUME_PRODUCTS:
            raise ConfigurationError(f"{name} is not sold by the litre, so not at a pump")
        prices[product.value] = parse_money(price, f"the price of {name}")
    flow_lpm = data.get("flow_litres_per_minute", 40)
    if not isinstance(flow_lpm, int) or not 1 <= flow_lpm <= 200:
        raise ConfigurationError("flow_litres_per_minute must be a whole number from 1 to 200")
    pumps = tuple(data.get("pumps", (1, 2, 3, 4)))
    if not pumps or not all(isinstance(pump, int) and pump > 0 for pump in pumps):
        raise ConfigurationError("pumps must be a list of pump numbers, e.g. [1, 2, 3, 4]")
    return StationConfig(
        station_name=str(data.get("station", "Fuel station")),
        prices_minor=prices,
        currency=str(data.get("currency", "RUB")),
        fill_up_max_minor=parse_money(data.get("fill_up_max", "5000.00"), "fill_up_max"),
        flow_ml_per_second=flow_lpm * 1000 // 60,
        pumps=pumps,
    )


def load_station_config(path: str | os.PathLike) -> StationConfig:
    """Read a station file: TOML, or JSON when the name ends in .json."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read the station file {path}: {error.strerror}") from None
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"the station file {path} is not valid: {error}") from None
    return station_config_from_dict(data)


def read_terminal_key(path: str | os.PathLike) -> bytes:
    """The terminal's signing key from a file holding it as hex or base64 text."""
    import base64
    import binascii

    path = Path(path).expanduser()
    try:
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot read the key file {path}: {error}") from None
    try:
        key = bytes.fromhex(text) if re.fullmatch(r"[0-9a-fA-F]+", text) else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ConfigurationError(f"the key file {path} must hold the key as hex or base64") from None
    if len(key) < 16:
        raise ConfigurationError(f"the key in {path} is {len(key)} bytes: too short to be a terminal key")
    return key
