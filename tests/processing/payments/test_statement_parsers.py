"""The statement parsers read what banks write and refuse anything else cleanly, naming the line."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processing.payments.statements import StatementRejected, parse_statement
from processing.payments.statements.render import Transfer, render_csv, render_onec

OURS = "40702810938000012345"
TRANSFERS = [
    Transfer("17", date(2026, 3, 2), 55_013, "7707083893", 'ООО "Ромашка"', "40702810100000000002", OURS,
             "Оплата по счету FC-2026-000128 за топливо; без НДС"),
    Transfer("18", date(2026, 3, 3), 100, "", "Иванов И.И.", "40817810100000000003", OURS, "Перевод; \"кавычки\" = ok"),
    Transfer("19", date(2026, 3, 3), 990, "7707083893", "Мы", OURS, "30232810000000000001", "Комиссия",
             incoming=False),
]


@pytest.mark.parametrize("raw, format", [
    (render_onec(OURS, TRANSFERS), "1c"),
    (render_onec(OURS, TRANSFERS, encoding="DOS"), "1c"),
    (render_csv(TRANSFERS), "csv"),
    (render_csv(TRANSFERS, delimiter=";"), "csv"),
    (b"\xef\xbb\xbf" + render_csv(TRANSFERS), "csv"),
])
def test_both_formats_and_encodings_read_the_same_transfers(raw, format):
    statement = parse_statement(raw, format)
    assert statement.accounts == (OURS,)
    read = [(p.document_number, p.document_date, p.amount_minor, p.payer_inn, p.purpose, p.incoming)
            for p in statement.payments]
    assert read == [(t.number, t.date, t.amount_minor, t.payer_inn, t.purpose, t.incoming) for t in TRANSFERS]
    assert statement.payments[0].line_hash == parse_statement(render_csv(TRANSFERS), "csv").payments[0].line_hash


def test_the_1c_parser_takes_what_banks_vary():
    text = render_onec(OURS, TRANSFERS[:1]).decode("cp1251")
    text = text.replace("Сумма=550.13", "Сумма=550,13").replace("\r\n", "\n")  # comma, Unix newlines
    text = text.replace("НазначениеПлатежа=Оплата по счету FC-2026-000128 за топливо; без НДС",
                        "НазначениеПлатежа=\nНазначениеПлатежа1=Оплата по счету\nНазначениеПлатежа2=FC-2026-000128")
    payment = parse_statement(text.encode("cp1251"), "1c").payments[0]
    assert payment.amount_minor == 55_013 and payment.purpose == "Оплата по счету FC-2026-000128"


def onec(**replace) -> bytes:
    text = render_onec(OURS, TRANSFERS).decode("cp1251")
    for old, new in replace.items():
        assert old.replace("_", "=") in text or old in text
        text = text.replace(old.replace("_", "="), new, 1) if old.replace("_", "=") in text else text.replace(old, new, 1)
    return text.encode("cp1251")


def refusal(raw: bytes, format: str = "1c") -> tuple[int, str]:
    with pytest.raises(StatementRejected) as caught:
        parse_statement(raw, format)
    assert str(caught.value).startswith(f"line {caught.value.line}: ")
    return caught.value.line, str(caught.value)


def line_of(raw: bytes, needle: str, encoding: str = "cp1251") -> int:
    rows = raw.decode(encoding).split("\n")
    return next(number for number, row in enumerate(rows, 1) if needle in row)


def test_malformed_1c_files_are_refused_with_the_line():
    good = render_onec(OURS, TRANSFERS)
    text = good.decode("cp1251")
    # Wrong encoding: UTF-8 bytes, or DOS bytes under a Windows declaration.
    assert refusal(text.encode("utf-8"))[0] == 3
    assert "DOS" in refusal(text.encode("cp866"))[1]
    assert "Кодировка" in refusal(text.replace("Кодировка=Windows", "Кодировка=KOI8").encode("cp1251"))[1]
    # Broken sections.
    broken = text.replace("КонецДокумента\r\n", "", 1).encode("cp1251")
    line, message = refusal(broken)
    second_document = [n for n, row in enumerate(broken.decode("cp1251").split("\n"), 1)
                       if row.startswith("СекцияДок")][1]
    assert "missing КонецДокумента" in message and line == second_document
    assert "without КонецФайла" in refusal(text.replace("КонецФайла\r\n", "").encode("cp1251"))[1]
    assert "ends inside" in refusal(text.split("КонецДокумента")[0].encode("cp1251"))[1]
    assert "КонецДокумента without" in refusal(text.replace("КонецРасчСчет", "КонецРасчСчет\r\nКонецДокумента", 1)
                                              .encode("cp1251"))[1]
    assert "СекцияРасчСчет inside" in refusal(text.replace("Номер=17", "Номер=17\r\nСекцияРасчСчет", 1)
                                             .encode("cp1251"))[1]
    assert "after КонецФайла" in refusal(good + "Номер=1\r\n".encode("cp1251"))[1]
    assert refusal(b"not a statement\r\n")[0] == 1
    # Unknown fields, kinds and values.
    unknown = text.replace("ВидОплаты=01", "СуммаПрописью=пятьсот", 1).encode("cp1251")
    assert refusal(unknown) == (line_of(unknown, "СуммаПрописью"), refusal(unknown)[1])
    assert "unknown field" in refusal(unknown)[1]
    assert "unknown document kind" in refusal(text.replace("=Платежное поручение\r\nНомер=17",
                                                           "=Расписка\r\nНомер=17").encode("cp1251"))[1]
    for bad in ("Сумма=-5.00", "Сумма=5.001", "Сумма=abc", "Сумма=0.00", "Сумма=99999999999999.00"):
        raw = text.replace("Сумма=550.13", bad, 1).encode("cp1251")
        line, message = refusal(raw)
        assert line == line_of(raw, bad) and "Сумма" in message
    raw = text.replace("Дата=02.03.2026", "Дата=31.02.2026", 1).encode("cp1251")
    assert refusal(raw)[0] == line_of(raw, "Дата=31.02.2026")
    raw = text.replace("ПлательщикИНН=7707083893", "ПлательщикИНН=77O7083893", 1).encode("cp1251")
    assert "INN" in refusal(raw)[1]
    raw = text.replace("Номер=17", "Номер=17\r\nНомер=18", 1).encode("cp1251")
    assert "appears twice" in refusal(raw)[1]
    raw = text.replace("Номер=17", "Номер=", 1).encode("cp1251")
    assert "has no Номер" in refusal(raw)[1]
    raw = text.replace("Перевод", "Пере\x01вод", 1).encode("cp1251")
    assert "control character" in refusal(raw)[1]
    raw = text.replace("Перевод", "Пере#вод", 1).encode("cp1251").replace(b"#", b"\x98")
    assert refusal(raw) == (line_of(raw.replace(b"\x98", b"#"), "Пере#вод"), refusal(raw)[1])
    assert "0x98" in refusal(raw)[1]


def test_malformed_csv_files_are_refused_with_the_line():
    good = render_csv(TRANSFERS).decode()
    assert refusal(good.encode("cp1251"), "csv")[0] == 2  # the first Cyrillic is on line 2
    assert "unknown column" in refusal(good.replace("purpose", "purpouse", 1).encode(), "csv")[1]
    assert "missing column" in refusal(good.replace(",purpose", "", 1).encode(), "csv")[1]
    lines = good.split("\r\n")
    lines[2] = lines[2].replace("1.00", "1.0.0")
    assert refusal("\r\n".join(lines).encode(), "csv")[0] == 3
    lines = good.split("\r\n")
    lines[3] = lines[3] + ",extra"
    assert refusal("\r\n".join(lines).encode(), "csv")[0] == 4
    assert refusal(b"", "csv")[0] == 1
    assert "direction" in refusal(good.replace("debit", "sideways").encode(), "csv")[1]
    assert refusal(b'document_number,document_date,amount\r\n"1,2026-01-01,5\r\n', "csv")[0] in (1, 2)


ENTRIES = st.sampled_from(render_onec(OURS, TRANSFERS).decode("cp1251").split("\r\n"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_the_1c_parser_only_refuses_cleanly(data):
    """Random bytes, and valid files with lines dropped, repeated, shuffled or bytes flipped:
    either a statement or a StatementRejected naming a line inside the file; nothing else."""
    lines = render_onec(OURS, TRANSFERS).decode("cp1251").split("\r\n")
    kind = data.draw(st.sampled_from(["bytes", "drop", "insert", "flip", "swap"]))
    if kind == "bytes":
        raw = data.draw(st.binary(max_size=2000))
    else:
        if kind == "drop":
            del lines[data.draw(st.integers(0, len(lines) - 1))]
        elif kind == "insert":
            lines.insert(data.draw(st.integers(0, len(lines))),
                         data.draw(st.one_of(ENTRIES, st.text(max_size=60))))
        elif kind == "swap":
            i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        raw = bytearray("\r\n".join(lines).encode("cp1251", errors="replace"))
        if kind == "flip":
            for _ in range(data.draw(st.integers(1, 5))):
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw)
    try:
        statement = parse_statement(raw, "1c")
    except StatementRejected as refusal:
        assert 1 <= refusal.line <= raw.count(b"\n") + 1
        return
    for payment in statement.payments:
        assert payment.amount_minor > 0 and len(payment.line_hash) == 64


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=1500),
                     st.text(max_size=1500).map(lambda t: render_csv(TRANSFERS).decode()[:200] + t),
                     st.lists(st.text(max_size=30), max_size=12).map(
                         lambda cells: (render_csv(TRANSFERS).decode() + ",".join(cells)).encode("utf-8", "replace"))))
def test_fuzz_the_csv_parser_only_refuses_cleanly(raw):
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    try:
        statement = parse_statement(raw, "csv")
    except StatementRejected as refusal:
        assert 1 <= refusal.line <= raw.count(b"\n") + 2
        return
    assert all(payment.amount_minor > 0 for payment in statement.payments)
