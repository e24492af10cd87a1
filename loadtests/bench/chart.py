"""chart.png: throughput and latency against users, and the hot account against the spread."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on the benchmark machine

import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first


def _series(steps: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(step["users"], step[key]) for step in steps if step.get(key) is not None]
    return [users for users, _ in points], [value for _, value in points]


def draw_chart(result: dict, path: Path) -> None:
    spread = result["scenarios"].get("spread", {}).get("steps", [])
    hot = result["scenarios"].get("hot", {}).get("steps", [])
    figure, (throughput, latency, accounts) = plt.subplots(1, 3, figsize=(17, 5.2))
    settings = result["settings"]
    figure.suptitle(f"fuelcard load test: {settings['database']}, {settings['workers']} workers, "
                    f"{settings['duration_seconds']} s per step ({result['started_at']})")

    for key, label, style in (("auth_per_s", "authorizations/s (locust)", "o-"),
                              ("pgbench_auth_per_s", "pgbench authorizations/s (database limit)", "s--"),
                              ("health_per_s", "/health requests/s (web stack limit)", "^:")):
        users, values = _series(spread, key)
        if users:
            throughput.plot(users, values, style, label=label)
    bound = [(step["users"], step[key]) for step in spread for key, run in (("auth_per_s", "locust"),
             ("health_per_s", "health_locust")) if step.get(run, {}).get("cpu_bound")]
    if bound:
        throughput.plot([u for u, _ in bound], [v for _, v in bound], "x", color="red", markersize=12,
                        label="locust CPU-bound: not valid")
    throughput.set(title="Throughput", xlabel="users (concurrent terminals / pgbench clients)", ylabel="per second")
    throughput.set_yscale("log")  # /health runs an order of magnitude above the authorizations

    for key, marker, colour in (("p50", "o", "tab:green"), ("p95", "s", "tab:orange"), ("p99", "^", "tab:red")):
        for steps, name, line in ((spread, "spread", "-"), (hot, "hot", "--")):
            points = [(step["users"], step["latency_ms"][key]) for step in steps
                      if step["latency_ms"][key] is not None]
            if points:
                latency.plot([u for u, _ in points], [v for _, v in points], marker=marker, linestyle=line,
                             color=colour, label=f"{key} {name}")
    latency.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="p99 target 50 ms")
    latency.set(title="authorize latency", xlabel="users", ylabel="ms")

    for steps, label, style in ((spread, "spread (1,000+ companies)", "o-"), (hot, "hot account (one company)", "s--")):
        users, values = _series(steps, "auth_per_s")
        if users:
            accounts.plot(users, values, style, label=label)
    accounts.set(title="Hot account vs spread", xlabel="users", ylabel="authorizations/s")

    accounts.set_ylim(bottom=0)
    latency.set_ylim(bottom=0)
    user_counts = sorted({step["users"] for step in spread + hot})
    for axes in (throughput, latency, accounts):
        if user_counts:
            axes.set_xscale("log", base=2)  # user counts usually double from step to step
            axes.set_xticks(user_counts, [str(users) for users in user_counts])
            axes.minorticks_off()
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
