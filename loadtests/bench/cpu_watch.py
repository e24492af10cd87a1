"""How much CPU locust itself uses: a load generator short of CPU measures itself, not the server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

# Above this share of one core on average, the step is not valid (locust's own warning fires at 90 %).
CPU_BOUND_PERCENT = 90.0


@dataclass(frozen=True)
class CpuUsage:
    average_percent: float  # of one core, over the watched time after start-up
    peak_percent: float  # the busiest one-second sample
    samples: int

    def as_dict(self) -> dict:
        return {"average_percent": round(self.average_percent, 1), "peak_percent": round(self.peak_percent, 1),
                "samples": self.samples}


class CpuWatch:
    """Samples a process and its children every ``interval`` seconds in a thread.

    The first ``skip_seconds`` are left out of the average: importing locust and the scenario
    is busy work before any request is sent."""

    def __init__(self, pid: int, *, interval: float = 1.0, skip_seconds: float = 2.0):
        self._root = psutil.Process(pid)
        self._interval = interval
        self._skip_seconds = skip_seconds
        self._samples: list[tuple[float, float]] = []  # (monotonic time, CPU seconds so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu_seconds(self) -> float | None:
        return process_tree_cpu_seconds(self._root)

    def _run(self) -> None:
        while True:
            seconds = self._cpu_seconds()
            if seconds is None:
                return
            self._samples.append((time.monotonic(), seconds))
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> CpuWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def usage(self) -> CpuUsage:
        samples = self._samples
        if len(samples) < 2:
            return CpuUsage(0.0, 0.0, 0)
        start_time = samples[0][0] + self._skip_seconds
        watched = [sample for sample in samples if sample[0] >= start_time]
        if len(watched) < 2:
            watched = samples  # a run shorter than the start-up allowance: all of it
        rates = [100 * (b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(watched, watched[1:], strict=False)
                 if b[0] > a[0]]
        elapsed = watched[-1][0] - watched[0][0]
        average = 100 * (watched[-1][1] - watched[0][1]) / elapsed if elapsed > 0 else 0.0
        return CpuUsage(average, max(rates, default=0.0), len(watched))


def process_tree_cpu_seconds(root: psutil.Process) -> float | None:
    """CPU seconds (user + system) used so far by a process and its children; None once it ended."""
    total = 0.0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # a child that just ended
        total += times.user + times.system
    return total
