"""ISO-DEP on the card side, without radio: block numbers, chaining both ways, R-blocks, WTX, DESELECT.

The last tests put nfcpy's own reader-side ISO-DEP (`IsoDepInitiator`) in front of the card
through an in-memory link, so both ends of the protocol are somebody else's reading of the standard.
"""

from __future__ import annotations

import nfc.clf
import pytest
from nfc.tag.tt4 import IsoDepInitiator

from terminal_sim.phone import isodep
from terminal_sim.phone.isodep import (
    CommandApdu,
    Deselected,
    Ignore,
    IsoDepCard,
    Send,
    WtxGranted,
)

SELECT = bytes.fromhex("00A4040009F04655454C4341524400")


def test_ats_and_rats():
    ats = isodep.build_ats(fsci=5, fwi=10, sfgi=1)
    assert ats == bytes([5, 0x75, 0x00, 0xA1, 0x00])
    assert isodep.parse_rats(bytes.fromhex("E080")) == isodep.Rats(fsd=256, cid=0)
    assert isodep.parse_rats(bytes.fromhex("E051")) == isodep.Rats(fsd=64, cid=1)
    assert isodep.parse_rats(bytes.fromhex("E0C0")).fsd == 256  # RFU FSDI read as 256
    assert isodep.parse_rats(bytes.fromhex("0200A4")) is None
    assert isodep.frame_waiting_time(10) == pytest.approx(0.3093, abs=1e-4)
    with pytest.raises(ValueError):
        isodep.build_ats(fsci=9, fwi=4)


def test_single_blocks_toggle_the_block_number():
    card = IsoDepCard(fsd=256)
    assert card.receive(b"\x02" + SELECT) == CommandApdu(SELECT)
    assert card.respond(b"\x6f\x00\x90\x00") == b"\x02\x6f\x00\x90\x00"
    assert card.receive(b"\x03\x80\x54\x00\x00") == CommandApdu(b"\x80\x54\x00\x00")
    assert card.respond(b"\x90\x00") == b"\x03\x90\x00"
    assert card.receive(b"\x02\x00\xb0\x00\x00") == CommandApdu(b"\x00\xb0\x00\x00")


def test_chained_command_is_acknowledged_and_reassembled():
    card = IsoDepCard(fsd=256)
    assert card.receive(b"\x12" + SELECT[:7]) == Send(b"\xa2")  # R(ACK) with the I-block's number
    assert card.receive(b"\x13" + SELECT[7:12]) == Send(b"\xa3")
    assert card.receive(b"\x02" + SELECT[12:]) == CommandApdu(SELECT)
    assert card.respond(b"\x90\x00") == b"\x02\x90\x00"


def test_long_answer_is_chained_to_fit_the_readers_frame_size():
    card = IsoDepCard(fsd=16)  # 13 bytes of INF per frame
    answer = bytes(range(30)) + b"\x90\x00"
    assert card.receive(b"\x02" + SELECT) == CommandApdu(SELECT)
    first = card.respond(answer)
    assert first == b"\x12" + answer[:13]
    second = card.receive(b"\xa3")  # reader's R(ACK) carries its next block number
    assert second == Send(b"\x13" + answer[13:26])
    third = card.receive(b"\xa2")
    assert third == Send(b"\x02" + answer[26:])
    # The next command continues the numbering after the chain.
    assert card.receive(b"\x03" + SELECT) == CommandApdu(SELECT)


def test_nak_with_the_cards_number_retransmits_the_last_block():
    card = IsoDepCard(fsd=16)
    card.receive(b"\x02" + SELECT)
    first = card.respond(bytes(20))
    assert card.receive(b"\xb2") == Send(first)  # the reader lost the answer: send it again
    assert card.receive(b"\xa2") == Send(first)  # an ACK with the card's own number also asks again
    second = card.receive(b"\xa3").block
    assert second == b"\x03" + bytes(7)
    assert card.receive(b"\xb3") == Send(second)


def test_nak_with_another_number_is_answered_by_ack():
    card = IsoDepCard(fsd=256)
    card.receive(b"\x02" + SELECT)
    card.respond(b"\x90\x00")
    # The reader's next I-block (number 1) was lost; it NAKs with 1, the card is still at 0.
    assert card.receive(b"\xb3") == Send(b"\xa2")


def test_waiting_time_extension_while_the_applet_works():
    card = IsoDepCard(fsd=256)
    assert card.receive(b"\x02" + SELECT) == CommandApdu(SELECT)
    assert card.wtx_request(4) == b"\xf2\x04"
    assert card.receive(b"\xb2") == Send(b"\xf2\x04")  # the reader missed the request
    assert card.receive(b"\xf2\x04") == WtxGranted(4)
    assert card.wtx_request(10) == b"\xf2\x0a"
    assert card.receive(b"\xf2\x0a") == WtxGranted(10)
    assert card.respond(b"\x90\x00") == b"\x02\x90\x00"


