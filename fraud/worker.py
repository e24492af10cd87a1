"""After the answer: heavier checks the authorization path cannot afford.

1. **Outliers.** Every completion (the amount and litres actually taken) is scored against the
   card's own completed purchases and against its company's, over the last ``history_days``, with
   robust statistics: the modified z-score of Iglewicz and Hoaglin,
   ``z = (x - median) / (1.4826 · MAD)``, which one wild purchase in the history cannot drag
   the way it drags a mean and standard deviation. When the MAD is 0 (most purchases equal) the
   mean absolute deviation × 1.2533 stands in for it, and the spread is never taken below
   ``min_relative_spread`` of the median, so a fleet that always buys exactly 50 l is not alerted
   for 52 l. Only purchases *above* the usual are suspicious (z > ``z_threshold``). Amounts are
   compared over all products, litres over the same product only (50 l of diesel and 10 l of
   AdBlue are different things). A history shorter than ``card_min_history`` /
   ``company_min_history`` purchases is not judged. One alert per completion (rule code
   ``completion_outlier``, source ``worker``) lists every measure that stood out; its severity is
   high when both the card's and the company's history find it odd or z ≥ ``high_z``, else medium.

   The worker reads completions in id order after its cursor (``fraud_worker_cursors`` row
   "outliers", holding the last *completion* id scored) and advances the cursor in the same
   transaction as the alerts of the batch, so a crash re-scores the batch and never loses one.
   Scoring is deterministic (a completion's history is the completions with smaller ids), and an
   alert is not raised twice for one authorization, so re-running never duplicates. Ids are handed
   out before commit, so a completion younger than ``settle_seconds`` waits for the next round:
   a smaller id still in flight cannot be skipped (a completion commits in milliseconds).

2. **Company profiles** (``company_fraud_profiles``) for the rules ``unusual_hours`` and
   ``new_card_large_purchase``: per company, its completed purchases of the last ``profile_days``
   counted by local hour of the week (of the authorization, in the company's time zone), their
   count and their typical (median) completed amount, in the format of fraud.engine.profile.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fraud.engine.profile import HOURS_PER_WEEK, build_profile, hour_of_week
from processing.authorization.models import Authorization, Completion
from processing.db.dialect import insert_for
from processing.db.engine import unit_of_work
from processing.money import format_money, format_volume
from processing.orgs.models import Company
from processing.products import VOLUME_PRODUCTS
from processing.risk.models import (
    AlertSource,
    AlertStatus,
    CompanyFraudProfile,
    FraudAlert,
    FraudWorkerCursor,
    RuleOutcome,
    Severity,
)

logger = logging.getLogger(__name__)

CURSOR_NAME = "outliers"
RULE_CODE = "completion_outlier"
# 1 / Φ⁻¹(3/4): turns a MAD into a standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826
# sqrt(π/2): the same for the mean absolute deviation (used when the MAD is 0).
MEAN_AD_TO_SIGMA = 1.2533


@dataclass(frozen=True, slots=True)
class OutlierPolicy:
    """The worker's thresholds (documented in docs/fraud.md; change them here, in one place)."""

    z_threshold: float = 3.5  # Iglewicz & Hoaglin's recommended cut-off for the modified z-score
    high_z: float = 7.0
    card_min_history: int = 10
    company_min_history: int = 30
    history_days: int = 90
    card_history_max: int = 200  # the card's most recent purchases looked at
    company_history_max: int = 5_000
    min_relative_spread: float = 0.10
    settle_seconds: int = 60
    batch_size: int = 500
    profile_days: int = 90


DEFAULT_POLICY = OutlierPolicy()


@dataclass(frozen=True, slots=True)
class Finding:
    scope: str  # card | company
    measure: str  # amount_minor | volume_ml
    value: int
    median: float
    spread: float  # the sigma the z-score divides by
    z: float
    history: int


