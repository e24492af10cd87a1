"""The server under test: `fuelcard serve` of this checkout, in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from loadtests.bench.cpu_watch import process_tree_cpu_seconds

REPO_ROOT = Path(__file__).resolve().parents[2]


def fuelcard_command(*arguments: str) -> list[str]:
    """`fuelcard <arguments>` running the code of this checkout (see fuelcard_main)."""
    return [sys.executable, "-m", "loadtests.bench.fuelcard_main", *arguments]


def checkout_environment(**settings: str) -> dict[str, str]:
    """This process's environment, with the checkout first on the path and ``settings`` added."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **settings}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`fuelcard serve --workers W` on a free port; its output goes to ``log_path``."""

    def __init__(self, *, environment: dict[str, str], workers: int, log_path: Path):
        self.environment = environment
        self.workers = workers
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self, *, timeout_seconds: float = 90) -> None:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            fuelcard_command("serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)),
            cwd=REPO_ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the workers go with it in stop()
        )
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server {_exit_words(self._process.returncode)} while starting:\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /health in {timeout_seconds} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU seconds the server (the uvicorn process and its workers) has used so far."""
        assert self._process is not None, "the server is not running"
        return process_tree_cpu_seconds(psutil.Process(self._process.pid)) or 0.0

    def stop(self, *, timeout_seconds: float = 20) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # uvicorn's supervisor stops its workers on SIGTERM; the group kill is the fallback.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def error_lines(self) -> list[str]:
        """Errors the server logged (it logs at WARNING: every line is worth a look, these most)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines()
                if " ERROR " in line or line.startswith(("ERROR:", "Traceback"))]

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _exit_words(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name} (not by the harness)"
    return f"exited with status {code}"
