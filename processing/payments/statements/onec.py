"""The 1CClientBankExchange text format (versions 1.01-1.03): what banks export for 1C.

A file is ``key=value`` lines: a header, optional ``СекцияРасчСчет ... КонецРасчСчет`` account
sections, ``СекцияДокумент=<kind> ... КонецДокумента`` document sections, and ``КонецФайла``.
The encoding is named by ``Кодировка=Windows`` (cp1251, the default) or ``Кодировка=DOS``
(cp866). Anything this parser does not know (a field, a section out of place, an amount or
date it cannot read) refuses the whole file with the line number: a statement is money, and
half-reading it is worse than not reading it.
"""

from __future__ import annotations

from dataclasses import replace

from processing.payments.errors import StatementRejected
from processing.payments.statements.model import (
    LIMITS,
    ParsedPayment,
    ParsedStatement,
    check_text,
    line_of_offset,
    parse_account,
    parse_amount,
    parse_date,
    parse_inn,
)

SIGNATURE = "1CClientBankExchange"
ENCODINGS = {"Windows": "cp1251", "DOS": "cp866"}

HEADER_FIELDS = frozenset({
    "ВерсияФормата", "Кодировка", "Отправитель", "Получатель", "ДатаСоздания", "ВремяСоздания",
    "ДатаНачала", "ДатаКонца", "РасчСчет", "Документ",
})
ACCOUNT_FIELDS = frozenset({
    "ДатаНачала", "ДатаКонца", "РасчСчет", "НачальныйОстаток", "ВсегоПоступило", "ВсегоСписано",
    "КонечныйОстаток",
})
DOCUMENT_FIELDS = frozenset({
    "Номер", "Дата", "Сумма", "КвитанцияДата", "КвитанцияВремя", "КвитанцияСодержание",
    "ПлательщикСчет", "ДатаСписано", "Плательщик", "ПлательщикИНН", "Плательщик1", "Плательщик2",
    "Плательщик3", "Плательщик4", "ПлательщикРасчСчет", "ПлательщикБанк1", "ПлательщикБанк2",
    "ПлательщикБИК", "ПлательщикКорсчет", "ПлательщикКПП",
    "ПолучательСчет", "ДатаПоступило", "Получатель", "ПолучательИНН", "Получатель1", "Получатель2",
    "Получатель3", "Получатель4", "ПолучательРасчСчет", "ПолучательБанк1", "ПолучательБанк2",
    "ПолучательБИК", "ПолучательКорсчет", "ПолучательКПП",
    "ВидПлатежа", "ВидОплаты", "Код", "КодНазПлатежа", "СтатусСоставителя", "ПоказательКБК", "ОКАТО",
    "ПоказательОснования", "ПоказательПериода", "ПоказательНомера", "ПоказательДаты", "ПоказательТипа",
    "Очередность", "СрокАкцепта", "ВидАккредитива", "СрокПлатежа", "УсловиеОплаты1", "УсловиеОплаты2",
    "УсловиеОплаты3", "ПлатежПоПредст", "ДополнУсловия", "НомерСчетаПоставщика", "ДатаОтсылкиДок",
    "НазначениеПлатежа", "НазначениеПлатежа1", "НазначениеПлатежа2", "НазначениеПлатежа3",
    "НазначениеПлатежа4", "НазначениеПлатежа5", "НазначениеПлатежа6",
})
DOCUMENT_KINDS = frozenset({
    "Платежное поручение", "Платёжное поручение", "Банковский ордер", "Платежное требование",
    "Платёжное требование", "Инкассовое поручение", "Мемориальный ордер", "Аккредитив",
    "Платежный ордер", "Платёжный ордер", "Прочее",
})