def robust_z(value: float, history: Sequence[float], *, min_relative_spread: float) -> tuple[float, float, float]:
    """(z, median, spread) of ``value`` against ``history`` (not empty)."""
    median = statistics.median(history)
    deviations = [abs(item - median) for item in history]
    spread = MAD_TO_SIGMA * statistics.median(deviations)
    if spread == 0:
        spread = MEAN_AD_TO_SIGMA * statistics.fmean(deviations)
    spread = max(spread, min_relative_spread * abs(median), 1.0)
    return (value - median) / spread, median, spread


@dataclass(frozen=True, slots=True)
class _Purchase:
    completion_id: int
    authorization_id: int
    company_id: int
    card_id: int | None
    terminal_id: int
    product: str
    amount_minor: int
    volume_ml: int
    currency: str
    at: datetime


def _purchase_columns():
    return (select(Completion.id, Completion.authorization_id, Authorization.company_id, Authorization.card_id,
                   Authorization.terminal_id, Completion.product, Completion.amount_minor, Completion.volume_ml,
                   Authorization.currency, Completion.created_at)
            .join(Authorization, Authorization.id == Completion.authorization_id))


def _purchase(row) -> _Purchase:
    return _Purchase(*row)


def _findings(purchase: _Purchase, history: Sequence[_Purchase], scope: str, minimum: int,
              policy: OutlierPolicy) -> list[Finding]:
    found = []
    measures = [("amount_minor", [item.amount_minor for item in history])]
    if purchase.product in VOLUME_PRODUCTS:
        measures.append(("volume_ml", [item.volume_ml for item in history if item.product == purchase.product]))
    for measure, values in measures:
        if len(values) < minimum:
            continue
        value = getattr(purchase, measure)
        z, median, spread = robust_z(value, values, min_relative_spread=policy.min_relative_spread)
        if z > policy.z_threshold:
            found.append(Finding(scope=scope, measure=measure, value=value, median=round(median, 1),
                                 spread=round(spread, 1), z=round(z, 2), history=len(values)))
    return found


def _alert(purchase: _Purchase, findings: list[Finding], policy: OutlierPolicy, now: datetime) -> dict:
    scopes = {finding.scope for finding in findings}
    worst = max(findings, key=lambda finding: finding.z)
    severity = Severity.HIGH if len(scopes) == 2 or worst.z >= policy.high_z else Severity.MEDIUM
    whose = "the card's and the company's" if len(scopes) == 2 else f"the {worst.scope}'s"
    if worst.measure == "amount_minor":
        usual = format_money(int(worst.median), purchase.currency)
    else:
        usual = format_volume(int(worst.median))
    summary = (f"Purchase of {format_money(purchase.amount_minor, purchase.currency)}"
               + (f", {format_volume(purchase.volume_ml)} {purchase.product}" if purchase.volume_ml else "")
               + f" is far above {whose} usual ({usual}, z {worst.z:.1f})")
    return dict(
        company_id=purchase.company_id, card_id=purchase.card_id, authorization_id=purchase.authorization_id,
        terminal_id=purchase.terminal_id, source=AlertSource.WORKER, rule_code=RULE_CODE, rule_id=None,
        rule_version=None, outcome=RuleOutcome.ALERT, severity=severity, status=AlertStatus.OPEN,
        summary=summary[:300],
        details={"completion_id": purchase.completion_id, "findings": [asdict(finding) for finding in findings],
                 "policy": {"z_threshold": policy.z_threshold, "history_days": policy.history_days,
                            "card_min_history": policy.card_min_history,
                            "company_min_history": policy.company_min_history}},
        created_at=now, updated_at=now,
    )


async def _cursor(session: AsyncSession, now: datetime) -> FraudWorkerCursor:
    """The cursor row, locked: a second worker waits here until this batch commits."""
    await session.execute(insert_for(session)(FraudWorkerCursor)
                          .values(name=CURSOR_NAME, last_id=0, updated_at=now)
                          .on_conflict_do_nothing(index_elements=["name"]))
    return (await session.execute(
        select(FraudWorkerCursor).where(FraudWorkerCursor.name == CURSOR_NAME).with_for_update()
    )).scalar_one()


