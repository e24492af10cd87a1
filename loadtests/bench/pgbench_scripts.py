"""The pgbench scripts that mirror one authorization and one completion (loadtests/pgbench/),
read back as SQL statements so a test can hold them against what the app executes."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "pgbench"
AUTHORIZATION_SCRIPT = SCRIPTS_DIR / "authorization.sql"
COMPLETION_SCRIPT = SCRIPTS_DIR / "completion.sql"
# The locust mix completes about 89 % of its authorizations (normal sales and duplicate
# transmissions; reversals and declines do not complete): 9 completions per 10 authorizations.
AUTHORIZATION_WEIGHT = 10
COMPLETION_WEIGHT = 9

_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "START", "END"}
_RESULT_COMMANDS = ("\\gset", "\\aset")  # pgbench meta-commands that end an SQL command
_TABLE_AFTER = {
    "INSERT": re.compile(r"\bINTO\s+(\w+)", re.IGNORECASE),
    "UPDATE": re.compile(r"^UPDATE\s+(\w+)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE),
    "SELECT": re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE),
}


def script_statements(text: str) -> list[str]:
    """The SQL commands of a pgbench script in order, without comments, meta-commands
    (``\\set``, ``\\if`` ...) and transaction control."""
    statements, current = [], []

    def finish() -> None:
        sql = " ".join(current).strip().rstrip(";").strip()
        current.clear()
        if sql and sql.split()[0].upper() not in _TRANSACTION_CONTROL:
            statements.append(sql)

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        if stripped.startswith("\\"):
            if stripped.startswith(_RESULT_COMMANDS):
                finish()
            continue
        current.append(stripped)
        if stripped.endswith(";"):
            finish()
    finish()
    return statements


def statement_shape(sql: str) -> tuple[str, str | None]:
    """(verb, table) of one statement: its first keyword and the table it writes or reads first."""
    normalized = " ".join(sql.split())
    verb = normalized.split(" ", 1)[0].upper()
    pattern = _TABLE_AFTER.get(verb)
    match = pattern.search(normalized) if pattern else None
    return verb, match.group(1).lower() if match else None


def script_shapes(path: Path) -> list[tuple[str, str | None]]:
    return [statement_shape(sql) for sql in script_statements(path.read_text())]
