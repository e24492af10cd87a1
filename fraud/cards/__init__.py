"""Cards for the security team: search, detail, timeline, block and unblock."""
