"""Writing statements (1CClientBankExchange and CSV): for tests, the benchmark and the demo."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

OUR_BANK = ("ПАО СБЕРБАНК", "044525225", "30101810400000000225")


@dataclass(frozen=True)
class Transfer:
    number: str
    date: date
    amount_minor: int
    payer_inn: str
    payer_name: str
    payer_account: str
    recipient_account: str
    purpose: str
    incoming: bool = True  # False: a debit of our account (the payer is us)


def _money(amount_minor: int) -> str:
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def render_onec(account: str, transfers: Sequence[Transfer], *, encoding: str = "Windows",
                start: date | None = None, end: date | None = None) -> bytes:
    """A bank statement of ``account`` in the 1CClientBankExchange format, as banks write it."""
    days = [transfer.date for transfer in transfers] or [date.today()]
    start, end = start or min(days), end or max(days)
    lines = [
        "1CClientBankExchange", "ВерсияФормата=1.03", f"Кодировка={encoding}", "Отправитель=Сбербанк Бизнес Онлайн",
        "Получатель=", f"ДатаСоздания={end:%d.%m.%Y}", "ВремяСоздания=09:15:00", f"ДатаНачала={start:%d.%m.%Y}",
        f"ДатаКонца={end:%d.%m.%Y}", f"РасчСчет={account}", "Документ=Платежное поручение",
        "СекцияРасчСчет", f"ДатаНачала={start:%d.%m.%Y}", f"ДатаКонца={end:%d.%m.%Y}", f"РасчСчет={account}",
        "НачальныйОстаток=0.00",
        f"ВсегоПоступило={_money(sum(t.amount_minor for t in transfers if t.incoming))}",
        f"ВсегоСписано={_money(sum(t.amount_minor for t in transfers if not t.incoming))}",
        "КонечныйОстаток=0.00", "КонецРасчСчет",
    ]
    for t in transfers:
        day = f"{t.date:%d.%m.%Y}"
        lines += [
            "СекцияДокумент=Платежное поручение", f"Номер={t.number}", f"Дата={day}", f"Сумма={_money(t.amount_minor)}",
            f"ПлательщикСчет={t.payer_account}", f"ДатаСписано={'' if t.incoming else day}",
            f"Плательщик=ИНН {t.payer_inn or '0'} {t.payer_name}", f"ПлательщикИНН={t.payer_inn or '0'}",
            f"Плательщик1={t.payer_name}", f"ПлательщикРасчСчет={t.payer_account}",
            "ПлательщикБанк1=АО \"АЛЬФА-БАНК\"", "ПлательщикБанк2=г. Москва", "ПлательщикБИК=044525593",
            "ПлательщикКорсчет=30101810200000000593", f"ПолучательСчет={t.recipient_account}",
            f"ДатаПоступило={day if t.incoming else ''}", "Получатель=ООО \"ТопливоСервис\"",
            "ПолучательИНН=7707083893", "Получатель1=ООО \"ТопливоСервис\"",
            f"ПолучательРасчСчет={t.recipient_account}", f"ПолучательБанк1={OUR_BANK[0]}",
            "ПолучательБанк2=г. Москва", f"ПолучательБИК={OUR_BANK[1]}", f"ПолучательКорсчет={OUR_BANK[2]}",
            "ВидПлатежа=", "ВидОплаты=01", "Код=0", "СтатусСоставителя=", "ПлательщикКПП=770701001",
            "ПолучательКПП=770701001", "ПоказательКБК=", "ОКАТО=", "ПоказательОснования=",
            "ПоказательПериода=", "ПоказательНомера=", "ПоказательДаты=", "ПоказательТипа=",
            "Очередность=5", f"НазначениеПлатежа={t.purpose}", "КонецДокумента",
        ]
    lines.append("КонецФайла")
    return ("\r\n".join(lines) + "\r\n").encode("cp1251" if encoding == "Windows" else "cp866")


CSV_COLUMNS = ("document_number", "document_date", "amount", "payer_inn", "payer_name", "payer_account",
               "recipient_account", "purpose", "received_date", "direction")


def render_csv(transfers: Sequence[Transfer], *, delimiter: str = ",") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for t in transfers:
        writer.writerow([t.number, t.date.isoformat(), _money(t.amount_minor), t.payer_inn, t.payer_name,
                         t.payer_account, t.recipient_account, t.purpose,
                         t.date.isoformat() if t.incoming else "", "credit" if t.incoming else "debit"])
    return out.getvalue().encode("utf-8")
