"""Service configuration, read from the environment (prefix ``QUANGUARD_``).

No settings object exists at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gmcrypto import Suite, get_suite

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Every knob of the service. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(env_prefix="QUANGUARD_", extra="ignore", frozen=True)

    db_url: str = "sqlite:///var/quanguard.db"
    policy_dir: Path = Path("./policies")
    es_url: str | None = None
    # Keys live outside the data folder, so a copy of the data (a backup tarball, a disk
    # image of ./var) does not carry the keys that open it. Production: a folder of its
    # own, e.g. /etc/quanguard/keys, readable by the service user only.
    key_dir: Path = Path("./keys")
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    tz: str = "Asia/Shanghai"
    log_level: str = "INFO"
    # Audit trail: a signed checkpoint every N events or T seconds, whichever comes first.
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    # The legal minimum retention of the audit trail (days).
    retention_days: int = Field(default=180, ge=180)
    # Largest request body the HTTP API accepts (bytes).
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Seconds a client may pause while sending a request body before it gets 408.
    body_read_timeout: float = Field(default=15.0, gt=0)
    # Failed authentications per source address per minute before 429.
    auth_fail_limit: int = Field(default=20, ge=1)
    # Seconds between looks at the policy files' names, sizes and mtimes: an edit on disk
    # is loaded by the first decision after that (POST /v1/policy/reload loads it at once).
    policy_check_seconds: float = Field(default=1.0, gt=0)
    alert_webhook_url: str | None = None
    # Audit search exports (CSV / NDJSON from the console or /v1/audit/search?format=):
    # at most this many events per export; a larger result is refused, never truncated.
    export_max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    # Crypto suite of this deployment: "intl" (SHA-256, Ed25519, AES-GCM, HMAC-SHA-256,
    # FF1-AES) or "gm" (SM3, SM2, SM4-GCM, HMAC-SM3, FF1-SM4). Trails, datasets and key
    # records carry their suite; switching is a hand-over (README "Crypto suites").
    crypto: str = "intl"

    @field_validator("crypto")
    @classmethod
    def _known_suite(cls, value: str) -> str:
        key = value.strip().lower()
        if key not in ("intl", "gm"):
            raise ValueError(f"unknown crypto suite {value!r} (known: intl gm)")
        return key

    @property
    def suite(self) -> Suite:
        return get_suite(self.crypto)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("policy_dir")
    @classmethod
    def _shipped_policies_when_absent(cls, value: Path) -> Path:
        # Run from another folder, the default ``./policies`` does not exist: fall back to
        # the product's default set shipped beside the package, so commands still work.
        if value == Path("./policies") and not value.exists():
            shipped = Path(__file__).resolve().parent.parent / "policies"
            if shipped.is_dir():
                return shipped
        return value

    @field_validator("es_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def load_settings(**overrides: object) -> Settings:
    """Read the environment, apply ``overrides`` (for tests and CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