def test_waiting_time_answers_that_were_not_asked_for_are_ignored():
    card = IsoDepCard(fsd=256)
    assert isinstance(card.receive(b"\xf2\x04"), Ignore)
    card.receive(b"\x02" + SELECT)
    card.wtx_request(4)
    assert isinstance(card.receive(b"\xf2\x05"), Ignore)  # not the multiplier asked for
    assert isinstance(card.receive(b"\x03\x00"), Ignore)  # a new command while one runs
    assert isinstance(card.receive(b"\xb3"), Ignore)
    with pytest.raises(ValueError):
        card.wtx_request(60)
    card.respond(b"\x90\x00")
    with pytest.raises(RuntimeError):
        card.wtx_request(4)


def test_deselect_ends_the_session_and_drops_partial_chains():
    card = IsoDepCard(fsd=256)
    card.receive(b"\x12" + SELECT[:5])
    assert card.receive(b"\xc2") == Deselected(b"\xc2")
    card = IsoDepCard(fsd=16)
    card.receive(b"\x02" + SELECT)
    card.respond(bytes(40))
    assert card.receive(b"\xc2") == Deselected(b"\xc2")
    assert isinstance(card.receive(b"\xa3"), Ignore)  # the rest of the answer is gone


def test_blocks_this_card_must_not_answer():
    card = IsoDepCard(fsd=256)
    assert isinstance(card.receive(b""), Ignore)
    assert isinstance(card.receive(b"\x0a\x00" + SELECT), Ignore)  # I-block with CID
    assert isinstance(card.receive(b"\x06\x00" + SELECT), Ignore)  # I-block with NAD
    assert isinstance(card.receive(b"\xb3"), Ignore)  # the card's own number, nothing sent yet
    # The reader's first I-block (number 0) was lost: the card, still at 1, acknowledges.
    assert card.receive(b"\xb2") == Send(b"\xa3")
    assert isinstance(card.receive(b"\xa3"), Ignore)  # ACK for no chain
    assert isinstance(card.receive(b"\xe2"), Ignore)  # not a valid PCB
    with pytest.raises(RuntimeError):
        card.respond(b"\x90\x00")


# --- nfcpy's reader-side ISO-DEP against this card, in memory ---------------------------------


class InMemoryLink:
    """Stands where nfcpy's ContactlessFrontend would be: frames go straight to the card."""

    def __init__(self, card: IsoDepCard, applet, *, slow_rounds: int = 0, lose_answers: int = 0):
        self.card = card
        self.applet = applet
        self.slow_rounds = slow_rounds  # times the card asks for WTX before answering
        self.lose_answers = lose_answers  # I-block answers that "get lost on the air"
        self.sent: list[bytes] = []
        self.rcvd: list[bytes] = []
        self._pending: bytes | None = None

    def exchange(self, data, timeout):
        data = bytes(data)
        self.sent.append(data)
        answer = self._card_answer(data)
        if answer is None:
            raise nfc.clf.TimeoutError("no answer")
        if self.lose_answers and answer[0] & 0xE2 == 0x02:
            self.lose_answers -= 1
            raise nfc.clf.TimeoutError("answer lost")
        self.rcvd.append(answer)
        return bytearray(answer)

    def _card_answer(self, data: bytes) -> bytes | None:
        action = self.card.receive(data)
        if isinstance(action, CommandApdu):
            self._pending = self.applet(action.apdu)
            return self._answer_or_wait()
        if isinstance(action, WtxGranted):
            return self._answer_or_wait()
        if isinstance(action, Send):
            return action.block
        return None

    def _answer_or_wait(self) -> bytes:
        if self.slow_rounds:
            self.slow_rounds -= 1
            return self.card.wtx_request(2)
        return self.card.respond(self._pending)


def echo_applet(apdu: bytes) -> bytes:
    return apdu * 3 + b"\x90\x00"


def test_nfcpy_initiator_chains_both_ways_with_this_card():
    card = IsoDepCard(fsd=256)
    link = InMemoryLink(card, echo_applet)
    initiator = IsoDepInitiator(link, fsc=16, fwt=0.3)  # 13 bytes per command frame
    command = bytes(range(100))
    assert initiator.exchange(bytearray(command)) == command * 3 + b"\x90\x00"
    assert sum(1 for frame in link.sent if frame[0] & 0x10 and frame[0] & 0xC0 == 0) == 7
    assert sum(1 for frame in link.rcvd if frame[0] & 0xF0 == 0x10) == 1  # 302 bytes in 2 frames
    assert initiator.exchange(bytearray(SELECT)) == SELECT * 3 + b"\x90\x00"


def test_nfcpy_initiator_recovers_a_lost_answer_with_nak():
    link = InMemoryLink(IsoDepCard(fsd=256), echo_applet, lose_answers=1)
    initiator = IsoDepInitiator(link, fsc=256, fwt=0.3)
    assert initiator.exchange(bytearray(SELECT)) == SELECT * 3 + b"\x90\x00"
    assert link.sent[1] == b"\xb2"  # the reader's R(NAK); the card sent its answer again


def test_nfcpy_initiator_waits_when_the_card_asks_for_time():
    link = InMemoryLink(IsoDepCard(fsd=256), echo_applet, slow_rounds=3)
    initiator = IsoDepInitiator(link, fsc=256, fwt=0.3)
    assert initiator.exchange(bytearray(SELECT)) == SELECT * 3 + b"\x90\x00"
    assert link.sent[1:4] == [b"\xf2\x02"] * 3  # each S(WTX) request echoed as the answer
