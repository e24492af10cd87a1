"""A small run of the matching benchmark on each database: no transfer goes to the wrong company."""

from __future__ import annotations

from processing.payments.bench import run_bench


async def test_a_300_line_statement_matches_no_line_to_the_wrong_company(database_url):
    report = await run_bench(database_url, lines=300, seed=7, companies=60)
    print("\n" + report.render())
    assert report.matched_wrongly == 0
    assert report.ledger_problems == 0
    assert report.duplicates_skipped == report.duplicates_expected > 0
    assert report.matched > 0 and report.queued > 0
    assert report.share_correct == 1.0
    assert report.share_matched > 0.7  # most lines are found without a person
    assert {"invoice", "inn", "amount"} <= set(report.by_rule)
    assert "matched automatically" in report.render() and "matched correctly" in report.render()
