"""pgbench with the authorization and completion scripts: the database's own limit for our
transaction, on the same machine and with as many clients as locust has users."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from loadtests.bench.pgbench_scripts import (
    AUTHORIZATION_SCRIPT,
    AUTHORIZATION_WEIGHT,
    COMPLETION_SCRIPT,
    COMPLETION_WEIGHT,
)

PGBENCH = shutil.which("pgbench")  # Debian: in the postgresql-NN package (scripts/bootstrap installs it)
PGBENCH_THREADS = 2  # one per core of the benchmark machine; never more than clients


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    duration_seconds: int
    exit_code: int
    transactions: int
    failed_transactions: int
    tps: float
    authorization_tps: float  # the authorization script's own transactions per second
    completion_tps: float  # completions that ran (a client with no open hold skips one)
    latency_average_ms: float | None
    errors: list[str]  # pgbench's error lines (an aborted client, a failed statement)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed_transactions == 0 and not self.errors

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def libpq_environment(database_url: str) -> dict[str, str]:
    """PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE of a SQLAlchemy URL, for pgbench."""
    url = make_url(database_url)
    values = {"PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432),
              "PGUSER": url.username or "postgres", "PGDATABASE": url.database or "postgres"}
    if url.password:
        values["PGPASSWORD"] = str(url.password)
    return values


def pgbench_command(*, clients: int, duration_seconds: int | None = None, transactions: int | None = None,
                    variables: dict[str, int]) -> list[str]:
    """The command line; ``variables`` are the -D values the scripts read (see their headers)."""
    if PGBENCH is None:
        raise RuntimeError("pgbench is not on PATH: install PostgreSQL's server package (Debian: postgresql)")
    command = [PGBENCH, "--no-vacuum", "--protocol=prepared", f"--client={clients}",
               f"--jobs={min(PGBENCH_THREADS, clients)}"]
    command.append(f"--time={duration_seconds}" if duration_seconds is not None else f"--transactions={transactions}")
    for name, value in {"seq": 0, "cseq": 0, **variables}.items():
        command += ["--define", f"{name}={value}"]
    command += ["--file", f"{AUTHORIZATION_SCRIPT}@{AUTHORIZATION_WEIGHT}",
                "--file", f"{COMPLETION_SCRIPT}@{COMPLETION_WEIGHT}"]
    return command


def run_pgbench(database_url: str, *, clients: int, duration_seconds: int, run_number: int,
                variables: dict[str, int], log_path: Path) -> PgbenchResult:
    """Run the two scripts for ``duration_seconds``; ``run_number`` keeps the transaction ids of
    this invocation apart from earlier ones on the same database."""
    command = pgbench_command(clients=clients, duration_seconds=duration_seconds,
                              variables={"run": run_number, **variables})
    completed = subprocess.run(command, env={**os.environ, **libpq_environment(database_url)},
                               capture_output=True, text=True, timeout=duration_seconds + 120)
    log_path.write_text(" ".join(command) + "\n\n" + completed.stdout + "\n" + completed.stderr)
    return parse_pgbench_output(completed.stdout, completed.stderr, exit_code=completed.returncode,
                                clients=clients, duration_seconds=duration_seconds)


def _number(pattern: str, text: str, default: float | None = 0.0) -> float | None:
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else default


def _script_tps(stdout: str, script: Path) -> float:
    # " - 1234 transactions (52.6% of total, tps = 411.5)" under "SQL script n: <path>"
    match = re.search(rf"SQL script \d+: {re.escape(str(script))}\n(?:.*\n)*? - \d+ transactions \(.*tps = ([\d.]+)\)",
                      stdout)
    return float(match.group(1)) if match else 0.0


def parse_pgbench_output(stdout: str, stderr: str, *, exit_code: int, clients: int,
                         duration_seconds: int) -> PgbenchResult:
    errors = [line for line in stderr.splitlines() if "error" in line.lower() or "abort" in line.lower()]
    if "Run was aborted" in stdout:
        errors.append("pgbench: Run was aborted; the above results are incomplete.")
    return PgbenchResult(
        clients=clients, duration_seconds=duration_seconds, exit_code=exit_code,
        transactions=int(_number(r"number of transactions actually processed: (\d+)", stdout)),
        failed_transactions=int(_number(r"number of failed transactions: (\d+)", stdout)),
        tps=_number(r"^tps = ([\d.]+)", stdout),
        authorization_tps=_script_tps(stdout, AUTHORIZATION_SCRIPT),
        completion_tps=_script_tps(stdout, COMPLETION_SCRIPT),
        latency_average_ms=_number(r"latency average = ([\d.]+) ms", stdout, default=None),
        errors=errors,
    )
