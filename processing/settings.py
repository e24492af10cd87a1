"""Settings from the environment (prefix ``FUELCARD_``), one object for the whole process."""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

MASTER_KEY_FILE = "master.key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUELCARD_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    # Default: a SQLite file inside data_dir. PostgreSQL: postgresql+asyncpg://user@host/db
    database_url: str | None = None
    database_pool_size: int = Field(default=20, ge=1)
    # Base64 of 32 random bytes. Development generates one into data_dir; production requires it.
    master_key: SecretStr | None = None

    token_validity_seconds: int = Field(default=120, ge=10, le=3600)
    allowed_clock_skew_seconds: int = Field(default=30, ge=0, le=600)
    hold_expiry_seconds: int = Field(default=1800, ge=60)
    hold_expiry_sweep_seconds: float = Field(default=30.0, gt=0)
    # A terminal request signed longer ago than this (or this far in the future) is refused.
    terminal_signature_max_age_seconds: int = Field(default=300, ge=5)
    # Completion amount may differ from litres x posted price by this much (rounding at the pump).
    completion_price_tolerance_minor: int = Field(default=100, ge=0)
    completion_price_tolerance_percent: float = Field(default=1.0, ge=0, le=10)

    # Sign-in (drivers, later the cabinet and the fraud console): short-lived JWT access tokens,
    # rotating refresh tokens, and a lock-out after consecutive wrong passwords.
    access_token_seconds: int = Field(default=900, ge=60, le=86_400)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # Top-ups by bank card: the payment gateway's base URL and the secret shared with it (it signs
    # our requests and its callbacks, HMAC-SHA256). Without a secret card top-ups are refused.
    gateway_url: str = "http://127.0.0.1:8090"
    gateway_secret: SecretStr | None = None
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # The outbox relay (`fuelcard relay run`). No NATS URL: events go to webhooks and the replay
    # API only. One JetStream stream per event family: <PREFIX>_<FAMILY>, subjects <prefix>.<family>.>
    nats_url: str | None = None
    nats_subject_prefix: str = Field(default="fuelcard", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # The broker drops a message whose id (the event id) it saw this recently.
    nats_duplicate_window_seconds: int = Field(default=120, ge=1, le=86_400)
    nats_publish_timeout_seconds: float = Field(default=5.0, gt=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    # Only the holder of this lease numbers and delivers events; renewed every lease/3 seconds.
    relay_lease_seconds: float = Field(default=5.0, ge=0.5, le=300)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    # Retry n waits about base * 2^(n-1) seconds (half to all of it, at random), at most backoff_max.
    webhook_backoff_base_seconds: float = Field(default=10.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Deliveries to different (endpoint, company) queues in flight at once.
    webhook_concurrency: int = Field(default=16, ge=1, le=512)

    pan_prefix: str = Field(default="700512", pattern=r"^7\d{5,9}$")
    dpan_prefix: str = Field(default="700590", pattern=r"^7\d{5,9}$")
    auto_migrate: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production" and self.master_key is None:
            raise ValueError("FUELCARD_MASTER_KEY is required when FUELCARD_ENVIRONMENT=production")
        if self.master_key is not None:
            decode_master_key(self.master_key.get_secret_value())
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fuelcard.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def master_key_bytes(self) -> bytes:
        """The master key; in development it is created once in data_dir (with a warning)."""
        if self.master_key is not None:
            return decode_master_key(self.master_key.get_secret_value())
        return _development_master_key(self.data_dir.resolve())


def decode_master_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError("FUELCARD_MASTER_KEY must be base64") from exc
    if len(key) != 32:
        raise ValueError("FUELCARD_MASTER_KEY must decode to 32 bytes")
    return key


@functools.cache
def _development_master_key(data_dir: Path) -> bytes:
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return decode_master_key(json.loads(path.read_text())["master_key"])
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Write aside, then link into place: link fails if another worker won the race,
    # and a reader never sees a half-written file.
    temporary = data_dir / f".{MASTER_KEY_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"master_key": base64.b64encode(key).decode()}, handle)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return decode_master_key(json.loads(path.read_text())["master_key"])
    finally:
        temporary.unlink()
    logger.warning(
        "generated a development master key in %s; set FUELCARD_MASTER_KEY in production", path
    )
    return key


@functools.cache
def get_settings() -> Settings:
    return Settings()
