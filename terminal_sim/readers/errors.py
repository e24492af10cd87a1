"""What can go wrong while reading a phone; the message is what the terminal shows.

None of these ever reaches the host: the terminal sends an authorization only for a token it
read completely and decoded.
"""

from __future__ import annotations


class ReaderError(Exception):
    """Reading the phone failed; the message says why in words an attendant can act on."""


class NoReader(ReaderError):
    """No reader to read with: the PC/SC service is down, or no reader matches the device string."""


class NoCard(ReaderError):
    """No phone was held to the reader before the time ran out."""


class CardRemoved(ReaderError):
    """The phone left the field in the middle of the exchange."""


class UnknownApplication(ReaderError):
    """The phone (or card) does not have the platform's payment application (6A82)."""


class BadAnswer(ReaderError):
    """The phone answered, but not with a well-formed token for this terminal's number."""
