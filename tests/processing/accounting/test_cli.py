"""`fuelcard accounting register` and `fuelcard accounting reconcile`, run as processes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import delete, select

from processing.app import create_app
from processing.db.engine import unit_of_work
from processing.outbox.models import OutboxEvent
from processing.settings import Settings
from processing.state import PlatformState
from tests.conftest import TEST_MASTER_KEY, MovableClock
from tests.processing.accounting.day import busy_day

ROOT = Path(__file__).resolve().parents[3]


def fuelcard(tmp_path: Path, database_url: str, *arguments: str) -> subprocess.CompletedProcess:
    """The `fuelcard` command of this source tree (the installed script may point at another)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUELCARD_")}
    env.update(FUELCARD_DATABASE_URL=database_url, FUELCARD_MASTER_KEY=TEST_MASTER_KEY,
               FUELCARD_DATA_DIR=str(tmp_path / "data"), FUELCARD_AUTO_MIGRATE="false")
    return subprocess.run([sys.executable, "-c", "from processing.cli import app; app()", *arguments],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def make_busy_day(database_url: str, tmp_path: Path):
    settings = Settings(database_url=database_url, data_dir=tmp_path, master_key=TEST_MASTER_KEY)
    clock = MovableClock()

    async def build():
        state = PlatformState.from_settings(settings, clock=clock)
        try:
            app = create_app(state=state, run_background_tasks=False)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as http:
                return await busy_day(state, http, clock)
        finally:
            await state.engine.dispose()

    return settings, asyncio.run(build())


def test_register_and_reconcile_commands(database_url, tmp_path):
    settings, day = make_busy_day(database_url, tmp_path)
    company = str(day.world.company_id)

    as_csv = fuelcard(tmp_path, database_url, "accounting", "register", "--company-id", company, "--date", "2025-06-04")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["operation"] for row in rows] == [
        "capture", "top_up", "hold", "capture", "hold", "release", "hold", "release", "hold"]

    out = tmp_path / "register.json"
    as_json = fuelcard(tmp_path, database_url, "accounting", "register", "--company-id", company,
                       "--date", "2025-06-04", "--format", "json", "--out", str(out))
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["totals"]["hold"] == {
        "count": 4, "amount_minor": 600_000, "volume_ml": sum(int(row["volume_ml"]) for row in rows
                                                               if row["operation"] == "hold")}

    text = fuelcard(tmp_path, database_url, "accounting", "reconcile", "--company-id", company, "--date", "2025-06-04")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "balanced" in text.stdout and "NOT" not in text.stdout and "DIFFERS" not in text.stdout
    report = fuelcard(tmp_path, database_url, "accounting", "reconcile", "--company-id", company,
                      "--date", "2025-06-04", "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["balanced"] is True


def test_reconcile_exits_1_when_the_day_does_not_balance_and_bad_input_is_refused(database_url, tmp_path):
    settings, day = make_busy_day(database_url, tmp_path)

    async def lose_an_event():
        state = PlatformState.from_settings(settings)
        try:
            async with unit_of_work(state.sessionmaker) as session:
                event_id = await session.scalar(select(OutboxEvent.id).where(
                    OutboxEvent.event_type == "authorization.reversed"))
                await session.execute(delete(OutboxEvent).where(OutboxEvent.id == event_id))
        finally:
            await state.engine.dispose()

    asyncio.run(lose_an_event())
    company = str(day.world.company_id)
    unbalanced = fuelcard(tmp_path, database_url, "accounting", "reconcile", "--company-id", company,
                          "--date", "2025-06-04")
    assert unbalanced.returncode == 1, unbalanced.stdout + unbalanced.stderr
    assert "NOT balanced" in unbalanced.stdout and "not_in_register" in unbalanced.stdout

    unknown = fuelcard(tmp_path, database_url, "accounting", "register", "--company-id", "999999", "--date", "2025-06-04")
    assert unknown.returncode == 1 and "company_not_found" in unknown.stderr
    bad_date = fuelcard(tmp_path, database_url, "accounting", "register", "--company-id", company, "--date", "4.6.2025")
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
