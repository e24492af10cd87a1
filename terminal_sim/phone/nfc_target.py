"""The phone held to an nfcpy reader: an ISO/IEC 14443-4 Type 4A card, as host card emulation.

nfcpy can be a reader of Type 4 tags but cannot emulate one, so the phone does the card's part
itself on top of nfcpy's target mode (`ContactlessFrontend.listen` and `exchange`): it answers
the reader's NFC-A anticollision with SAK 20 (ISO 14443-4 compliant; nfcpy's driver does this
part), answers RATS with an ATS, and then runs ISO-DEP (terminal_sim/phone/isodep.py), handing
each whole command APDU to the payment applet's `process_apdu` and asking the reader for waiting
time extensions while a slow applet works.

With nfcpy's ``udp`` driver (``udp:<host>:<port>``) the phone is the side that binds the port
(`listen_tta`); the reader (terminal_sim/readers/nfc.py) sends to it from an ephemeral port and
the phone answers whatever address the frame came from. The reader ends a session by sending
``RFOFF``, which the phone sees as the field going away.

`NfcPhone` runs in a background thread, so a test or the demo can run the terminal in front.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import nfc
import nfc.clf

from terminal_sim.phone import isodep

logger = logging.getLogger(__name__)

SAK_ISO14443_4 = b"\x20"
ATQA_SINGLE_SIZE_UID = b"\x04\x00"  # bit frame anticollision, 4-byte UID
HCE_RANDOM_UID_PREFIX = 0x08  # phones in card emulation present a random UID starting 08
SENS_REQ = b"\x26"
SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"

DEFAULT_FSCI = 8  # the phone takes frames of 256 bytes
DEFAULT_FWI = 10  # FWT of about 0.31 s: room for a thread on a busy machine to answer
DEFAULT_WTXM = 4
LISTEN_SLICE_SECONDS = 0.5  # how often the listening thread looks at stop()
IDLE_SECONDS = 3.0  # a reader that went silent without RFOFF is given up after this
# A reader waits as long as the card keeps asking for time; a hung applet must not hold it forever.
MAX_APPLET_SECONDS = 20.0

ProcessApdu = Callable[[bytes], bytes]


class NfcPhone:
    """A phone in card emulation on an nfcpy device (``udp:127.0.0.1:<port>`` in tests)."""

    def __init__(
        self,
        process_apdu: ProcessApdu,
        *,
        device: str = "udp:127.0.0.1:54321",
        fsci: int = DEFAULT_FSCI,
        fwi: int = DEFAULT_FWI,
        wtxm: int = DEFAULT_WTXM,
        uid: bytes | None = None,
    ):
        self.process_apdu = process_apdu
        self.device = device
        self.fsci = fsci
        self.fwi = fwi
        self.wtxm = wtxm
        self.frame_waiting_time = isodep.frame_waiting_time(fwi)
        self.ats = isodep.build_ats(fsci=fsci, fwi=fwi)
        self.uid = uid or bytes([HCE_RANDOM_UID_PREFIX]) + secrets.token_bytes(3)
        # Every frame of the latest session, both ways: ("rx" | "tx", bytes), for tests and traces.
        self.frames: list[tuple[str, bytes]] = []
        self.sessions = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._away = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._applet_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nfc-applet")

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> NfcPhone:
        """Open the nfcpy device and start answering readers in a background thread."""
        clf = nfc.ContactlessFrontend()
        if not clf.open(self.device):
            raise OSError(f"nfcpy cannot open {self.device!r}")
        self._thread = threading.Thread(target=self._run, args=(clf,), name="nfc-phone", daemon=True)
        self._thread.start()
        if self.device.startswith("udp"):
            self._wait_until_bound(clf)
        return self

    def _wait_until_bound(self, clf: nfc.ContactlessFrontend, timeout: float = 2.0) -> None:
        """Return once the udp driver holds the port, so a reader started next finds the phone.

        A reader's first poll that comes before the bind is lost and costs it a second; nfcpy
        offers no signal for "listening", so this looks at the driver's socket.
        """
        port = int(self.device.rsplit(":", 1)[1])
        give_up_at = time.monotonic() + timeout
        while time.monotonic() < give_up_at and self._thread.is_alive():
            bound = getattr(clf.device, "socket", None)
            try:
                if bound is not None and bound.getsockname()[1] == port:
                    return
            except OSError:
                pass  # the thread closed it between the two looks; it binds a new one
            self._stop.wait(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop answering, close the device and wait for the thread; re-raise a crash of it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the NFC phone thread did not stop")
        self._applet_runner.shutdown(wait=False, cancel_futures=True)
        if self.failure is not None:
            raise RuntimeError("the NFC phone thread failed") from self.failure

    def take_away(self) -> None:
        """The driver pulls the phone away: from the next frame on, it answers nothing."""
        self._away.set()

    def __enter__(self) -> NfcPhone:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- radio loop -------------------------------------------------------------------------

    def _run(self, clf: nfc.ContactlessFrontend) -> None:
        try:
            while not self._stop.is_set() and not self._away.is_set():
                started = time.monotonic()
                target = clf.listen(self._listen_target(), LISTEN_SLICE_SECONDS)
                if target is None:
                    # listen() gives up at once when the port is taken; do not spin on that.
                    if time.monotonic() - started < LISTEN_SLICE_SECONDS / 2:
                        self._stop.wait(LISTEN_SLICE_SECONDS)
                    continue
                if target.tt4_cmd:
                    self.sessions += 1
                    self._serve(clf, bytes(target.tt4_cmd))
        except BaseException as error:  # noqa: BLE001 - kept for stop() to re-raise in the test
            logger.exception("the NFC phone thread failed")
            self.failure = error
        finally:
            clf.close()

    def _listen_target(self) -> nfc.clf.LocalTarget:
        return nfc.clf.LocalTarget(
            "106A", sens_res=ATQA_SINGLE_SIZE_UID, sdd_res=self.uid, sel_res=SAK_ISO14443_4
        )

    def _serve(self, clf: nfc.ContactlessFrontend, first_command: bytes) -> None:
        """One activation: RATS/ATS, then ISO-DEP blocks until DESELECT or the field goes."""
        self.frames = [("rx", first_command)]  # the trace of the latest session only
        rats = isodep.parse_rats(first_command)
        if rats is None:
            logger.debug("not a RATS (%s): this phone is a Type 4A card only", first_command.hex())
            return
        card = isodep.IsoDepCard(fsd=rats.fsd)
        block: bytes | None = self.ats
        while True:
            command = self._exchange(clf, block, IDLE_SECONDS)
            if command is None or command == SENS_REQ:
                return  # field off, reader gone, or a new reader polling
            action = card.receive(command)
            if isinstance(action, isodep.Send):
                block = action.block
            elif isinstance(action, isodep.CommandApdu):
                block = self._answer(clf, card, action.apdu)
                if block is None:
                    return
            elif isinstance(action, isodep.Deselected):
                self._exchange(clf, action.block, 0)
                return
            else:
                if isinstance(action, isodep.Ignore):
                    logger.debug("ignoring a block: %s", action.reason)
                block = None  # a card stays silent on a block it cannot take

    def _answer(self, clf: nfc.ContactlessFrontend, card: isodep.IsoDepCard, apdu: bytes) -> bytes | None:
        """The applet's answer to `apdu` as a block, asking for S(WTX) while it works."""
        pending = self._applet_runner.submit(self.process_apdu, apdu)
        # Ask for more time well before the reader's frame waiting time runs out.
        wait = self.frame_waiting_time / 2
        give_up_at = time.monotonic() + MAX_APPLET_SECONDS
        while True:
            try:
                response = pending.result(timeout=wait)
                break
            except FutureTimeout:
                if time.monotonic() > give_up_at:
                    logger.error("the payment applet did not answer %s in time", apdu[:4].hex())
                    response = SW_NO_PRECISE_DIAGNOSIS
                    break
            except Exception:  # noqa: BLE001 - an applet bug must not leave the reader hanging
                logger.exception("the payment applet failed on %s", apdu[:4].hex())
                response = SW_NO_PRECISE_DIAGNOSIS
                break
            granted = self._request_waiting_time(clf, card)
            if granted is None:
                return None
            wait = granted * self.frame_waiting_time / 2
        return card.respond(response)

    def _request_waiting_time(self, clf: nfc.ContactlessFrontend, card: isodep.IsoDepCard) -> int | None:
        """Send S(WTX) until the reader grants it; the multiplier, or None if the reader left."""
        block: bytes | None = card.wtx_request(self.wtxm)
        while True:
            reply = self._exchange(clf, block, IDLE_SECONDS)
            if reply is None:
                return None
            action = card.receive(reply)
            if isinstance(action, isodep.WtxGranted):
                return action.wtxm
            if isinstance(action, isodep.Deselected):
                self._exchange(clf, action.block, 0)
                return None
            block = action.block if isinstance(action, isodep.Send) else None

    def _exchange(self, clf: nfc.ContactlessFrontend, block: bytes | None, timeout: float) -> bytes | None:
        """Send `block` (None: stay silent) and wait for the reader's next frame; None when gone."""
        if self._away.is_set() or self._stop.is_set():
            return None
        if block is not None:
            self.frames.append(("tx", block))
        while True:
            try:
                command = clf.exchange(block, timeout)
                break
            except (nfc.clf.BrokenLinkError, nfc.clf.TimeoutError):
                return None  # RFOFF (the reader switched its field off) or a silent reader
            except nfc.clf.CommunicationError as error:
                logger.debug("reader frame lost: %s", error)
                block = None  # a garbled frame: keep listening for the reader's next one
        if command is None:
            return None
        command = bytes(command)
        if self._away.is_set():
            return None  # the phone left the field before this frame reached it
        self.frames.append(("rx", command))
        return command
