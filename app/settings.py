"""Settings from the environment (prefix ``SLIPWAY_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from strawberry.http.websocket_origin import normalize_allowed_origins


class Settings(BaseSettings):
    """Everything Slipway reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="logs, workspaces, SQLite file")
    database_url: str | None = Field(default=None, description="default: SQLite in data_dir")
    redis_url: str | None = Field(default=None, description="unset: embedded mode")
    secret_key: str | None = Field(default=None, description="default: data_dir/secret.key")
    docker_host: str | None = Field(default=None, description="default: DOCKER_HOST / socket")
    health_timeout: float = Field(default=120.0, gt=0, description="seconds for VERIFY_HEALTH")
    readyz_cache: float = Field(
        default=2.0, ge=0, description="seconds /readyz keeps each dependency's answer"
    )
    health_probe_host: str = Field(default="127.0.0.1", description="host probed for ports")
    endpoint_mode: str = Field(default="vip", pattern="^(vip|dnsrr)$", description="Swarm")
    ingress_fallback: str = Field(
        default="host",
        pattern="^(host|refuse|off)$",
        description="INGRESS ports where the routing mesh does not route: host mode, refuse, "
        "or leave them (see app/runtime/mesh.py)",
    )
    max_concurrent_builds: int = Field(
        default=1, ge=1, description="deployments at once on the local engine (servers: own)"
    )
    worker_threads: int = Field(default=4, ge=1)
    heartbeat_interval: float = Field(default=2.0, gt=0, description="also how soon cancel acts")
    worker_lost_after: float = Field(
        default=30.0, gt=0, description="a RUNNING row is ERROR this long after its last beat"
    )
    watchdog_interval: float = Field(default=5.0, gt=0, description="seconds between sweeps")
    # the runtime monitor (app/monitor): one watcher per engine
    monitor: bool = Field(default=True, description="watch DONE applications on the engine")
    monitor_health_failures: int = Field(
        default=3, ge=1, description="failed health checks in a row that are HEALTH_CHECK_FAILED"
    )
    monitor_recovery_s: float = Field(
        default=10.0, ge=0, description="running and healthy this long after an incident: RECOVERED"
    )
    monitor_interval: float = Field(
        default=5.0, gt=0, description="seconds between the monitor's task listings"
    )
    monitor_lease_s: float = Field(
        default=15.0, gt=0, description="how long an engine's watcher lease lasts unrenewed"
    )
    deploy_timeout: float = Field(
        default=1800.0, gt=0, description="default per-application deployment time limit"
    )
    keep_deployments: int = Field(
        default=50, ge=1, description="finished deployments kept per application (retention)"
    )
    retention_interval: float = Field(default=600.0, gt=0, description="seconds between runs")
    fetch_retries: int = Field(default=3, ge=0, description="retries of a fetch on network errors")
    registry_timeout: float = Field(
        default=10.0, gt=0, le=300, description="seconds each registry HTTP API call may take"
    )
    max_upload_bytes: int = Field(
        default=1 << 30, gt=0, description="largest archive dropDeployment accepts (bytes)"
    )
    max_archive_entries: int = Field(default=100_000, gt=0, description="entries in a dropped ZIP")
    max_archive_total: int = Field(
        default=4 << 30, gt=0, description="bytes a dropped ZIP may extract to, all files"
    )
    max_compression_ratio: float = Field(
        default=200.0, gt=1, description="uncompressed/compressed size of one entry (>= 1 MiB)"
    )
    max_query_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="largest GraphQL request (JSON body, GET query string, or a document over "
        "a WebSocket); a larger one is refused before it is parsed",
    )
    webhook_max_body: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="bytes; a larger delivery gets 413"
    )
    webhook_retention_days: float = Field(
        default=30.0, gt=0, description="days a handled webhook delivery id is remembered"
    )
    block_private_sources: bool = Field(
        default=False,
        description="refuse git repositories and submodules whose host resolves to a loopback, "
        "private, link-local (cloud metadata) or other non-public address; on in production",
    )
    log_wakeups_per_second: float = Field(
        default=3000.0,
        gt=0,
        description="per log (or status) followed, how many of its followers may be woken a "
        "second: with N followers, new lines go out at most every N/this seconds, in one "
        "frame each (1,000 followers: every 1/3 s); more means fresher frames for more CPU",
    )
    ws_compression: bool = Field(
        default=False,
        description="permessage-deflate on WebSockets: less traffic, but each follower's "
        "copy of a busy log is compressed separately, which costs the event loop",
    )
    ws_init_timeout: float = Field(
        default=10.0, gt=0, description="seconds a new WebSocket has to send connection_init"
    )
    ws_max_connections: int = Field(
        default=1000, ge=1, description="open GraphQL WebSockets per serve process"
    )
    ws_max_connections_per_key: int = Field(
        default=50, ge=1, description="open GraphQL WebSockets per API key, per serve process"
    )
    ws_max_pending_per_address: int = Field(
        default=20, ge=1, description="WebSockets from one address still waiting for init"
    )
    ws_max_subscriptions: int = Field(
        default=1000, ge=1, description="running WebSocket operations per serve process"
    )
    ws_max_subscriptions_per_key: int = Field(
        default=200, ge=1, description="running WebSocket operations per API key, per process"
    )
    ws_recheck_interval: float = Field(
        default=5.0, gt=0, description="seconds between re-checks of an open WebSocket's key"
    )
    ws_max_message_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="largest WebSocket message; a larger one closes the socket (1009) unread",
    )
    max_query_depth: int = Field(
        default=10, ge=1, description="nested selections a GraphQL operation may have"
    )
    max_query_cost: int = Field(
        default=100_000,
        ge=1,
        description="fields a GraphQL operation may resolve, counting each once per object "
        "(lists multiply by their first/limit); more is refused before it runs",
    )
    allowed_bind_prefixes: str = Field(
        default="",
        description="comma-separated host paths under which a DEPLOY key may bind-mount "
        "(empty: only ADMIN keys bind host paths; the engine socket, /proc, /sys, /dev, /etc, "
        "/boot, /root, /var/lib/docker and the data dir are refused for every key)",
    )
    admin_ports: str = Field(
        default="2375,2376,2377,4789,5432,6379,7946",
        description="comma-separated published ports only an ADMIN key may use, besides those "
        "below 1024 and Slipway's own: an ingress port takes that port's traffic on every node "
        "(default: the Docker API and Swarm's own ports, PostgreSQL, Redis)",
    )
    auth_failure_limit: int = Field(
        default=10, ge=1, description="refused API keys from one address before it gets 429"
    )
    auth_failure_window: float = Field(
        default=60.0, gt=0, description="seconds over which auth_failure_limit counts"
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses whose X-Forwarded-For is believed (uvicorn forwarded_allow_ips; "
        "empty: the peer address is the client's, as for the failure limit)",
    )
    cors_origins: str = Field(
        default="",
        description="comma-separated origins (https://app.example.com) whose browser pages may "
        "call the API: CORS on HTTP and the Origin check of WebSockets; '*' allows any; "
        "empty: same origin only",
    )
    graphiql: bool = Field(default=True, description="the GraphiQL explorer on a browser GET")
    build_http_proxy: str = Field(
        default="",
        description="HTTP_PROXY (and http_proxy) given to every image build as a build arg; "
        "Docker keeps these out of the image config; credentials in it are masked in logs",
    )
    build_https_proxy: str = Field(default="", description="HTTPS_PROXY for builds, likewise")
    build_no_proxy: str = Field(default="", description="NO_PROXY for builds, likewise")
    docker_cli: str = Field(
        default="docker",
        description="the docker CLI with BuildKit (Docker >= 18.09) that builds applications "
        "with build secrets (DOCKER_BUILDKIT=1 docker build --secret); PATH is searched; "
        "the default takes the first docker CLI that can (PATH's, /usr/bin, /usr/local/bin)",
    )
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="a bearer token that may read /metrics (Prometheus' bearer_token) "
        "besides any valid API key; at least 16 characters",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="prometheus-client's multiprocess directory: the serve and worker "
        "processes of one machine that share it are all in each serve's /metrics "
        "(unset: each process shows its own)",
    )
    public_url: str = Field(
        default="",
        description="the address people reach this server at (https://slipway.example.com): "
        "notifications link to <public_url>/ui/deployments/<id>; empty: no link",
    )
    notify_timeout: float = Field(
        default=10.0, gt=0, le=120, description="seconds one notification send may take"
    )
    notify_attempts: int = Field(
        default=6, ge=1, le=50, description="sends of one notification message before giving up"
    )
    notify_backoff: float = Field(
        default=5.0, gt=0, description="seconds before the first retry of a failed send; doubled"
    )
    notify_backoff_max: float = Field(
        default=600.0, gt=0, description="the longest wait between two sends of one message"
    )
    notify_threads: int = Field(
        default=2, ge=1, le=32, description="threads sending notifications in each worker"
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="slipway worker serves its own GET /metrics on this port (same keys and "
        "token as serve's): for a worker no serve shares SLIPWAY_METRICS_DIR with",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="the address the worker's /metrics listens on"
    )
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("SLIPWAY_PUBLIC_URL must start with http:// or https://")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        normalize_allowed_origins(_split(value))  # ValueError naming the bad one
        return value

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """``cors_origins`` normalised as browsers send ``Origin`` (lowercase, no default
        port); ``("*",)`` for any."""
        return tuple(sorted(normalize_allowed_origins(_split(self.cors_origins))))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'slipway.db').resolve()}"

    @property
    def bind_prefixes(self) -> tuple[str, ...]:
        """``allowed_bind_prefixes`` as a tuple of paths."""
        return tuple(p.strip() for p in self.allowed_bind_prefixes.split(",") if p.strip())

    @property
    def reserved_ports(self) -> frozenset[int]:
        """Published ports a DEPLOY key may not use (above 1023): ``admin_ports`` and ours."""
        listed = {int(p) for p in self.admin_ports.split(",") if p.strip().isdigit()}
        return frozenset(listed | {self.port})

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def stale_after(self) -> float:
        """Heartbeat age past which the watchdog reaps, so that it acts within the bound."""
        return max(self.worker_lost_after - self.watchdog_interval, self.heartbeat_interval * 3)

    @property
    def db_stall_timeout(self) -> float:
        """PostgreSQL ends a transaction idle this long (a frozen process holding locks)."""
        return min(10.0, max(1.0, self.worker_lost_after / 3))

    @property
    def embedded(self) -> bool:
        return not self.redis_url


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import)."""
    return Settings()
