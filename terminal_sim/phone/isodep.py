"""The card (PICC) side of ISO/IEC 14443-4 (ISO-DEP) for the phone's Type 4A emulation.

Pure code, no radio: `IsoDepCard.receive(block)` says what to do with a block from the reader,
`respond(apdu)` turns the applet's answer into the block to send, `wtx_request(wtxm)` asks the
reader for more time. The radio loop (terminal_sim/phone/nfc_target.py) only moves bytes.

Frames here are PCB + INF without the two CRC bytes (nfcpy's drivers strip and add them), but
frame sizes still count them: a frame of FSD bytes carries FSD - 3 bytes of INF (PCB, EDC).

The block-number rules are those of ISO/IEC 14443-4 section 7.5.4 ("PICC rules"):
- C: the PICC block number starts at 1 after activation;
- D: an I-block toggles it before the PICC answers;
- E: an R(ACK) whose number differs from the PICC's toggles it (the next chained block);
- 10: an R-block with the PICC's number makes the PICC send its last block again;
- 11: an R(NAK) with a different number is answered by R(ACK);
- 13: an I-block with the chaining bit is answered by R(ACK).
"""

from __future__ import annotations

from dataclasses import dataclass

# Frame sizes by FSDI/FSCI (ISO/IEC 14443-4 table 1); values above 8 were RFU before the 2016
# edition and are read as 256, which is also what readers that send them can all receive.
FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)
_FRAME_OVERHEAD = 3  # PCB and the two EDC bytes; no CID or NAD: this card supports neither

RATS_START = 0xE0
PCB_I_BLOCK = 0x02
PCB_CHAINING = 0x10
PCB_R_ACK = 0xA2
PCB_R_NAK = 0xB2
PCB_S_DESELECT = 0xC2
PCB_S_WTX = 0xF2
_PCB_CID_FOLLOWING = 0x08
_PCB_NAD_FOLLOWING = 0x04
MAX_WTXM = 59  # WTXM is 1..59 (ISO/IEC 14443-4 7.3)

FWI_MAX = 14
CARRIER_HZ = 13.56e6


def frame_size(index: int) -> int:
    """The frame size in bytes for an FSDI or FSCI value."""
    if index < 0:
        raise ValueError("a frame size index is not negative")
    return FRAME_SIZES[min(index, len(FRAME_SIZES) - 1)]


def frame_waiting_time(fwi: int) -> float:
    """FWT in seconds for a frame waiting time integer: 256 * 16 / fc * 2**FWI."""
    if not 0 <= fwi <= FWI_MAX:
        raise ValueError(f"FWI is 0 to {FWI_MAX}")
    return 4096 / CARRIER_HZ * 2**fwi


@dataclass(frozen=True, slots=True)
class Rats:
    """A parsed RATS: the reader's frame size (FSD) and the CID it gives this card."""

    fsd: int
    cid: int


def parse_rats(command: bytes) -> Rats | None:
    """The reader's RATS (E0, FSDI<<4 | CID), or None when `command` is not a RATS."""
    if len(command) != 2 or command[0] != RATS_START:
        return None
    return Rats(fsd=frame_size(command[1] >> 4), cid=command[1] & 0x0F)


def build_ats(*, fsci: int, fwi: int, sfgi: int = 0, historical: bytes = b"") -> bytes:
    """The ATS: TL, T0 (TA, TB, TC present; FSCI), TA (106 kbit/s only), TB (FWI, SFGI), TC."""
    if not 0 <= fsci <= 8:
        raise ValueError("FSCI is 0 to 8")
    if not 0 <= fwi <= FWI_MAX or not 0 <= sfgi <= FWI_MAX:
        raise ValueError(f"FWI and SFGI are 0 to {FWI_MAX}")
    t0 = 0x70 | fsci
    ta = 0x00  # same bit rate both ways, 106 kbit/s only
    tb = fwi << 4 | sfgi
    tc = 0x00  # neither NAD nor CID supported
    body = bytes([t0, ta, tb, tc]) + historical
    return bytes([len(body) + 1]) + body


# --- What the card does with a block ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send this block to the reader (an R(ACK), a retransmission, the next chained block)."""

    block: bytes


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A whole command APDU has arrived: give `respond()` the applet's answer to it."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class WtxGranted:
    """The reader accepted the waiting time extension: it waits `wtxm` frame waiting times."""

    wtxm: int


@dataclass(frozen=True, slots=True)
class Deselected:
    """S(DESELECT): send `block` (the answer) and leave the protocol; the card is HALTed."""

    block: bytes


@dataclass(frozen=True, slots=True)
class Ignore:
    """A block this card must not answer (protocol error, CID/NAD it does not support)."""

    reason: str


Action = Send | CommandApdu | WtxGranted | Deselected | Ignore


