"""The token as a QR code: text for the terminal, a PNG file for a screen or a scanner."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# M recovers ~15% damage: enough for a scratched screen, small enough for a ~100 character payload.
_ERROR_CORRECTION = ERROR_CORRECT_M


def _code(payload: str, *, border: int) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, box_size=8, border=border)
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_text(payload: str) -> str:
    """The QR code drawn with half-block characters (two module rows per line), light on dark."""
    out = io.StringIO()
    _code(payload, border=2).print_ascii(out=out, invert=True)
    return out.getvalue()


def write_png(payload: str, path: str | os.PathLike) -> Path:
    """Write the QR code as a PNG (replacing the old one whole, so a viewer never sees half)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _code(payload, border=4).make_image()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            image.save(handle, format="PNG")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path
