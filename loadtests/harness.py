"""The benchmark harness: one command that measures the authorization path against the limits of
the database and of the web stack, on the same machine and in the same run.

    python -m loadtests.harness                      # PostgreSQL, issue-size data, 2,4,8,16,32 users, 60 s
    python -m loadtests.harness --database sqlite --users 4,8 --duration 20 --scenarios spread

Per scenario (spread: 1,000 companies; hot: every card on one company account): a fresh database,
seeded (loadtests/seed.py); for spread on PostgreSQL a clone of it for pgbench; `fuelcard serve`
of this checkout with the chosen workers; a warm-up; then per user count locust's PumpTerminal,
on spread also HealthProbe (the web stack's limit) and pgbench with the same SQL as one
authorization and one completion (the database's limit). Then the ledger check. It prints each
step as it is measured, then a summary, and writes result.json and chart.png to --out.

Exit status: 0 when every flow went as expected and the ledger is consistent, 2 when that holds
but locust was CPU-bound at some step (the numbers are not valid), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from loadtests.bench import databases
from loadtests.bench.chart import draw_chart
from loadtests.bench.locust_runner import LOCUSTFILE, LocustStep, run_locust
from loadtests.bench.pgbench_runner import run_pgbench
from loadtests.bench.report import ScenarioRun, Step, build_result, step_document, step_lines, summary_lines
from loadtests.bench.server import REPO_ROOT, Server, checkout_environment, fuelcard_command

RESULTS_DIR = REPO_ROOT / "loadtests" / "results"
SCENARIOS = ("spread", "hot")


def _user_counts(value: str) -> list[int]:
    counts = [int(part) for part in value.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive user counts, e.g. 8,16,32,64")
    return counts


def _scenarios(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = set(names) - set(SCENARIOS)
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"scenarios among {', '.join(SCENARIOS)}")
    return names


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.harness", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--users", type=_user_counts, default=[2, 4, 8, 16, 32],
                        help="locust users (= pgbench clients) per step, comma-separated")
    parser.add_argument("--duration", type=int, default=60, help="seconds per locust, health and pgbench step")
    parser.add_argument("--scenarios", type=_scenarios, default=list(SCENARIOS), help="spread, hot or both")
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=50_000)
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--terminals", type=int, default=2000)
    parser.add_argument("--pool-size", type=int, help="database connections per server worker "
                        "(FUELCARD_DATABASE_POOL_SIZE; default: the server's own)")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of traffic before the first step")
    parser.add_argument("--out", type=Path, help="results directory (default: loadtests/results/<UTC time>)")
    parser.add_argument("--postgres-url", default=databases.DEFAULT_POSTGRES_URL,
                        help="a role that may create databases (env FUELCARD_TEST_POSTGRES_URL)")
    parser.add_argument("--database-name", default="fuelcard_bench",
                        help="PostgreSQL database of the spread scenario; hot adds _hot, pgbench's clone _pgbench")
    parser.add_argument("--drop-databases", action="store_true", help="drop the PostgreSQL databases at the end")
    parser.add_argument("--no-references", dest="references", action="store_false",
                        help="pump steps only, without /health and pgbench (to compare two versions of the server)")
    parser.add_argument("--locustfile", type=Path, default=LOCUSTFILE, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.out is None:
        options.out = RESULTS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return options


def say(line: str = "") -> None:
    print(line, flush=True)


class Benchmark:
    """One run of the harness: its options, its master key, and what it measured."""

    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.out: Path = options.out.resolve()
        self.master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.synchronous_commit: dict[str, str] = {}
        self.runs: list[ScenarioRun] = []
        self.created_databases: list[str] = []
        self.spread_steps: dict[int, dict] = {}

    @property
    def postgresql(self) -> bool:
        return self.options.database == "postgresql"

    # --- databases -------------------------------------------------------------------------

    def _fresh_database(self, scenario: str) -> tuple[str, str | None]:
        """(URL, PostgreSQL database name or None)."""
        if not self.postgresql:
            path = self.out / f"{scenario}.db"
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            return f"sqlite+aiosqlite:///{path}", None
        name = self.options.database_name + ("_hot" if scenario == "hot" else "")
        asyncio.run(databases.recreate_database(self.options.postgres_url, name))
        self.created_databases.append(name)
        return databases.named_database_url(self.options.postgres_url, name), name

    def _require_synchronous_commit(self, label: str, url: str) -> None:
        value = asyncio.run(databases.synchronous_commit(url))
        self.synchronous_commit[label] = value
        say(f"SHOW synchronous_commit ({label}): {value}")
        if value == "off":
            raise SystemExit(f"synchronous_commit is off for {label}: the targets need durable commits "
                             "on both sides; turn it on (postgresql.conf, ALTER DATABASE/ROLE ... RESET)")

    def _seed(self, scenario: str, url: str) -> dict:
        from loadtests.seed import SeedSizes, seed  # imported here: --help works without the seed's imports

        options = self.options
        sizes = SeedSizes(companies=options.companies, cards=options.cards, stations=options.stations,
                          terminals=options.terminals)
        say(f"[{scenario}] seeding {sizes} ...")
        started = time.monotonic()
        summary = asyncio.run(seed(url, master_key=base64.b64decode(self.master_key), sizes=sizes,
                                   hot=scenario == "hot", fixture_path=self._fixture(scenario)))
        seconds = time.monotonic() - started
        say(f"[{scenario}] seeded in {seconds:.1f} s: {summary}")
        return {"seconds": round(seconds, 1), "summary": _plain(summary)}

    def _fixture(self, scenario: str) -> Path:
        return self.out / f"{scenario}-fixture.json"

    # --- processes -------------------------------------------------------------------------

    def _server_environment(self, scenario: str, url: str) -> dict[str, str]:
        # The seed migrated the database: the server need not load alembic on start.
        settings = {"FUELCARD_DATABASE_URL": url, "FUELCARD_MASTER_KEY": self.master_key,
                    "FUELCARD_LOG_LEVEL": "WARNING", "FUELCARD_AUTO_MIGRATE": "false",
                    "FUELCARD_DATA_DIR": str(self.out / f"{scenario}-data")}
        if self.options.pool_size:
            settings["FUELCARD_DATABASE_POOL_SIZE"] = str(self.options.pool_size)
        return checkout_environment(**settings)

    def _locust(self, server: Server, scenario: str, user_class: str, users: int, seconds: int,
                label: str) -> LocustStep:
        environment = checkout_environment(FUELCARD_LOAD_FIXTURE=str(self._fixture(scenario)),
                                           FUELCARD_LOAD_USERS=str(users))
        return run_locust(host=server.base_url, user_class=user_class, users=users, duration_seconds=seconds,
                          csv_prefix=self.out / f"{scenario}-{label}", environment=environment,
                          locustfile=self.options.locustfile)

    def _ledger_check(self, run: ScenarioRun, environment: dict[str, str]) -> None:
        completed = subprocess.run(fuelcard_command("ledger", "check"), cwd=REPO_ROOT, env=environment,
                                   capture_output=True, text=True, timeout=600)
        run.ledger_consistent = completed.returncode == 0
        run.ledger_output = (completed.stdout + completed.stderr).strip()[-2000:] or f"exit status {completed.returncode}"
        say(f"[{run.name}] ledger check: {'consistent' if run.ledger_consistent else 'FAILED'}: {run.ledger_output}")

    # --- the run ---------------------------------------------------------------------------

    def run_scenario(self, scenario: str) -> None:
        options = self.options
        url, name = self._fresh_database(scenario)
        seed_report = self._seed(scenario, url)
        run = ScenarioRun(name=scenario, database=databases.describe(url), seed=seed_report)
        self.runs.append(run)
        clone_url, ranges = None, None
        if name is not None:
            asyncio.run(databases.analyze(url))
            self._require_synchronous_commit(f"{scenario} server database", url)
            if scenario == "spread" and options.references:
                clone = f"{name}_pgbench"
                asyncio.run(databases.clone_database(options.postgres_url, source=name, name=clone))
                self.created_databases.append(clone)
                clone_url = databases.named_database_url(options.postgres_url, clone)
                self._require_synchronous_commit("pgbench database", clone_url)
                ranges = asyncio.run(databases.id_ranges(clone_url))
        environment = self._server_environment(scenario, url)
        server = Server(environment=environment, workers=options.workers, log_path=self.out / f"{scenario}-server.log")
        try:
            with server:
                say(f"[{scenario}] server {server.base_url} ({options.workers} workers), warm-up {options.warmup} s")
                if options.warmup > 0:
                    run.warmup = self._locust(server, scenario, "PumpTerminal", options.users[0], options.warmup,
                                              "warmup")
                    say(f"[{scenario}] warm-up: {run.warmup.failure_count} failures")
                    for failure in run.warmup.failures:
                        say(f"    warm-up failure: {failure.occurrences}x {failure.name}: {failure.error}")
                for number, users in enumerate(options.users, start=1):
                    cpu_before = server.cpu_seconds()
                    pump = self._locust(server, scenario, "PumpTerminal", users, options.duration, f"pump-{users}")
                    step = Step(users=users, pump=pump, server_cpu_seconds=server.cpu_seconds() - cpu_before)
                    if scenario == "spread" and options.references:
                        step.health = self._locust(server, scenario, "HealthProbe", users, options.duration,
                                                   f"health-{users}")
                        if clone_url is not None:
                            step.pgbench = run_pgbench(
                                clone_url, clients=users, duration_seconds=options.duration, run_number=number,
                                variables=ranges.pgbench_variables(), log_path=self.out / f"pgbench-{users}.log")
                    run.steps.append(step)
                    self._print_step(scenario, step)
        finally:
            run.server_errors = server.error_lines()
            for line in run.server_errors[:10]:
                say(f"[{scenario}] server log: {line}")
            if clone_url is not None:  # pgbench's rows are of no further use
                asyncio.run(databases.drop_database(options.postgres_url, clone))
                self.created_databases.remove(clone)
        self._ledger_check(run, environment)

    def _print_step(self, scenario: str, step: Step) -> None:
        document = step_document(step)
        if scenario == "spread":
            self.spread_steps[step.users] = document
        elif step.users in self.spread_steps:
            twin = self.spread_steps[step.users]["auth_per_s"]
            document["ratios"]["hot_vs_spread"] = round(document["auth_per_s"] / twin, 3) if twin else None
        for line in step_lines(scenario, document):
            say(line)

    def run(self) -> dict:
        options = self.options
        self.out.mkdir(parents=True, exist_ok=True)
        started_at = _now()
        say(f"results in {self.out}")
        try:
            for scenario in options.scenarios:
                self.run_scenario(scenario)
        finally:
            if options.drop_databases:
                for name in list(self.created_databases):
                    asyncio.run(databases.drop_database(options.postgres_url, name))
        result = build_result(settings=self._settings(), scenarios=self.runs,
                              synchronous_commit=self.synchronous_commit, started_at=started_at,
                              finished_at=_now())
        (self.out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        draw_chart(result, self.out / "chart.png")
        for line in summary_lines(result):
            say(line)
        say(f"wrote {self.out / 'result.json'} and {self.out / 'chart.png'}")
        return result

    def _settings(self) -> dict:
        options = self.options
        return {
            "database": options.database, "workers": options.workers, "users": options.users,
            "duration_seconds": options.duration, "warmup_seconds": options.warmup, "scenarios": options.scenarios,
            "sizes": {"companies": options.companies, "cards": options.cards, "stations": options.stations,
                      "terminals": options.terminals},
            "pool_size": options.pool_size, "cpu_count": os.cpu_count(), "commit": _git_commit(),
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return completed.stdout.strip() or None


def _plain(value):
    """The seed's summary as JSON (a dataclass, a mapping, or its repr)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value):
        value = asdict(value)
    try:
        return json.loads(json.dumps(value, default=str))
    except TypeError:
        return repr(value)


def exit_status(result: dict) -> int:
    if not result["ok"]:
        return 1
    return 0 if result["valid"] else 2


def main(argv: list[str] | None = None) -> int:
    # Each step is printed as it is measured, also when the output goes to a file or a CI log.
    sys.stdout.reconfigure(line_buffering=True)
    result = Benchmark(parse_arguments(argv)).run()
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
