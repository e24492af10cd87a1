"""Money coming in from outside: card payments through a gateway, invoices, bank statements and
the matching of incoming transfers to companies."""
