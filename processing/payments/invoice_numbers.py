"""Invoice numbers ("FC-2026-000123") and finding them in a payment's purpose, typos and all.

The last digit of the number is a Damm check digit over the year and the sequence, so a
mistyped digit or two swapped neighbours never point at another company's invoice: they
are recognised as no number at all (the transfer then goes on to the other rules or the queue).
"""

from __future__ import annotations

import re

PREFIX = "FC"

# Damm's quasigroup of order 10: detects every single-digit error and every adjacent transposition.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3), (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6), (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7), (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_digit(digits: str) -> int:
    interim = 0
    for digit in digits:
        interim = _DAMM[interim][int(digit)]
    return interim


def invoice_number(year: int, sequence: int) -> str:
    """FC-<year>-<sequence, at least 5 digits><check digit>."""
    body = f"{sequence:05d}"
    return f"{PREFIX}-{year:04d}-{body}{damm_digit(f'{year:04d}{body}')}"


# What OCR and hurried typing make of digits (Latin and Cyrillic look-alikes).
_DIGIT_LOOKALIKES = {
    **dict.fromkeys("OoОоQD", "0"), **dict.fromkeys("IlІі|!", "1"), **dict.fromkeys("Zz", "2"),
    **dict.fromkeys("Зз", "3"), **dict.fromkeys("Ч", "4"), **dict.fromkeys("SsЅ", "5"),
    **dict.fromkeys("бGБ", "6"), **dict.fromkeys("T", "7"), **dict.fromkeys("BВ", "8"),
    **dict.fromkeys("gq", "9"),
}
_DIGITISH = "0-9" + re.escape("".join(_DIGIT_LOOKALIKES))
_SEPARATORS = r"[\s._\-–—/\\№#:]*"
_LETTERS = "A-Za-zА-Яа-яЁё"
# "FC", "ФС" (Cyrillic), "fc", "F C", "Fс" ... then the year and the sequence with its check digit.
_WITH_PREFIX = re.compile(
    rf"(?<![{_LETTERS}0-9])[FfФф]\s?[CcСс]{_SEPARATORS}([{_DIGITISH}]{{4}}){_SEPARATORS}([{_DIGITISH}]{{6,9}})"
)
# "счет 2026-000123", "сч. № 2026 000123", "invoice 2026-000123": the word stands for the prefix.
_WITH_WORD = re.compile(
    rf"(?:сч[её]т[аеуо]?|сч\.|invoice|inv\.?){_SEPARATORS}(?:[NnНн][oо]?\.?{_SEPARATORS})?"
    rf"(\d{{4}}){_SEPARATORS}(\d{{6,9}})(?!\d)",
    re.IGNORECASE,
)


def _digits(text: str) -> str:
    return "".join(_DIGIT_LOOKALIKES.get(char, char) for char in text)


def _readings(year_text: str, body_text: str) -> list[str]:
    """Canonical numbers this match may stand for: the whole body, or the body without trailing
    look-alike letters (a word glued to the number: "FC-2026-000123без НДС")."""
    year = _digits(year_text)
    readings = []
    body = body_text
    while len(body) >= 6:
        digits = _digits(body)
        if damm_digit(year + digits) == 0:
            readings.append(f"{PREFIX}-{year}-{digits}")
        if body[-1] not in _DIGIT_LOOKALIKES:
            break
        body = body[:-1]
    return readings[:1]


def find_invoice_numbers(purpose: str) -> list[str]:
    """Invoice numbers with a valid check digit mentioned in the purpose, canonical, in order."""
    found: list[str] = []
    for pattern in (_WITH_PREFIX, _WITH_WORD):
        for match in pattern.finditer(purpose):
            for number in _readings(match.group(1), match.group(2)):
                if number not in found:
                    found.append(number)
    return found
