"""Accounting pulls a company's daily register and its reconciliation with the ledger over the
CRM API, with the CRM's service key."""

from __future__ import annotations

import csv
import io

from processing.accounting.register import CSV_HEADER
from tests.crm_bridge.crm_api_support import make_crm
from tests.processing.accounting.day import DAY, busy_day


async def test_the_register_and_its_reconciliation_over_the_crm_api(state, http, clock):
    day = await busy_day(state, http, clock)
    crm = await make_crm(state, http, name="Accounting")
    company = day.world.company_id

    as_json = await crm.get(f"/companies/{company}/register", date=DAY.isoformat())
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert body["date"] == DAY.isoformat() and len(body["rows"]) == 9
    assert body["totals"]["capture"]["count"] >= 1

    as_csv = await crm.get(f"/companies/{company}/register", date=DAY.isoformat(), format="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.text.splitlines()[0].split(",") == list(CSV_HEADER)
    assert [row["event_id"] for row in rows] == [row["event_id"] for row in body["rows"]]

    proof = await crm.get(f"/companies/{company}/reconciliation", date=DAY.isoformat())
    assert proof.status_code == 200, proof.text
    assert proof.json()["balanced"] is True and proof.json()["differences"] == []


async def test_accounting_exports_refuse_bad_requests(state, http):
    crm = await make_crm(state, http)
    assert (await crm.get("/companies/999999/register", date="2025-06-04")).status_code == 404
    assert (await crm.get("/companies/1/register", date="2025-13-40")).status_code == 422
    assert (await crm.get("/companies/1/register", date="2025-06-04", format="xml")).status_code == 422
    assert (await crm.get("/companies/1/reconciliation")).status_code == 422
    anonymous = await http.get("/v1/crm/companies/1/register", params={"date": "2025-06-04"})
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
