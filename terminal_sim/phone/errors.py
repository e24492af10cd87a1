"""What can go wrong on the phone; the CLI prints the message and exits 1."""

from __future__ import annotations


class PhoneError(Exception):
    """A problem the driver can read and act on."""


class HostRefused(PhoneError):
    """The host answered with an error: its `{"error", "detail"}` body."""

    def __init__(self, status_code: int, code: str, detail: str, *, retry_after: str | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class HostUnreachable(PhoneError):
    """No answer from the host (network down, wrong URL, timeout)."""


class NotSignedIn(PhoneError):
    """No session on this phone, or the host ended it."""


class NotEnrolled(PhoneError):
    """No card on this phone yet."""