async def score_completions(session: AsyncSession, *, now: datetime,
                            policy: OutlierPolicy = DEFAULT_POLICY) -> tuple[int, int]:
    """Score one batch of completions after the cursor; (completions scored, alerts raised).

    The caller commits: the alerts and the advanced cursor go together."""
    cursor = await _cursor(session, now)
    horizon = now - timedelta(seconds=policy.settle_seconds)
    rows = (await session.execute(
        _purchase_columns().where(Completion.id > cursor.last_id).order_by(Completion.id).limit(policy.batch_size)
    )).all()
    batch: list[_Purchase] = []
    for row in rows:
        purchase = _purchase(row)
        if purchase.at > horizon:
            break  # this one and everything after it wait for the next round
        batch.append(purchase)
    if not batch:
        return 0, 0

    already = set((await session.execute(
        select(FraudAlert.authorization_id).where(
            FraudAlert.authorization_id.in_([purchase.authorization_id for purchase in batch]),
            FraudAlert.source == AlertSource.WORKER, FraudAlert.rule_code == RULE_CODE)
    )).scalars())
    company_history = await _company_histories(session, batch, policy)
    alerts = []
    for purchase in batch:
        if purchase.authorization_id in already:
            continue
        since = purchase.at - timedelta(days=policy.history_days)
        findings: list[Finding] = []
        if purchase.card_id is not None:
            card_history = [_purchase(row) for row in (await session.execute(
                _purchase_columns()
                .where(Authorization.card_id == purchase.card_id, Completion.id < purchase.completion_id,
                       Completion.created_at >= since)
                .order_by(Completion.id.desc()).limit(policy.card_history_max)
            )).all()]
            findings += _findings(purchase, card_history, "card", policy.card_min_history, policy)
        peers = [item for item in company_history[purchase.company_id]
                 if item.completion_id < purchase.completion_id and item.at >= since]
        findings += _findings(purchase, peers[-policy.company_history_max:], "company",
                              policy.company_min_history, policy)
        if findings:
            alerts.append(_alert(purchase, findings, policy, now))
    if alerts:
        await session.execute(FraudAlert.__table__.insert(), alerts)
    cursor.last_id = batch[-1].completion_id
    cursor.updated_at = now
    await session.flush()
    return len(batch), len(alerts)


async def _company_histories(session: AsyncSession, batch: Sequence[_Purchase],
                             policy: OutlierPolicy) -> dict[int, list[_Purchase]]:
    """Each company's purchases the batch's completions are compared with, oldest first."""
    histories: dict[int, list[_Purchase]] = defaultdict(list)
    by_company: dict[int, list[_Purchase]] = defaultdict(list)
    for purchase in batch:
        by_company[purchase.company_id].append(purchase)
    for company_id, purchases in by_company.items():
        since = min(purchase.at for purchase in purchases) - timedelta(days=policy.history_days)
        last = max(purchase.completion_id for purchase in purchases)
        rows = (await session.execute(
            _purchase_columns()
            .where(Authorization.company_id == company_id, Completion.id < last, Completion.created_at >= since)
            .order_by(Completion.id.desc()).limit(policy.company_history_max + len(purchases))
        )).all()
        histories[company_id] = [_purchase(row) for row in reversed(rows)]
    return histories


# --- company profiles ----------------------------------------------------------------------------

def profile_of(purchases: Sequence[tuple[datetime, int]], *, timezone: str, now: datetime, days: int) -> dict:
    """The profile of (authorization time, completed amount) pairs in the format the rules read
    (fraud.engine.profile, version 1), plus what it was computed from, for people."""
    zone = ZoneInfo(timezone)
    hours = [0] * HOURS_PER_WEEK
    for at, _ in purchases:
        hours[hour_of_week(at.astimezone(zone))] += 1
    amounts = [amount for _, amount in purchases]
    profile = build_profile(hours, typical_amount_minor=int(statistics.median(amounts)) if amounts else None)
    profile.update(window_days=days, timezone=timezone, computed_at=now.isoformat())
    return profile


