"""The QR scanner reads the phone's own PNG, also as a camera would see it, with the real decoder."""

from __future__ import annotations

import threading
from pathlib import Path

import PIL.Image
import PIL.ImageFilter
import pytest
import qrcode

from processing import tokens
from terminal_sim.phone.qr import write_png
from terminal_sim.readers.base import NoPhonePresented
from terminal_sim.readers.qr import (
    NoCodeFound,
    NotAPaymentToken,
    QrFolderReader,
    QrImageReader,
    read_qr_file,
    watch_folder,
)

DEVICE_KEY = bytes(range(32))
DPAN = tokens.generate_card_number("7999001", 16)


def token_payload(atc: int = 7) -> str:
    token = tokens.make_token(DEVICE_KEY, dpan=DPAN, atc=atc, generated_at=1_750_000_000)
    return tokens.encode_qr_payload(token)


@pytest.fixture
def payload() -> str:
    return token_payload()


@pytest.fixture
def phone_png(tmp_path, payload) -> Path:
    return write_png(payload, tmp_path / "phone" / "token.png")


def scaled(image, factor):
    return image.resize((round(image.width * factor), round(image.height * factor)),
                        PIL.Image.Resampling.BILINEAR)


def rotated(image, degrees):
    return image.convert("RGB").rotate(degrees, resample=PIL.Image.Resampling.BICUBIC, expand=True,
                                       fillcolor="white")


def blurred(image):
    return image.convert("RGB").filter(PIL.ImageFilter.GaussianBlur(radius=1))


def photo_like(image):
    """The code small and off-centre on a larger grey, slightly turned and soft: a camera shot."""
    code = rotated(scaled(image, 0.6), 4).filter(PIL.ImageFilter.GaussianBlur(radius=0.8))
    background = PIL.Image.new("RGB", (code.width * 3, code.height * 2), (128, 128, 128))
    background.paste(code, (code.width // 2, code.height // 3))
    return background


CAMERA_VIEWS = {
    "as written": lambda image: image,
    "scaled to 50%": lambda image: scaled(image, 0.5),
    "rotated 3 degrees": lambda image: rotated(image, 3),
    "rotated -5 degrees": lambda image: rotated(image, -5),
    "blurred (radius 1)": blurred,
    "scaled, rotated and blurred": lambda image: blurred(rotated(scaled(image, 0.5), 4)),
    "photo on a grey background": photo_like,
}


@pytest.mark.parametrize("view", list(CAMERA_VIEWS), ids=list(CAMERA_VIEWS))
@pytest.mark.parametrize("file_format", ["PNG", "JPEG"])
def test_the_phone_png_decodes_to_the_exact_payload(tmp_path, phone_png, payload, view, file_format):
    with PIL.Image.open(phone_png) as image:
        seen = CAMERA_VIEWS[view](image.convert("RGB"))
    picture = tmp_path / f"camera.{file_format.lower()}"
    seen.save(picture, format=file_format, **({"quality": 60} if file_format == "JPEG" else {}))
    assert read_qr_file(picture) == payload


def test_a_code_made_by_qrcode_directly_decodes_too(tmp_path, payload):
    picture = tmp_path / "plain.png"
    qrcode.make(payload).save(picture)
    assert read_qr_file(picture) == payload


def test_a_picture_without_a_code(tmp_path):
    picture = tmp_path / "grey.jpg"
    PIL.Image.new("RGB", (640, 480), (120, 130, 140)).save(picture)
    with pytest.raises(NoCodeFound, match="no QR code found"):
        read_qr_file(picture)


def test_a_file_that_is_not_a_picture(tmp_path):
    picture = tmp_path / "broken.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n half a file")
    with pytest.raises(NoCodeFound, match="not a readable picture"):
        read_qr_file(picture)


@pytest.mark.parametrize("text, code", [
    ("https://example.com/loyalty?card=42", "bad_base64"),
    ("aGVsbG8gd29ybGQ=", "bad_tlv"),  # base64 of "hello world"
])
def test_a_code_with_other_text_is_not_a_payment_token(tmp_path, text, code):
    picture = tmp_path / "other.png"
    qrcode.make(text).save(picture)
    with pytest.raises(NotAPaymentToken) as refused:
        read_qr_file(picture)
    assert refused.value.code == code
    assert "not a fuel-card payment code" in str(refused.value)


def test_the_image_reader_gives_a_qr_read(phone_png, payload):
    read = QrImageReader(phone_png).read(b"\x01\x02\x03\x04")
    assert (read.payload, read.entry_mode, read.unpredictable_number) == (payload, "qr", None)


def _watch_in_thread(folder, **options):
    """Run watch_folder in a thread; returns (started event, thread, result holder)."""
    started = threading.Event()
    outcome: dict = {}

    def watch():
        try:
            outcome["payload"] = watch_folder(folder, on_watching=started.set, **options)
        except Exception as error:  # handed to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=watch)
    thread.start()
    assert started.wait(10)
    return thread, outcome


def test_the_folder_watcher_reads_the_next_picture_not_the_old_ones(tmp_path):
    folder = tmp_path / "scanner"
    old = token_payload(atc=1)
    write_png(old, folder / "old.png")
    thread, outcome = _watch_in_thread(folder, timeout=10, poll_seconds=0.02)
    new = token_payload(atc=2)
    write_png(new, folder / "shot-0001.png")
    thread.join(15)
    assert outcome == {"payload": new}


def test_the_folder_watcher_sees_a_replaced_file(tmp_path):
    folder = tmp_path / "scanner"
    write_png(token_payload(atc=1), folder / "token.png")
    thread, outcome = _watch_in_thread(folder, timeout=10, poll_seconds=0.02)
    replacement = token_payload(atc=2)
    write_png(replacement, folder / "token.png")  # the phone replaces its PNG whole
    thread.join(15)
    assert outcome == {"payload": replacement}


def test_the_folder_watcher_waits_for_a_file_to_be_complete(tmp_path, payload):
    """A picture still being written is read only once its size stops changing, never half-way."""
    folder = tmp_path / "scanner"
    source = write_png(payload, tmp_path / "source.png").read_bytes()
    target = folder / "shot.png"
    folder.mkdir()
    handle = open(target, "wb")  # an empty file is already there when the watch starts
    halves = [source[len(source) // 2:], b""]
    polls = []

    def camera_keeps_writing(_seconds):
        # Called between polls: the first pause sees only the first half on disk.
        polls.append(target.stat().st_size)
        if halves:
            handle.write(halves.pop(0))
            handle.flush()

    def first_half():
        handle.write(source[: len(source) // 2])
        handle.flush()

    try:
        assert watch_folder(folder, 10, on_watching=first_half, sleep=camera_keeps_writing) == payload
    finally:
        handle.close()
    assert polls[0] == len(source) // 2  # the watcher did see the half file, and waited


def test_the_folder_watcher_gives_up_after_its_timeout(tmp_path):
    with pytest.raises(NoPhonePresented, match="no QR picture arrived"):
        watch_folder(tmp_path / "scanner", timeout=0.2, poll_seconds=0.05)


def test_the_folder_reader_is_a_phone_reader(tmp_path, payload):
    folder = tmp_path / "scanner"
    started = threading.Event()
    reader = QrFolderReader(folder, timeout=10, poll_seconds=0.02, on_watching=started.set)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("read", reader.read(b"\0\0\0\0")))
    thread.start()
    assert started.wait(10)
    write_png(payload, folder / "token.png")
    thread.join(15)
    assert result["read"].payload == payload and result["read"].entry_mode == "qr"
