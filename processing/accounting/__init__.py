"""Accounting exports: the daily register of operations and its reconciliation with the ledger."""
