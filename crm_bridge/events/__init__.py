"""Event payload schemas (JSON Schema per event type and version)."""