class IsoDepCard:
    """ISO-DEP state of one activation, from the ATS until DESELECT or field loss."""

    def __init__(self, *, fsd: int):
        if fsd < 16:
            raise ValueError("FSD is at least 16 bytes")
        self.max_inf = fsd - _FRAME_OVERHEAD
        self.block_number = 1  # rule C
        self.last_block: bytes | None = None
        self._command_chain = bytearray()
        self._response_rest = b""  # answer bytes not yet sent while chaining
        self._awaiting_response = False  # a command APDU is with the applet
        self._wtx_requested: int | None = None

    def receive(self, block: bytes) -> Action:
        """What to do with one block from the reader."""
        if not block:
            return Ignore("empty frame")
        pcb = block[0]
        # Every block kind may carry a CID, only I-blocks a NAD; the ATS offered neither.
        if pcb & _PCB_CID_FOLLOWING or (pcb & 0xC0 == 0 and pcb & _PCB_NAD_FOLLOWING):
            return Ignore("CID or NAD in the block; this card supports neither")
        if pcb & 0xE2 == PCB_I_BLOCK:
            return self._receive_i_block(pcb, block[1:])
        if pcb & 0xE6 == 0xA2:
            return self._receive_r_block(pcb)
        if pcb & 0xC7 == 0xC2:
            return self._receive_s_block(pcb, block[1:])
        return Ignore(f"unknown PCB {pcb:02X}")

    def respond(self, response_apdu: bytes) -> bytes:
        """The first block of the applet's answer to the last command (chained when too long)."""
        if not self._awaiting_response:
            raise RuntimeError("no command is waiting for an answer")
        self._awaiting_response = False
        self._wtx_requested = None
        self._response_rest = bytes(response_apdu)
        return self._next_response_block()

    def wtx_request(self, wtxm: int) -> bytes:
        """S(WTX) asking for `wtxm` frame waiting times while the applet works on a command."""
        if not self._awaiting_response:
            raise RuntimeError("a waiting time extension is only asked for while a command runs")
        if not 1 <= wtxm <= MAX_WTXM:
            raise ValueError(f"WTXM is 1 to {MAX_WTXM}")
        self._wtx_requested = wtxm
        return self._remember(bytes([PCB_S_WTX, wtxm]))

    # --- block kinds --------------------------------------------------------------------------

    def _receive_i_block(self, pcb: int, inf: bytes) -> Action:
        if self._awaiting_response:
            return Ignore("an I-block while the applet is still working on the last command")
        self.block_number ^= 1  # rule D
        self._response_rest = b""  # a new command ends any answer the reader did not fetch
        self._command_chain += inf
        if pcb & PCB_CHAINING:
            return Send(self._remember(bytes([PCB_R_ACK | self.block_number])))  # rule 13
        apdu = bytes(self._command_chain)
        self._command_chain.clear()
        self._awaiting_response = True
        return CommandApdu(apdu)

    def _receive_r_block(self, pcb: int) -> Action:
        number = pcb & 0x01
        is_nak = bool(pcb & 0x10)
        if self._awaiting_response:
            # The applet is still working: only a lost S(WTX) request is worth sending again.
            if self._wtx_requested is not None and number == self.block_number:
                return Send(self.last_block)
            return Ignore("an R-block while the applet is still working")
        if number == self.block_number:
            if self.last_block is None:
                return Ignore("an R-block before this card sent any block")
            return Send(self.last_block)  # rule 10
        if is_nak:
            return Send(bytes([PCB_R_ACK | self.block_number]))  # rule 11
        if self._response_rest:
            self.block_number ^= 1  # rule E
            return Send(self._next_response_block())
        return Ignore("an R(ACK) for a chain this card is not sending")

    def _receive_s_block(self, pcb: int, inf: bytes) -> Action:
        if pcb == PCB_S_DESELECT:
            self._command_chain.clear()
            self._response_rest = b""
            return Deselected(bytes([PCB_S_DESELECT]))
        if pcb == PCB_S_WTX:
            if self._wtx_requested is None or len(inf) != 1:
                return Ignore("an S(WTX) answer this card did not ask for")
            wtxm = inf[0] & 0x3F
            if wtxm != self._wtx_requested:
                return Ignore("the S(WTX) answer does not repeat the asked multiplier")
            self._wtx_requested = None
            return WtxGranted(wtxm)
        return Ignore(f"unknown S-block {pcb:02X}")

    def _next_response_block(self) -> bytes:
        chunk, self._response_rest = (
            self._response_rest[: self.max_inf],
            self._response_rest[self.max_inf :],
        )
        pcb = PCB_I_BLOCK | self.block_number | (PCB_CHAINING if self._response_rest else 0)
        return self._remember(bytes([pcb]) + chunk)

    def _remember(self, block: bytes) -> bytes:
        self.last_block = block
        return block
