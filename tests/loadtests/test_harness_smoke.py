"""A short real run of the benchmark harness, so the one command keeps working: tiny data, a few
seconds per step, both scenarios, on SQLite and on PostgreSQL (with pgbench). It checks what the
run measured, not only that it ran. The full benchmark (issue-size data, 60 s steps) is not part
of the suite."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import asyncpg
import pytest

from loadtests.bench.server import REPO_ROOT, checkout_environment
from tests.conftest import POSTGRES_ADMIN_URL

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--companies", "5", "--cards", "50", "--stations", "2", "--terminals", "4",
        "--users", "2,4", "--duration", "2", "--warmup", "0", "--workers", "2"]


async def _databases_named(prefix: str) -> list[str]:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{prefix}%")
    finally:
        await connection.close()
    return [row["datname"] for row in rows]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_harness_measures_both_scenarios_and_writes_its_report(database, request, tmp_path):
    arguments = [sys.executable, "-m", "loadtests.harness", "--database", database, "--out", str(tmp_path), *TINY]
    name = f"fuelcard_smoke_{uuid.uuid4().hex[:8]}"
    if database == "postgresql":
        request.getfixturevalue("postgresql_url")  # skips, or fails under scripts/test, without a server
        arguments += ["--postgres-url", POSTGRES_ADMIN_URL, "--database-name", name, "--drop-databases"]
    run = subprocess.run(arguments, cwd=REPO_ROOT, env=checkout_environment(), capture_output=True, text=True,
                         timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode in (0, 2), output  # 2: valid run of the flows, but locust was CPU-bound
    result = json.loads((tmp_path / "result.json").read_text())

    assert result["ok"] and result["failures"] == 0, output
    assert (run.returncode == 2) == bool(result["invalid_steps"])
    assert result["ledger_consistent"] == {"spread": True, "hot": True}
    assert all(not result["scenarios"][scenario]["server_errors"] for scenario in ("spread", "hot")), output
    spread, hot = (result["scenarios"][scenario]["steps"] for scenario in ("spread", "hot"))
    assert [step["users"] for step in spread] == [step["users"] for step in hot] == [2, 4]
    for step in spread + hot:
        assert step["authorizations"] > 0 and step["auth_per_s"] > 0, output
        assert step["completions_per_s"] > 0 and step["failures"] == 0, step["failure_messages"]
        assert step["latency_ms"]["p50"] > 0 and step["latency_ms"]["p99"] >= step["latency_ms"]["p50"]
        assert step["locust_cpu"]["samples"] > 0 and step["locust_cpu"]["average_percent"] > 0
    for step in spread:
        assert step["health_per_s"] > step["auth_per_s"] and step["health_failures"] == 0
        assert step["ratios"]["auth_vs_health"] == pytest.approx(step["auth_per_s"] / step["health_per_s"], abs=1e-3)
    for step in hot:
        assert step["ratios"]["hot_vs_spread"] > 0
    assert result["ratios"]["peak_auth_vs_peak_health"] > 0
    assert result["ratios"]["peak_hot_vs_peak_spread"] > 0
    assert result["at_70_percent_of_peak"]["p99_ms"] > 0
    assert {check["name"] for check in result["checks"] if check["passed"] is not None} >= {
        "auth/s ÷ /health req/s (peak vs peak)", "hot auth/s ÷ spread auth/s (peak vs peak)",
        "errors other than business declines"}

    if database == "postgresql":
        assert set(result["synchronous_commit"].values()) == {"on"}
        for step in spread:
            pgbench = step["pgbench"]
            assert pgbench["ok"] and pgbench["failed_transactions"] == 0, pgbench["errors"]
            assert pgbench["authorization_tps"] > 0 and pgbench["completion_tps"] > 0
            assert step["ratios"]["auth_vs_pgbench"] > 0
        assert result["ratios"]["peak_auth_vs_peak_pgbench"] > 0
        assert asyncio.run(_databases_named(name)) == []  # --drop-databases left nothing behind
    else:
        assert all("pgbench" not in step for step in spread)
        assert result["ratios"]["peak_auth_vs_peak_pgbench"] is None

    chart = (tmp_path / "chart.png").read_bytes()
    assert chart.startswith(PNG_SIGNATURE) and len(chart) > 10_000
    assert "=== summary ===" in run.stdout and "ledger check (hot): consistent" in run.stdout
