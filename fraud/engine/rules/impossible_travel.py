"""The card at two stations farther apart than a car can drive in the time between."""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

from pydantic import Field

from fraud.engine.attempt import Attempt
from fraud.engine.rules.base import RuleParams, RuleResult, not_applicable
from fraud.engine.state import StateView

EARTH_RADIUS_KM = 6371.0088


class Params(RuleParams):
    max_speed_kmh: float = Field(200.0, gt=0, le=2000, description="fastest believable travel, km/h")
    min_distance_km: float = Field(5.0, ge=0, le=1000, description="nearer stations are never checked (GPS and city noise)")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    lat1, lon1, lat2, lon2 = radians(lat1), radians(lon1), radians(lat2), radians(lon2)
    h = sin((lat2 - lat1) / 2) ** 2 + cos(lat1) * cos(lat2) * sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))


def evaluate(attempt: Attempt, state: StateView, params: Params) -> RuleResult:
    if not attempt.present or attempt.latitude is None:
        return not_applicable("the token did not pass its checks: the card's presence is not proven")
    last = state.last_station
    if last is None:
        return not_applicable("no earlier station of the card in the last 24 hours")
    station_id, latitude, longitude, then = last
    if station_id == attempt.station_id:
        return RuleResult(False, {"km": 0.0}, "same station as the card's last authorization")
    distance = haversine_km(latitude, longitude, attempt.latitude, attempt.longitude)
    elapsed = attempt.at - then
    inputs = {"km": round(distance, 1), "minutes": round(elapsed / 60, 1), "from_station": station_id}
    if distance < params.min_distance_km:
        return RuleResult(False, inputs, f"{distance:.1f} km from the last station, nearer than "
                                         f"{params.min_distance_km:g} km")
    speed = float("inf") if elapsed <= 0 else distance * 3600 / elapsed
    fired = speed > params.max_speed_kmh
    inputs["kmh"] = None if elapsed <= 0 else round(speed)
    shown = "no time" if elapsed <= 0 else f"{elapsed / 60:.0f} minutes ({speed:.0f} km/h)"
    return RuleResult(
        fired, inputs,
        f"{distance:.0f} km from station {station_id} in {shown}, "
        f"{'faster than' if fired else 'within'} {params.max_speed_kmh:g} km/h",
    )
