"""A payment gateway simulator with the wire behaviour of processing.payments.gateway."""
