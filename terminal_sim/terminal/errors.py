"""What can stop a sale at the terminal, each with a message for the attendant."""

from __future__ import annotations


class TerminalError(Exception):
    """A sale cannot go on; the message says why in words."""


class ConfigurationError(TerminalError):
    """The station file, the key file or an option is wrong."""


class HostRefused(TerminalError):
    """The host answered with an error (not a decline): bad signature, unknown hold, ..."""

    def __init__(self, status_code: int, body: dict):
        self.status_code = status_code
        self.body = body
        self.code = str(body.get("error") or "http_error")
        detail = body.get("detail") or f"the host answered {status_code}"
        super().__init__(f"{detail} ({self.code}, HTTP {status_code})")


class HostUnreachable(TerminalError):
    """No answer from the host after every attempt."""
