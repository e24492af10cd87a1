"""What the console's browser tests stand on: the platform served for real by uvicorn on a free
port, Debian's Chromium driven by Playwright, and a place for the screenshots.

The server runs in a thread with its own event loop (as a separate process would: nothing is
shared with the test but the database). The tests themselves run in pytest-asyncio's session
loop, where the one browser of the test session lives.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn

from processing.app import create_app
from processing.settings import Settings

REPOSITORY = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("FUELCARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# scripts/test sets this: there a missing browser fails the run instead of skipping its tests.
REQUIRE_BROWSER = os.environ.get("FUELCARD_TEST_REQUIRE_BROWSER") == "1"
HOW_TO_INSTALL = ("install Debian's chromium (apt-get install chromium) and the test extra "
                  "(pip install -e '.[test]'), or run scripts/test, which installs both")


def artifacts_dir() -> Path:
    """Where a test run keeps what a human looks at afterwards (screenshots)."""
    root = os.environ.get("FUELCARD_TEST_ARTIFACTS")
    return Path(root) if root else REPOSITORY / "artifacts"


class LiveServer:
    """``create_app`` under uvicorn on 127.0.0.1 and a free port, started and stopped by the test."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self, timeout: float = 30.0) -> None:
        app = create_app(self.settings)
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                                     access_log=False))
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise RuntimeError(f"uvicorn did not start on {self.url}") from self._failure

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._failure = error

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._socket.close()
