"""The rules admin: the rule list, edits and company overrides (each a new version), backtests."""
