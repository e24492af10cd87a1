"""The outbox relay: numbers events, publishes them to NATS JetStream and POSTs them to webhooks.

Run it with ``fuelcard relay run`` (``python -m crm_bridge.relay.cli run``); several processes may
run at once: a lease in the database makes one of them the leader, the others stand by.
"""
