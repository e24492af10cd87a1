"""Report periods in query strings: ``from`` and ``to`` as ISO 8601 instants with a time zone.

A period is half-open (``from <= t < to``). Exports and reports cover at most MAX_PERIOD.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime

from processing.errors import ProcessingError

MAX_PERIOD = timedelta(days=366)


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-23:00 is past the last representable instant
        raise ValueError("the time is out of range") from None


# Naive times are refused (422): "10:00" means different instants to the caller and to us.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
Since = Annotated[Instant | None, Query(alias="from", description="Start (inclusive), ISO 8601 with a zone.")]
Until = Annotated[Instant | None, Query(alias="to", description="End (exclusive), ISO 8601 with a zone.")]
RequiredSince = Annotated[Instant, Query(alias="from", description="Start (inclusive), ISO 8601 with a zone.")]
RequiredUntil = Annotated[Instant, Query(alias="to", description="End (exclusive), ISO 8601 with a zone; "
                                                               "at most 366 days after `from`.")]


class InvalidPeriod(ProcessingError):
    status_code = 422
    code = "invalid_period"
    default_detail = "`to` must be later than `from`."


class PeriodTooLong(ProcessingError):
    status_code = 422
    code = "period_too_long"


def check_period(since: datetime | None, until: datetime | None, *, bounded: bool = False) -> None:
    """``to`` after ``from``; with ``bounded``, both given and at most MAX_PERIOD apart."""
    if since is not None and until is not None and until <= since:
        raise InvalidPeriod(f"`to` ({until.isoformat()}) must be later than `from` ({since.isoformat()})")
    if bounded and (since is None or until is None or until - since > MAX_PERIOD):
        raise PeriodTooLong(f"the period may be at most {MAX_PERIOD.days} days; split it into shorter ones")
