"""Customer contracts (owned by the fuel company's CRM): credit line, tariff, the CRM's id."""
