"""Gateway settings: defaults, overridden by a TOML file, then environment variables, then flags."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "GATEWAY_"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


class ProxyPool(BaseModel):
    """Proxies of one kind an operator offers batches: ``proxy {type, country}`` picks a pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    type: str = Field("datacenter", min_length=1, max_length=50)
    # ISO country codes the pool's exits are in; none: it serves any country asked.
    countries: tuple[str, ...] = ()
    # http(s)://user:password@host:port; requests rotate through them.
    urls: tuple[str, ...] = Field(min_length=1)
    # Used by batches that ask for no proxy.
    default: bool = False

    @field_validator("countries", mode="after")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(country.upper() for country in value)

    @field_validator("urls", mode="after")
    @classmethod
    def _proxy_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
                # Never echo the URL: it may hold credentials.
                raise ValueError("each proxy URL must be http(s)://[user:password@]host:port")
        return value

    def __repr__(self) -> str:
        return f"ProxyPool(name={self.name!r}, type={self.type!r}, countries={self.countries!r})"


class Settings(BaseModel):
    """Everything an operator can set. Each field is also ``GATEWAY_<NAME>`` in the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("var")
    database_url: str | None = None
    # scrapyd nodes as http://user:password@host:port; none means one embedded local node.
    scrapyd_urls: tuple[str, ...] = ()
    scrapyd_port: int = Field(6800, ge=1, le=65535)
    # How a job's node is chosen: "module:Class" of a NodePicker (gateway/nodes/pool.py); unset:
    # the only node, or the least loaded of several.
    node_picker: str | None = None
    deploy_builtin_project: bool = True
    # Requests per minute and key, unless the key has its own limit.
    rate_limit_per_minute: int = Field(600, ge=1)
    # How often running jobs are reconciled with scrapyd and their feeds read.
    sync_interval: float = Field(0.2, gt=0, le=60)
    # After a cancel, how long a spider may shut down gracefully before it is killed.
    cancel_grace_seconds: float = Field(10.0, ge=0)
    # How long a node may be unreachable before its running jobs end as error.
    node_lost_after_seconds: float = Field(30.0, gt=0)
    log_level: str = "info"
    # Bearer token for GET /metrics besides admin keys (an operator's Prometheus); unset: admin keys only.
    metrics_token: str | None = Field(None, min_length=16)
    # How scrapyd nodes reach the gateway (batch spiders read their inputs there); derived if unset.
    internal_url: str | None = None
    # Non-public addresses batches may scrape anyway: "host:port" or networks ("10.2.0.0/16").
    allowed_addresses: tuple[str, ...] = ()
    # Hours a finished batch's results are kept.
    batch_retention_hours: float = Field(24.0, gt=0)
    # Spider processes that share a big batch (each runs on one core), and the fewest URLs worth one.
    batch_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    batch_urls_per_process: int = Field(100, ge=1)
    # Concurrent browser pages of one batch spider process (JavaScript rendering, screenshots).
    browser_pages: int = Field(4, ge=1, le=64)
    # How long a batch spider keeps asking a gateway that does not answer for more URLs.
    batch_claim_patience_seconds: float = Field(90.0, ge=1, le=3600)
    # The shortest interval a website datasource may ask to be recrawled at on its own.
    crawl_interval_min_hours: float = Field(24.0, gt=0)
    # Cron times missed while no gateway ran still fire, late, if they are at most this old; after
    # a longer outage a schedule fires once for all it missed.
    schedule_grace_seconds: float = Field(600.0, ge=0)
    # Fairness on shared nodes: jobs of one tenant on nodes at once (more wait their turn), and the
    # longest a job may run before it is stopped (0: no limit).
    max_jobs_per_tenant: int = Field(4, ge=1)
    max_job_seconds: float = Field(6 * 3600.0, ge=0)
    # Seconds between a webhook's failed attempt and the next, one entry per retry (about a day
    # in all); then the delivery is marked failed. And how long one attempt may take.
    webhook_retry_seconds: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0)
    webhook_attempt_seconds: float = Field(10.0, gt=0, le=60)
    # Proxy pools; GATEWAY_PROXY_POOLS takes them as JSON, a config file as [[proxy_pools]] tables.
    proxy_pools: tuple[ProxyPool, ...] = ()

    @field_validator("webhook_retry_seconds", mode="before")
    @classmethod
    def _split_numbers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(entry) for entry in value.split(",") if entry.strip())
        return value

    @field_validator("scrapyd_urls", "allowed_addresses", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(entry.strip() for entry in value.split(",") if entry.strip())
        return value

    @field_validator("proxy_pools", mode="before")
    @classmethod
    def _pools_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("GATEWAY_PROXY_POOLS must be a JSON list of pools") from None
        return value

    @field_validator("proxy_pools", mode="after")
    @classmethod
    def _one_default(cls, value: tuple[ProxyPool, ...]) -> tuple[ProxyPool, ...]:
        if sum(pool.default for pool in value) > 1:
            raise ValueError("only one proxy pool can be the default")
        if len({pool.name for pool in value}) != len(value):
            raise ValueError("proxy pool names must differ")
        return value

    @property
    def gateway_url(self) -> str:
        if self.internal_url:
            return self.internal_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    @property
    def embedded_node(self) -> bool:
        return not self.scrapyd_urls


def load_settings(
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources in order of precedence: flags, environment, config file, defaults."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(environ[f"{ENV_PREFIX}CONFIG"])

    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values.update(tomllib.loads(config_file.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
    for name in Settings.model_fields:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if env_name in environ:
            values[name] = environ[env_name]
    values.update({name: value for name, value in (flags or {}).items() if value is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
