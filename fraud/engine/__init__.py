"""The rules engine: pure, fast evaluation of the fraud rules over a context the authorization
path builds from what it already loaded (never a history scan)."""
