"""The numbers a run produced, the ratios the issue asks for, and how they read against its targets.

``build_result`` turns the measured steps into the JSON document (result.json); ``step_lines`` and
``summary_lines`` print from that document, and the chart draws from it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtests.bench.cpu_watch import CPU_BOUND_PERCENT
from loadtests.bench.locust_runner import LocustStep
from loadtests.bench.pgbench_runner import PgbenchResult

# The targets (PostgreSQL, synchronous_commit on, runs of at least 60 s).
AUTH_VS_PGBENCH_TARGET = 0.4  # authorizations/s ÷ pgbench authorizations/s
AUTH_VS_HEALTH_TARGET = 0.25  # authorizations/s ÷ /health requests/s
HOT_VS_SPREAD_TARGET = 0.5  # hot-account authorizations/s ÷ spread, at the same users
P99_AT_70_PERCENT_TARGET_MS = 50.0
P99_OVER_P50_TARGET = 5.0
LOAD_POINT = 0.7  # "at 70 % of peak"
LOAD_POINT_TOLERANCE = 0.15
TARGET_MIN_DURATION_SECONDS = 60

AUTHORIZE = "authorize"
COMPLETE = "complete"
HEALTH = "health"


@dataclass
class Step:
    """One user count of one scenario: the pump flows, and on the spread scenario the references."""

    users: int
    pump: LocustStep
    server_cpu_seconds: float | None = None  # the server's CPU during the pump step
    health: LocustStep | None = None
    pgbench: PgbenchResult | None = None


@dataclass
class ScenarioRun:
    name: str  # "spread" or "hot"
    database: str  # URL without password
    seed: dict
    warmup: LocustStep | None = None
    steps: list[Step] = field(default_factory=list)
    ledger_consistent: bool | None = None
    ledger_output: str = ""
    server_errors: list[str] = field(default_factory=list)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _check(name: str, value: float | None, target: float, *, at_least: bool) -> dict:
    passed = None if value is None else (value >= target if at_least else value <= target)
    return {"name": name, "value": value, "target": target, "comparison": ">=" if at_least else "<=",
            "passed": passed}


def _rate(step: LocustStep, name: str) -> float:
    stats = step.stats(name)
    return round(stats.requests_per_second, 2) if stats else 0.0


def _latency(step: LocustStep) -> dict:
    stats = step.stats(AUTHORIZE)
    if stats is None:
        return {"p50": None, "p95": None, "p99": None}
    return {"p50": stats.p50_ms, "p95": stats.p95_ms, "p99": stats.p99_ms}


def _invalid_reasons(step: LocustStep) -> list[str]:
    reasons = []
    if step.cpu_warning:
        reasons.append(f"locust warned 'CPU usage above 90%' ({step.user_class})")
    if step.cpu.average_percent > CPU_BOUND_PERCENT:
        reasons.append(f"locust averaged {step.cpu.average_percent:.0f} % of a core ({step.user_class})")
    return reasons


def _failure_messages(step: LocustStep) -> list[str]:
    messages = [f"{failure.occurrences}x {failure.method} {failure.name}: {failure.error}" for failure in step.failures]
    messages += [f"{exception.count}x exception in a task: {exception.message}" for exception in step.exceptions]
    return messages


def _per_authorization(step: Step) -> float | None:
    authorize = step.pump.stats(AUTHORIZE)
    if step.server_cpu_seconds is None or authorize is None or not authorize.requests:
        return None
    return round(1000 * step.server_cpu_seconds / authorize.requests, 2)


def step_document(step: Step) -> dict:
    pump = step.pump
    document = {
        "users": step.users,
        "auth_per_s": _rate(pump, AUTHORIZE),
        "auth_repeat_per_s": _rate(pump, "authorize (repeat)"),
        "completions_per_s": _rate(pump, COMPLETE),
        "reversals_per_s": _rate(pump, "reverse"),
        "latency_ms": _latency(pump),
        "authorizations": pump.stats(AUTHORIZE).requests if pump.stats(AUTHORIZE) else 0,
        "failures": pump.failure_count,
        "failure_messages": _failure_messages(pump),
        # The server's CPU during the step per authorization counted (with the completions,
        # reversals and repeats that go with it): the steadiest figure of the hot path's cost.
        "server_cpu_ms_per_auth": _per_authorization(step),
        "locust_cpu": pump.cpu.as_dict(),
        "invalid_reasons": _invalid_reasons(pump),
        "locust": pump.as_dict(),
    }
    if step.health is not None:
        document["health_per_s"] = _rate(step.health, HEALTH)
        document["health_failures"] = step.health.failure_count
        document["health_failure_messages"] = _failure_messages(step.health)
        document["health_locust_cpu"] = step.health.cpu.as_dict()
        document["invalid_reasons"] += _invalid_reasons(step.health)
        document["health_locust"] = step.health.as_dict()
    if step.pgbench is not None:
        document["pgbench_auth_per_s"] = round(step.pgbench.authorization_tps, 2)
        document["pgbench"] = step.pgbench.as_dict()
    document["invalid"] = bool(document["invalid_reasons"])
    document["ratios"] = {
        "auth_vs_pgbench": _ratio(document["auth_per_s"], document.get("pgbench_auth_per_s")),
        "auth_vs_health": _ratio(document["auth_per_s"], document.get("health_per_s")),
    }
    return document


def _scenario_document(run: ScenarioRun) -> dict:
    return {
        "database": run.database, "seed": run.seed,
        "warmup": None if run.warmup is None else {
            "users": run.warmup.users, "seconds": run.warmup.duration_seconds,
            "auth_per_s": _rate(run.warmup, AUTHORIZE), "failures": run.warmup.failure_count,
            "failure_messages": _failure_messages(run.warmup)},
        "steps": [step_document(step) for step in run.steps],
        "ledger_check": {"consistent": run.ledger_consistent, "output": run.ledger_output},
        "server_errors": run.server_errors,
    }


def _peak(steps: list[dict], key: str) -> float | None:
    values = [step[key] for step in steps if step.get(key) is not None]
    return max(values) if values else None


def _load_point(steps: list[dict]) -> dict | None:
    """The step whose auth/s is nearest 70 % of the peak, with its latency, on the rising side of
    the curve: past the peak, more users only queue, and a step there that happens to reach 70 %
    is an overload, not 70 % of the load the host can carry."""
    peak = _peak(steps, "auth_per_s")
    if not peak:
        return None
    peak_users = min(step["users"] for step in steps if step["auth_per_s"] == peak)
    rising = [step for step in steps if step["users"] <= peak_users]
    step = min(rising, key=lambda candidate: abs(candidate["auth_per_s"] - LOAD_POINT * peak))
    latency = step["latency_ms"]
    return {
        "users": step["users"], "auth_per_s": step["auth_per_s"], "peak_auth_per_s": peak,
        "fraction_of_peak": round(step["auth_per_s"] / peak, 3),
        "p50_ms": latency["p50"], "p99_ms": latency["p99"],
        "p99_over_p50": _ratio(latency["p99"], latency["p50"]),
        # Steps are discrete: further than this from 70 %, the reading is of another load.
        "near": abs(step["auth_per_s"] / peak - LOAD_POINT) <= LOAD_POINT_TOLERANCE,
    }


def build_result(*, settings: dict, scenarios: list[ScenarioRun], synchronous_commit: dict[str, str],
                 started_at: str, finished_at: str) -> dict:
    documents = {run.name: _scenario_document(run) for run in scenarios}
    spread = documents.get("spread", {}).get("steps", [])
    hot = documents.get("hot", {}).get("steps", [])
    spread_by_users = {step["users"]: step for step in spread}
    for step in hot:
        twin = spread_by_users.get(step["users"])
        step["ratios"]["hot_vs_spread"] = _ratio(step["auth_per_s"], twin["auth_per_s"] if twin else None)

    load_point = _load_point(spread)
    ratios = {
        "peak_auth_vs_peak_pgbench": _ratio(_peak(spread, "auth_per_s"), _peak(spread, "pgbench_auth_per_s")),
        "peak_auth_vs_peak_health": _ratio(_peak(spread, "auth_per_s"), _peak(spread, "health_per_s")),
        "peak_hot_vs_peak_spread": _ratio(_peak(hot, "auth_per_s"), _peak(spread, "auth_per_s")) if hot else None,
        "by_users": {
            step["users"]: {**step["ratios"], "hot_vs_spread": next(
                (h["ratios"]["hot_vs_spread"] for h in hot if h["users"] == step["users"]), None)}
            for step in spread
        },
    }
    all_steps = spread + hot
    failures = sum(step["failures"] + step.get("health_failures", 0) for step in all_steps)
    pgbench_failed = [step["users"] for step in spread if "pgbench" in step and not step["pgbench"]["ok"]]
    ledger = {name: document["ledger_check"]["consistent"] for name, document in documents.items()}
    checks = [
        _check("auth/s ÷ pgbench auth/s (peak vs peak)", ratios["peak_auth_vs_peak_pgbench"],
               AUTH_VS_PGBENCH_TARGET, at_least=True),
        _check("auth/s ÷ /health req/s (peak vs peak)", ratios["peak_auth_vs_peak_health"],
               AUTH_VS_HEALTH_TARGET, at_least=True),
        _check("p99 at 70 % of peak (ms)", load_point and load_point["p99_ms"],
               P99_AT_70_PERCENT_TARGET_MS, at_least=False),
        _check("p99 ÷ p50 at 70 % of peak", load_point and load_point["p99_over_p50"],
               P99_OVER_P50_TARGET, at_least=False),
        _check("hot auth/s ÷ spread auth/s (peak vs peak)", ratios["peak_hot_vs_peak_spread"],
               HOT_VS_SPREAD_TARGET, at_least=True),
        _check("errors other than business declines", failures, 0, at_least=False),
    ]
    invalid_steps = [f"{name}, {step['users']} users: {'; '.join(step['invalid_reasons'])}"
                     for name, document in documents.items() for step in document["steps"] if step["invalid"]]
    comparable = (settings["database"] == "postgresql" and settings["duration_seconds"] >= TARGET_MIN_DURATION_SECONDS
                  and all(value == "on" for value in synchronous_commit.values()))
    return {
        "version": 1, "started_at": started_at, "finished_at": finished_at, "settings": settings,
        "synchronous_commit": synchronous_commit, "scenarios": documents, "ratios": ratios,
        "at_70_percent_of_peak": load_point, "checks": checks, "failures": failures,
        "pgbench_failed_at_users": pgbench_failed, "ledger_consistent": ledger,
        "invalid_steps": invalid_steps, "valid": not invalid_steps,
        "comparable_with_targets": comparable,
        "ok": failures == 0 and not pgbench_failed and all(value is True for value in ledger.values()),
    }


def _mark(value: float | None, target: float, *, at_least: bool) -> str:
    if value is None:
        return "n/a"
    passed = value >= target if at_least else value <= target
    shown = str(value) if isinstance(value, int) else f"{value:.2f}"
    return f"{shown} (target {'≥' if at_least else '≤'} {target:g}: {'pass' if passed else 'FAIL'})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def step_lines(scenario: str, step: dict) -> list[str]:
    """What one step printed, as soon as it is measured."""
    latency = step["latency_ms"]
    lines = [
        f"[{scenario}] {step['users']} users: authorize {step['auth_per_s']:.1f}/s  p50 {_ms(latency['p50'])}  "
        f"p95 {_ms(latency['p95'])}  p99 {_ms(latency['p99'])}  complete {step['completions_per_s']:.1f}/s  "
        f"failures {step['failures']}  locust CPU {step['locust_cpu']['average_percent']:.0f} %",
    ]
    if step.get("server_cpu_ms_per_auth") is not None:
        lines.append(f"    server CPU {step['server_cpu_ms_per_auth']:.2f} ms per authorization (with its completion)")
    if "health_per_s" in step:
        lines.append(f"    health {step['health_per_s']:.1f} req/s  failures {step['health_failures']}  "
                     f"locust CPU {step['health_locust_cpu']['average_percent']:.0f} %")
    if "pgbench" in step:
        pgbench = step["pgbench"]
        lines.append(f"    pgbench auth {step['pgbench_auth_per_s']:.1f}/s  (all scripts {pgbench['tps']:.1f} tps, "
                     f"failed {pgbench['failed_transactions']}, errors {len(pgbench['errors'])})")
    ratios = step["ratios"]
    parts = []
    if ratios.get("auth_vs_pgbench") is not None:
        parts.append(f"auth/pgbench {_mark(ratios['auth_vs_pgbench'], AUTH_VS_PGBENCH_TARGET, at_least=True)}")
    if ratios.get("auth_vs_health") is not None:
        parts.append(f"auth/health {_mark(ratios['auth_vs_health'], AUTH_VS_HEALTH_TARGET, at_least=True)}")
    if ratios.get("hot_vs_spread") is not None:
        parts.append(f"hot/spread {_mark(ratios['hot_vs_spread'], HOT_VS_SPREAD_TARGET, at_least=True)}")
    if parts:
        lines.append("    " + "   ".join(parts))
    for message in step["failure_messages"] + step.get("health_failure_messages", []):
        lines.append(f"    failure: {message}")
    if "pgbench" in step:
        lines += [f"    pgbench: {error}" for error in step["pgbench"]["errors"]]
    if step["invalid"]:
        lines.append(f"    INVALID: locust was CPU-bound at {step['users']} users ({'; '.join(step['invalid_reasons'])})")
    return lines


def summary_lines(result: dict) -> list[str]:
    lines = ["", "=== summary ==="]
    settings = result["settings"]
    lines.append(f"database {settings['database']}, {settings['workers']} workers, {settings['duration_seconds']} s "
                 f"per step, synchronous_commit: {result['synchronous_commit'] or 'n/a (sqlite)'}")
    header = f"{'scenario':<8} {'users':>5} {'auth/s':>9} {'p50':>7} {'p95':>7} {'p99':>7} {'health/s':>9} " \
             f"{'pgb auth/s':>10} {'a/pgb':>6} {'a/hlth':>6} {'hot/spr':>7} {'fail':>5} {'cpu%':>5}"
    lines.append(header)
    for name, document in result["scenarios"].items():
        for step in document["steps"]:
            latency, ratios = step["latency_ms"], step["ratios"]

            def cell(value, width, digits=1):
                return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"

            lines.append(
                f"{name:<8} {step['users']:>5} {cell(step['auth_per_s'], 9)} {cell(latency['p50'], 7, 0)} "
                f"{cell(latency['p95'], 7, 0)} {cell(latency['p99'], 7, 0)} {cell(step.get('health_per_s'), 9)} "
                f"{cell(step.get('pgbench_auth_per_s'), 10)} {cell(ratios.get('auth_vs_pgbench'), 6, 2)} "
                f"{cell(ratios.get('auth_vs_health'), 6, 2)} {cell(ratios.get('hot_vs_spread'), 7, 2)} "
                f"{step['failures'] + step.get('health_failures', 0):>5} {step['locust_cpu']['average_percent']:>5.0f}"
                + ("  INVALID" if step["invalid"] else ""))
    point = result["at_70_percent_of_peak"]
    if point:
        lines.append(f"70 % of peak ({point['peak_auth_per_s']:.1f} auth/s): nearest step {point['users']} users at "
                     f"{point['auth_per_s']:.1f} auth/s ({100 * point['fraction_of_peak']:.0f} % of peak), "
                     f"p50 {_ms(point['p50_ms'])}, p99 {_ms(point['p99_ms'])}")
        if not point["near"]:
            lines.append(f"  no step is near 70 % of peak: add user counts around {point['users']} "
                         f"(below it if the peak is reached already there) to read the latency at that load")
    for check in result["checks"]:
        lines.append(f"  {check['name']}: {_mark(check['value'], check['target'], at_least=check['comparison'] == '>=')}")
    for name, consistent in result["ledger_consistent"].items():
        lines.append(f"ledger check ({name}): {'consistent' if consistent else 'FAILED'}")
    for line in result["invalid_steps"]:
        lines.append(f"INVALID: locust was CPU-bound — {line}")
    if not result["comparable_with_targets"]:
        lines.append("note: the targets assume PostgreSQL, synchronous_commit on and steps of at least "
                     f"{TARGET_MIN_DURATION_SECONDS} s; this run is not comparable with them")
    return lines
