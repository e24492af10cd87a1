"""Machine clients of the platform (the fuel company's CRM): credentials and idempotency keys."""