def decode(raw: bytes) -> tuple[str, int]:
    """The text of the file in the encoding it declares, and the line of that declaration (0 if
    none: cp1251). A file whose bytes do not agree with its declaration is refused."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise StatementRejected(1, "the file is UTF-8 (it starts with a byte-order mark); "
                                "1CClientBankExchange files are Windows-1251 or DOS (cp866)")
    found_in, value, declared_line = _find_declaration(raw)
    if found_in == "utf-8" or (found_in is None and _looks_like_utf8(raw)):
        raise StatementRejected(declared_line or 1, "the file is UTF-8 encoded; 1CClientBankExchange "
                                "files are Windows-1251 (Кодировка=Windows) or DOS (Кодировка=DOS)")
    codec = "cp1251"
    if found_in is not None:
        if value not in ENCODINGS:
            raise StatementRejected(declared_line, f"Кодировка={value[:20]!r}: expected Windows or DOS")
        codec = ENCODINGS[value]
        if codec != found_in:
            actual = "DOS (cp866)" if found_in == "cp866" else "Windows-1251"
            raise StatementRejected(declared_line, f"the file says Кодировка={value} but its bytes are {actual}")
    try:
        return raw.decode(codec), declared_line
    except UnicodeDecodeError as error:
        raise StatementRejected(line_of_offset(raw, error.start),
                                f"byte 0x{raw[error.start]:02x} is not {codec}") from None


def _find_declaration(raw: bytes) -> tuple[str | None, str, int]:
    """Where ``Кодировка=`` reads as such: in cp1251, cp866 or UTF-8 bytes (only the true
    encoding of the file spells the key right)."""
    head = b"\n".join(raw.split(b"\n", 40)[:40])
    for codec in ("cp1251", "cp866", "utf-8"):
        text = head.decode(codec, errors="replace")
        for number, line in enumerate(text.split("\n"), start=1):
            key, _, value = line.rstrip("\r").partition("=")
            if key.strip() == "Кодировка":
                return codec, value.strip(), number
    return None, "", 0


def _looks_like_utf8(raw: bytes) -> bool:
    """Cyrillic in UTF-8 is pairs of bytes 0xD0/0xD1 + continuation; cp1251 text is almost never
    valid UTF-8 once it has a few Cyrillic letters."""
    if raw.isascii():
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse(raw: bytes) -> ParsedStatement:
    text, _ = decode(raw)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].rstrip("\r").strip() != SIGNATURE:
        raise StatementRejected(1, f"a 1C statement starts with the line {SIGNATURE}")
    accounts: list[str] = []
    payments: list[ParsedPayment] = []
    section: str | None = None  # None = header, "account", "document"
    section_start = 0
    fields: dict[str, tuple[str, int]] = {}
    ended_at = 0
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if ended_at:
            if line.strip():
                raise StatementRejected(number, f"text after КонецФайла (line {ended_at})")
            continue
        if not line.strip():
            continue
        key, has_value, value = line.partition("=")
        key = key.strip()
        if key == "СекцияРасчСчет" and not has_value:
            _no_open_section(section, section_start, number, "СекцияРасчСчет")
            section, section_start, fields = "account", number, {}
        elif key == "КонецРасчСчет" and not has_value:
            if section != "account":
                raise StatementRejected(number, "КонецРасчСчет without СекцияРасчСчет")
            if "РасчСчет" in fields:
                accounts.append(parse_account(*fields["РасчСчет"], "РасчСчет", required=True))
            section = None
        elif key == "СекцияДокумент":
            _no_open_section(section, section_start, number, "СекцияДокумент")
            kind = value.strip()
            if kind not in DOCUMENT_KINDS:
                raise StatementRejected(number, f"unknown document kind {kind!r}")
            section, section_start, fields = "document", number, {}
        elif key == "КонецДокумента" and not has_value:
            if section != "document":
                raise StatementRejected(number, "КонецДокумента without СекцияДокумент")
            payments.append(_document(fields, section_start, number))
            section = None
        elif key == "КонецФайла" and not has_value:
            _no_open_section(section, section_start, number, "КонецФайла")
            ended_at = number
        elif not has_value:
            raise StatementRejected(number, f"expected key=value or a section marker, found {line[:40]!r}")
        else:
            allowed = {None: HEADER_FIELDS, "account": ACCOUNT_FIELDS, "document": DOCUMENT_FIELDS}[section]
            if key not in allowed:
                where = {None: "the header", "account": "СекцияРасчСчет",
                         "document": "a document"}[section]
                raise StatementRejected(number, f"unknown field {key[:40]!r} in {where}")
            if section is None:
                if key == "РасчСчет":
                    accounts.append(parse_account(value, number, "РасчСчет", required=True))
                check_text(value, number, key, 500)
                continue
            if key in fields:
                raise StatementRejected(number, f"field {key} appears twice in the section that begins "
                                        f"at line {section_start}")
            fields[key] = (value, number)
    if not ended_at:
        if section is not None:
            marker = "КонецДокумента" if section == "document" else "КонецРасчСчет"
            raise StatementRejected(len(lines), f"the file ends inside the section that begins at line "
                                    f"{section_start} (no {marker})")
        raise StatementRejected(len(lines), "the file ends without КонецФайла (cut short?)")
    own = tuple(dict.fromkeys(accounts))
    return ParsedStatement(format="1c", accounts=own,
                           payments=[_with_direction(payment, own) for payment in payments])


def _no_open_section(section: str | None, started: int, number: int, what: str) -> None:
    if section is not None:
        marker = "КонецДокумента" if section == "document" else "КонецРасчСчет"
        raise StatementRejected(number, f"{what} inside the section that begins at line {started} "
                                f"(missing {marker})")


def _document(fields: dict[str, tuple[str, int]], start: int, end: int) -> ParsedPayment:
    def required(key: str) -> tuple[str, int]:
        if key not in fields or not fields[key][0].strip():
            raise StatementRejected(end, f"the document that begins at line {start} has no {key}")
        return fields[key]

    def optional(key: str) -> tuple[str, int]:
        return fields.get(key, ("", start))

    for key, (value, number) in fields.items():
        check_text(value, number, key, 2000)
    number = check_text(*required("Номер"), "Номер", LIMITS["document_number"])
    document_date = parse_date(*required("Дата"), "Дата")
    amount = parse_amount(*required("Сумма"), "Сумма")
    recipient_key = "ПолучательСчет" if optional("ПолучательСчет")[0].strip() else "ПолучательРасчСчет"
    recipient = parse_account(*optional(recipient_key), recipient_key, required=False)
    payer_key = "ПлательщикСчет" if optional("ПлательщикСчет")[0].strip() else "ПлательщикРасчСчет"
    payer_account = parse_account(*optional(payer_key), payer_key, required=False)
    received = optional("ДатаПоступило")
    received_date = parse_date(*received, "ДатаПоступило") if received[0].strip() else None
    purpose = optional("НазначениеПлатежа")[0].strip() or " ".join(
        optional(f"НазначениеПлатежа{i}")[0].strip() for i in range(1, 7)).strip()
    payer_name = (optional("Плательщик1")[0].strip() or optional("Плательщик")[0].strip())
    return ParsedPayment(
        source_line=start, document_number=number, document_date=document_date, amount_minor=amount,
        payer_inn=parse_inn(*optional("ПлательщикИНН"), "ПлательщикИНН"),
        payer_name=check_text(payer_name, start, "Плательщик", LIMITS["payer_name"]),
        payer_account=payer_account, recipient_account=recipient,
        purpose=check_text(purpose, start, "НазначениеПлатежа", LIMITS["purpose"]),
        received_date=received_date, incoming=received_date is not None,
    )


def _with_direction(payment: ParsedPayment, own_accounts: tuple[str, ...]) -> ParsedPayment:
    """Incoming = credited to one of the statement's accounts (or, with no account named, a
    document with ДатаПоступило)."""
    if not own_accounts:
        return payment
    return replace(payment, incoming=payment.recipient_account in own_accounts)
