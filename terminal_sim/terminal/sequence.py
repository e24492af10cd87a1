"""The terminal's transaction sequence: one number per sale, never reused, kept in a small file.

The number is on disk before the sale uses it, so a crash never hands the same id to two sales
(the host would answer the second with the first one's answer). A lock file keeps two terminal
processes sharing one counter from drawing the same number.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

ID_DIGITS = 8


class TransactionSequence:
    def __init__(self, path: str | os.PathLike, *, prefix: str = ""):
        self.path = Path(path).expanduser()
        self.prefix = prefix

    def next_id(self) -> str:
        """The next transaction id, e.g. '00000042'."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.last()
            number = current + 1
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(temporary, "w") as handle:
                handle.write(f"{number}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        return f"{self.prefix}{number:0{ID_DIGITS}d}"

    def last(self) -> int:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise ValueError(f"the sequence file {self.path} is damaged: {text[:20]!r}")
        return int(text)