async def compute_company_profiles(session: AsyncSession, *, now: datetime,
                                   policy: OutlierPolicy = DEFAULT_POLICY,
                                   company_ids: Sequence[int] | None = None) -> int:
    """Recompute the profile of every company (or these) from its completed purchases of the last
    ``policy.profile_days`` days; returns how many profiles were written. The caller commits."""
    since = now - timedelta(days=policy.profile_days)
    companies = select(Company.id, Company.timezone).order_by(Company.id)
    if company_ids is not None:
        companies = companies.where(Company.id.in_(list(company_ids)))
    written = 0
    for company_id, timezone in (await session.execute(companies)).all():
        purchases = (await session.execute(
            select(Authorization.created_at, Completion.amount_minor)
            .join(Completion, Completion.authorization_id == Authorization.id)
            .where(Authorization.company_id == company_id, Authorization.created_at >= since,
                   Authorization.created_at <= now)
        )).all()
        profile = profile_of([tuple(row) for row in purchases], timezone=timezone, now=now,
                             days=policy.profile_days)
        statement = insert_for(session)(CompanyFraudProfile).values(company_id=company_id, profile=profile,
                                                                    computed_at=now)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["company_id"], set_={"profile": profile, "computed_at": now}))
        written += 1
    return written


# --- running it ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RoundResult:
    scored: int
    alerts: int
    profiles: int


async def score_pending(sessionmaker, *, now: datetime, policy: OutlierPolicy = DEFAULT_POLICY) -> tuple[int, int]:
    """Score every settled completion after the cursor, one transaction per batch."""
    scored = raised = 0
    while True:
        async with unit_of_work(sessionmaker) as session:
            batch, alerts = await score_completions(session, now=now, policy=policy)
        scored, raised = scored + batch, raised + alerts
        if batch < policy.batch_size:
            return scored, raised


async def recompute_profiles(sessionmaker, *, now: datetime, policy: OutlierPolicy = DEFAULT_POLICY) -> int:
    """Every company's profile, each in its own short transaction."""
    async with unit_of_work(sessionmaker) as session:
        company_ids = list((await session.execute(select(Company.id).order_by(Company.id))).scalars())
    for company_id in company_ids:
        async with unit_of_work(sessionmaker) as session:
            await compute_company_profiles(session, now=now, policy=policy, company_ids=[company_id])
    return len(company_ids)


async def run_round(sessionmaker, *, now: datetime, policy: OutlierPolicy = DEFAULT_POLICY,
                    profiles: bool = True) -> RoundResult:
    scored, alerts = await score_pending(sessionmaker, now=now, policy=policy)
    written = await recompute_profiles(sessionmaker, now=now, policy=policy) if profiles else 0
    return RoundResult(scored=scored, alerts=alerts, profiles=written)


async def run_forever(sessionmaker, clock, *, interval_seconds: float, profile_interval_seconds: float,
                      policy: OutlierPolicy = DEFAULT_POLICY) -> None:
    """Score every ``interval_seconds``, recompute profiles every ``profile_interval_seconds``;
    a failed round (the database away) is logged and tried again at the next interval."""
    last_profiles: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        profiles_due = last_profiles is None or started - last_profiles >= profile_interval_seconds
        try:
            result = await run_round(sessionmaker, now=clock(), policy=policy, profiles=profiles_due)
        except Exception:  # the worker must outlive a database outage
            logger.exception("fraud worker round failed; retrying in %s s", interval_seconds)
        else:
            if profiles_due:
                last_profiles = started
            if result.scored or result.profiles:
                logger.info("fraud worker: %s completions scored, %s alerts, %s profiles",
                            result.scored, result.alerts, result.profiles)
        await asyncio.sleep(interval_seconds)
