"""Top-ups over HTTP: card payments through the gateway, invoices, bank statements, the operator's queue."""
