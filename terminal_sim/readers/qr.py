"""The QR scanner of the station: reads the phone's QR code from a camera image with zxing-cpp.

`read_qr_file` decodes one PNG/JPEG; `watch_folder` stands for a scanner that drops each picture
it takes into a folder, and waits for the next one. A camera image is rarely a clean render, so
when the image as taken gives nothing, a few cleaned-up variants are tried (grayscale with
stretched contrast, sharpened, upscaled) before giving up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import PIL.Image
import PIL.ImageFilter
import PIL.ImageOps
import zxingcpp

from processing import tokens
from terminal_sim.readers.base import NoPhonePresented, PhoneRead, ReaderError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# Upscaling helps a code shot from afar; a large photo only gets slower, not better.
_UPSCALE_BELOW_PIXELS = 1200
_UPSCALE_FACTOR = 2
DEFAULT_POLL_SECONDS = 0.1


class NoCodeFound(ReaderError):
    """The image holds no QR code the decoder can read."""


class NotAPaymentToken(ReaderError):
    """A QR code was read, but it is not one of our payment tokens (a URL, a receipt, ...)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def decode_texts(image: PIL.Image.Image) -> list[str]:
    """The texts of every QR code in the image, from the first variant that shows any."""
    for variant in _variants(image):
        found = zxingcpp.read_barcodes(variant, formats=zxingcpp.BarcodeFormat.QRCode)
        texts = [barcode.text for barcode in found if barcode.valid and barcode.text]
        if texts:
            return texts
    return []


def payload_from_image(image: PIL.Image.Image) -> str:
    """The payment-token text of the QR code in the image; NoCodeFound or NotAPaymentToken."""
    texts = decode_texts(image)
    if not texts:
        raise NoCodeFound("no QR code found in the picture: hold the phone's screen to the scanner")
    problem: tokens.TokenFormatError | None = None
    for text in texts:
        try:
            tokens.decode_qr_payload(text)
        except tokens.TokenFormatError as error:
            problem = problem or error
            continue
        return text
    raise NotAPaymentToken(
        f"this QR code is not a fuel-card payment code ({problem}): open the card in the driver app",
        code=problem.code,
    )


def read_qr_file(path: str | os.PathLike) -> str:
    """The payment-token text of the QR code in a PNG or JPEG file."""
    path = Path(path)
    try:
        with PIL.Image.open(path) as image:
            image.load()
            return payload_from_image(image)
    except (PIL.UnidentifiedImageError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise NoCodeFound(f"no picture at {path}") from None
        raise NoCodeFound(f"{path.name} is not a readable picture: {error}") from None


def watch_folder(path: str | os.PathLike, timeout: float, *, poll_seconds: float = DEFAULT_POLL_SECONDS,
                 on_watching: Callable[[], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> str:
    """Wait for a new picture in the folder, decode it and return the payment-token text.

    Pictures already there when the watch starts are old and ignored (a replaced file counts as
    new). A picture is read once its size and time stamp stop changing, so a file still being
    written is never decoded half-way. NoPhonePresented when nothing new came within `timeout`.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    seen = dict(_pictures(folder))
    if on_watching is not None:
        on_watching()
    deadline = monotonic() + timeout
    # A candidate is read when two polls in a row see the same signature.
    pending: dict[Path, tuple[int, int, int]] = {}
    while True:
        for picture, signature in _pictures(folder):
            if seen.get(picture) == signature:
                continue
            if pending.get(picture) == signature and signature[1] > 0:
                seen[picture] = signature
                pending.pop(picture)
                return read_qr_file(picture)
            pending[picture] = signature
        if monotonic() >= deadline:
            raise NoPhonePresented(f"no QR picture arrived in {folder} within {timeout:g} seconds")
        sleep(poll_seconds)


class QrImageReader:
    """A PhoneReader for one picture already taken (a PNG/JPEG file)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self, unpredictable_number: bytes) -> PhoneRead:
        return PhoneRead(payload=read_qr_file(self.path), entry_mode="qr")


class QrFolderReader:
    """A PhoneReader for a scanner that drops its pictures into a folder."""

    def __init__(self, folder: str | os.PathLike, *, timeout: float = 60.0,
                 poll_seconds: float = DEFAULT_POLL_SECONDS, on_watching: Callable[[], None] | None = None):
        self.folder = Path(folder)
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.on_watching = on_watching

    def read(self, unpredictable_number: bytes) -> PhoneRead:
        payload = watch_folder(self.folder, self.timeout, poll_seconds=self.poll_seconds,
                               on_watching=self.on_watching)
        return PhoneRead(payload=payload, entry_mode="qr")


def _variants(image: PIL.Image.Image) -> Iterator[PIL.Image.Image]:
    yield image
    gray = PIL.ImageOps.autocontrast(image.convert("L"))
    yield gray
    yield gray.filter(PIL.ImageFilter.UnsharpMask(radius=2, percent=200, threshold=0))
    if max(gray.size) < _UPSCALE_BELOW_PIXELS:
        upscaled = gray.resize((gray.width * _UPSCALE_FACTOR, gray.height * _UPSCALE_FACTOR),
                               PIL.Image.Resampling.LANCZOS)
        yield upscaled
        yield upscaled.filter(PIL.ImageFilter.UnsharpMask(radius=2, percent=200, threshold=0))


def _pictures(folder: Path) -> Iterator[tuple[Path, tuple[int, int, int]]]:
    """Picture files of the folder with (mtime, size, inode); hidden and temporary files skipped."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        # The phone writes ".token.png.<pid>.tmp" and renames it: only the finished name counts.
        if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        if entry.is_file():
            yield Path(entry.path), (stat.st_mtime_ns, stat.st_size, stat.st_ino)
