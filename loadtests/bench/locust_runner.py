"""One locust step: headless, N users for D seconds, its CSV stats read back, its CPU watched."""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtests.bench.cpu_watch import CPU_BOUND_PERCENT, CpuUsage, CpuWatch
from loadtests.bench.server import REPO_ROOT

LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
LOCUST_CPU_WARNING = "CPU usage above"  # locust's own warning (logged at most once per run)
AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class RequestStats:
    """One row of locust's ``<prefix>_stats.csv`` (times in milliseconds)."""

    name: str
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    average_ms: float | None


@dataclass(frozen=True)
class Failure:
    """One row of ``<prefix>_failures.csv``."""

    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True)
class TaskException:
    """One row of ``<prefix>_exceptions.csv``: an exception raised in a task (a bug in a scenario,
    not an answer of the server)."""

    count: int
    message: str


@dataclass
class LocustStep:
    user_class: str
    users: int
    duration_seconds: int
    exit_code: int
    requests: dict[str, RequestStats]
    failures: list[Failure]
    cpu: CpuUsage
    cpu_warning: bool  # locust's own "CPU usage above 90%" line
    exceptions: list[TaskException] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error lines locust logged

    @property
    def cpu_bound(self) -> bool:
        return self.cpu_warning or self.cpu.average_percent > CPU_BOUND_PERCENT

    @property
    def failure_count(self) -> int:
        """Failed requests plus exceptions in tasks: both mean a flow did not go as expected."""
        total = self.requests.get(AGGREGATED)
        return (total.failures if total else 0) + sum(exception.count for exception in self.exceptions)

    def stats(self, name: str) -> RequestStats | None:
        return self.requests.get(name)

    def as_dict(self) -> dict:
        return {
            "user_class": self.user_class, "users": self.users, "duration_seconds": self.duration_seconds,
            "exit_code": self.exit_code, "requests": {name: asdict(row) for name, row in self.requests.items()},
            "failures": [asdict(failure) for failure in self.failures], "locust_cpu": self.cpu.as_dict(),
            "locust_cpu_warning": self.cpu_warning, "cpu_bound": self.cpu_bound,
            "exceptions": [asdict(exception) for exception in self.exceptions], "errors": self.errors,
        }


def locust_command(*, host: str, user_class: str, users: int, duration_seconds: int, csv_prefix: Path,
                   locustfile: Path = LOCUSTFILE) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{duration_seconds}s",
        # Stats from the moment all users run; ramp-up (1 s at spawn rate N) is left out.
        "--reset-stats", "--csv", str(csv_prefix), "--only-summary",
        "--exit-code-on-error", "0",  # failures are read from the CSV, not guessed from the exit code
        user_class,
    ]


def run_locust(*, host: str, user_class: str, users: int, duration_seconds: int, csv_prefix: Path,
               environment: dict[str, str], locustfile: Path = LOCUSTFILE) -> LocustStep:
    log_path = csv_prefix.with_suffix(".log")
    command = locust_command(host=host, user_class=user_class, users=users, duration_seconds=duration_seconds,
                             csv_prefix=csv_prefix, locustfile=locustfile)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        with CpuWatch(process.pid) as watch:
            try:
                exit_code = process.wait(timeout=duration_seconds + 120)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait()
    output = log_path.read_text(errors="replace")
    return LocustStep(
        user_class=user_class, users=users, duration_seconds=duration_seconds, exit_code=exit_code,
        requests=read_stats(Path(f"{csv_prefix}_stats.csv")), failures=read_failures(Path(f"{csv_prefix}_failures.csv")),
        cpu=watch.usage(), cpu_warning=LOCUST_CPU_WARNING in output,
        exceptions=read_exceptions(Path(f"{csv_prefix}_exceptions.csv")), errors=_error_lines(output),
    )


def _milliseconds(value: str) -> float | None:
    return None if value in ("", "N/A") else float(value)


def read_stats(path: Path) -> dict[str, RequestStats]:
    """The rows of ``<prefix>_stats.csv`` by request name (the total is "Aggregated")."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {
            row["Name"]: RequestStats(
                name=row["Name"], requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                requests_per_second=float(row["Requests/s"]), p50_ms=_milliseconds(row["50%"]),
                p95_ms=_milliseconds(row["95%"]), p99_ms=_milliseconds(row["99%"]),
                average_ms=_milliseconds(row["Average Response Time"]),
            )
            for row in csv.DictReader(handle)
        }


def read_failures(path: Path) -> list[Failure]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [Failure(row["Method"], row["Name"], row["Error"], int(row["Occurrences"]))
                for row in csv.DictReader(handle)]


def read_exceptions(path: Path) -> list[TaskException]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [TaskException(int(row["Count"]), row["Message"]) for row in csv.DictReader(handle)]


def _error_lines(output: str) -> list[str]:
    """Lines where locust reports an exception in a task or its own trouble (first 20)."""
    lines = [line for line in output.splitlines()
             if "Traceback" in line or "/ERROR/" in line or "Error:" in line]
    return lines[:20]
