"""The company activity profile (``company_fraud_profiles.profile``): written by the fraud worker
from the last 90 days of completed purchases, read by the rules on the hot path.

Format (version 1)::

    {"v": 1,
     "purchases": 1234,                 # completed purchases counted
     "hour_of_week": [168 integers],    # purchases per local hour of the week: Monday 00-01 is 0,
                                        #   Sunday 23-24 is 167 (the company's time zone)
     "typical_amount_minor": 250000}    # median purchase amount, kopecks; absent when unknown

A missing or malformed profile is treated as no profile: the rules that need it do not fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

PROFILE_VERSION = 1
HOURS_PER_WEEK = 7 * 24


def hour_of_week(local_time: datetime) -> int:
    """0 for Monday 00:00-00:59 local time, 167 for Sunday 23:00-23:59."""
    return local_time.weekday() * 24 + local_time.hour


def build_profile(hour_counts: Sequence[int], *, typical_amount_minor: int | None) -> dict:
    """The profile JSON from purchase counts per local hour of the week (168 of them)."""
    if len(hour_counts) != HOURS_PER_WEEK or any(count < 0 for count in hour_counts):
        raise ValueError(f"a profile needs {HOURS_PER_WEEK} non-negative hour counts")
    profile = {"v": PROFILE_VERSION, "purchases": int(sum(hour_counts)),
               "hour_of_week": [int(count) for count in hour_counts]}
    if typical_amount_minor is not None:
        profile["typical_amount_minor"] = int(typical_amount_minor)
    return profile


def hour_share(profile: Mapping | None, hour: int) -> tuple[int, int] | None:
    """(purchases in ``hour`` of the week, all purchases) or None without a usable profile."""
    if not profile:
        return None
    hours = profile.get("hour_of_week")
    if not isinstance(hours, list) or len(hours) != HOURS_PER_WEEK:
        return None
    return int(hours[hour]), int(profile.get("purchases", sum(hours)))


def typical_amount(profile: Mapping | None) -> int | None:
    if not profile:
        return None
    value = profile.get("typical_amount_minor")
    return int(value) if isinstance(value, int) and value > 0 else None
