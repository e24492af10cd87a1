"""What the cabinet sends and gets about limits and controls. Amounts in kopecks, volumes in
millilitres, counts in purchases; hours as "HH:MM" in the company's time zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from processing.limits.models import LimitMetric, LimitPeriod
from processing.products import Product

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_HHMM = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
MAX_LIMIT_VALUE = 10**15

ScopeId = Annotated[int, Field(ge=1, le=2**62)]
Region = Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE)]
Weekday = Annotated[int, Field(ge=1, le=7)]


class LimitItem(BaseModel):
    metric: LimitMetric = Field(description="amount (kopecks), volume (millilitres) or count (purchases).")
    period: LimitPeriod = Field(description="transaction, day, week or month (company time zone). "
                                "A count limit needs a day, week or month.")
    max_value: int = Field(ge=0, le=MAX_LIMIT_VALUE)

    model_config = ConfigDict(extra="forbid")


class LimitSet(BaseModel):
    """The scope's whole limit set: what is left out is removed."""

    limits: list[LimitItem] = Field(max_length=12, description="At most one limit per metric and period.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limits": [
        {"metric": "amount", "period": "day", "max_value": 1_500_000},
        {"metric": "volume", "period": "day", "max_value": 100_000},
        {"metric": "count", "period": "day", "max_value": 5},
    ]}]})


class HourWindow(BaseModel):
    from_: str = Field(alias="from", pattern=_HHMM, description="HH:MM, 00:00..24:00.")
    to: str = Field(pattern=_HHMM, description="HH:MM; earlier than from = the window crosses midnight.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ControlSet(BaseModel):
    """The scope's whole set of spending controls; null (or left out) = no restriction here.
    A unit's or card's list must stay within the list of every unit above it."""

    allowed_products: list[Product] | None = Field(default=None, max_length=len(Product))
    allowed_station_ids: list[ScopeId] | None = Field(default=None, max_length=1000)
    allowed_network_ids: list[ScopeId] | None = Field(default=None, max_length=1000)
    allowed_regions: list[Region] | None = Field(default=None, max_length=200,
                                                 description="Region codes of stations, e.g. RU-MOW.")
    allowed_weekdays: list[Weekday] | None = Field(default=None, max_length=7,
                                                   description="ISO weekdays: 1 Monday .. 7 Sunday.")
    allowed_hours: list[HourWindow] | None = Field(default=None, max_length=48,
                                                   description="Non-overlapping windows [from, to).")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"allowed_products": ["diesel", "adblue", "car_wash"], "allowed_regions": ["RU-MOW", "RU-MOS"],
         "allowed_weekdays": [1, 2, 3, 4, 5],
         "allowed_hours": [{"from": "06:00", "to": "12:00"}, {"from": "13:00", "to": "22:00"}]},
        {"allowed_station_ids": [14, 15], "allowed_network_ids": [2]},
    ]})


class ScopeRefView(BaseModel):
    scope: str = Field(description="card or org_unit.")
    scope_id: int
    name: str


class LimitView(BaseModel):
    metric: str
    period: str
    max_value: int
    unit: str = Field(description="kopecks, ml or count.")
    display: str = Field(description='As people read it, e.g. "15 000.00 RUB per day".')


class ScopeLimits(ScopeRefView):
    limits: list[LimitView]


class ControlsView(BaseModel):
    allowed_products: list[str] | None
    allowed_station_ids: list[int] | None
    allowed_network_ids: list[int] | None
    allowed_regions: list[str] | None
    allowed_weekdays: list[int] | None
    allowed_hours: list[HourWindow] | None


class ScopeControls(ScopeRefView):
    controls: ControlsView


class SourcedLimitView(BaseModel):
    source: ScopeRefView
    metric: str
    period: str
    max_value: int
    used: int = Field(description="Counted in the current period (0 for per-transaction limits).")
    remaining: int
    unit: str
    display: str


class BindingView(BaseModel):
    metric: str
    period: str
    remaining: int = Field(description="What may still be spent now in this period: the smallest remainder of "
                           "every limit of this metric with this or a longer period, on any scope.")
    unit: str
    source: ScopeRefView = Field(description="Where the limit that binds comes from.")
    binding_period: str = Field(description="The period of the limit that binds (a week limit may bind today).")
    binding_max_value: int


class SourcedControlsView(BaseModel):
    source: ScopeRefView
    controls: ControlsView


class ExceptionView(BaseModel):
    exception_id: int
    metric: str
    extra_value: int
    unit: str
    reason: str
    decided_by_user_id: int | None
    decided_at: datetime | None
    valid_until: datetime | None


class EffectiveLimits(BaseModel):
    card_id: int
    masked_card_number: str
    org_unit_id: int
    currency: str
    timezone: str
    local_day: date = Field(description="The company's local day the counters are for.")
    limits: list[SourcedLimitView] = Field(description="Every limit that applies: the card's, then each unit's "
                                           "from the root down.")
    binding: list[BindingView]
    controls: list[SourcedControlsView]
    allowed_products: list[str] = Field(description="What the card may buy: every scope's product list "
                                        "and the vehicle's fuels.")
    exceptions: list[ExceptionView] = Field(description="Approved one-off exceptions not used yet.")
