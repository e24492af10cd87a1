"""The inbound CRM API (/v1/crm): the fuel company's CRM creates companies and contracts, issues
and blocks cards, reads balances. Service credentials (auth.py); every write idempotent (idempotency.py)."""
