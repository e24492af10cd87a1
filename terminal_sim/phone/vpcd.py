"""The phone held to a PC/SC reader: a virtual card ("vicc") for vsmartcard's vpcd driver.

pcscd with the `vsmartcard-vpcd` driver shows a reader, "Virtual PCD 00 00", whose card is
whatever connects to 127.0.0.1:35963 (the second slot, "Virtual PCD 00 01", listens on 35964).
The protocol is vpcd's: every message, both ways, is a 2-byte big-endian length and then the
data. A 1-byte message from vpcd is a control code (00 power off, 01 power on, 02 reset,
04 "send your ATR"; only the last is answered); a longer one is a C-APDU, answered with the
R-APDU. Closing the connection is the card leaving the field.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Protocol

logger = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 0x8C7B  # 35963, the DEVICENAME port in /etc/reader.conf.d/vpcd

CONTROL_POWER_OFF = 0x00
CONTROL_POWER_ON = 0x01
CONTROL_RESET = 0x02
CONTROL_GET_ATR = 0x04

# What a PC/SC contactless reader reports for an ISO 14443-4 card without historical bytes
# (PC/SC part 3): T=1 only. Android phones doing host card emulation show this same ATR.
CONTACTLESS_ATR = bytes.fromhex("3B80800101")

SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"


class CardApplication(Protocol):
    """What runs on the card: `terminal_sim.phone.card_emulation.PaymentApplet`, or any other."""

    def process_apdu(self, apdu: bytes) -> bytes: ...

    def deselect(self) -> None: ...


class VirtualCard:
    """Serves APDUs to vpcd through a card application (a PaymentApplet) in a background thread.

    `remove_after_apdus=N` takes the phone away right after its N-th answer (a driver pulling
    the phone back mid-exchange); `remove()` does it at any time.
    """

    def __init__(self, applet: CardApplication, *, host: str = VPCD_HOST, port: int = VPCD_PORT,
                 atr: bytes = CONTACTLESS_ATR, remove_after_apdus: int | None = None):
        self.applet = applet
        self.host = host
        self.port = port
        self.atr = atr
        self.remove_after_apdus = remove_after_apdus
        self.exchanges: list[tuple[bytes, bytes]] = []  # (C-APDU, R-APDU), in order
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._removed = threading.Event()

    def connect(self, timeout_seconds: float = 10.0) -> VirtualCard:
        """Put the phone on the reader; retries while pcscd's vpcd is not listening yet."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                connection = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError as error:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"vpcd does not listen on {self.host}:{self.port} ({error}); is pcscd running "
                        "with the vsmartcard-vpcd driver? (scripts/ensure-pcscd)") from None
                time.sleep(0.1)
        connection.settimeout(None)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = connection
        self._removed.clear()
        self._thread = threading.Thread(target=self._serve, name=f"vicc:{self.port}", daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        """Take the phone away: vpcd sees the connection close, pcscd reports the card removed."""
        with self._lock:
            if self._socket is not None:
                try:
                    self._socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # vpcd already closed it
                self._socket.close()
                self._socket = None
        self.applet.deselect()
        self._removed.set()

    def close(self) -> None:
        self.remove()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def removed(self) -> bool:
        return self._removed.is_set()

    def wait_removed(self, timeout_seconds: float) -> bool:
        return self._removed.wait(timeout_seconds)

    def __enter__(self) -> VirtualCard:
        if self._socket is None:
            self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- The vpcd conversation ------------------------------------------------------------

    def _serve(self) -> None:
        connection = self._socket
        try:
            while connection is not None:
                message = _receive(connection)
                if message is None:
                    break  # vpcd closed the connection (pcscd stopped)
                answer = self._answer(message)
                if answer is not None:
                    connection.sendall(len(answer).to_bytes(2, "big") + answer)
                    if (len(message) > 1 and self.remove_after_apdus is not None
                            and len(self.exchanges) >= self.remove_after_apdus):
                        break
        except OSError:
            pass  # removed by remove() while waiting, or vpcd went away
        finally:
            self.remove()

    def _answer(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            control = message[0]
            if control == CONTROL_GET_ATR:
                return self.atr
            if control in (CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET):
                # A new field or a reset: the terminal must SELECT again, as on a real phone.
                self.applet.deselect()
                return None
            logger.warning("vpcd sent an unknown control code %02X", control)
            return None
        try:
            response = self.applet.process_apdu(message)
        except Exception:  # noqa: BLE001 - a card answers every command, even when its app fails
            logger.exception("the payment application failed on a command")
            response = SW_NO_PRECISE_DIAGNOSIS
        self.exchanges.append((message, response))
        return response


def _receive(connection: socket.socket) -> bytes | None:
    """One length-prefixed message, or None when the peer closed the connection."""
    header = _receive_exactly(connection, 2)
    if header is None:
        return None
    length = int.from_bytes(header, "big")
    return _receive_exactly(connection, length) if length else b""


def _receive_exactly(connection: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = connection.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
